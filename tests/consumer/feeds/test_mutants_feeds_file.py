"""Tests for survivors of `make mutation MODULE=feeds` in the feeds file's checks.

Each pins what an operator fixing the file relies on and the earlier tests left free:
the words of each check (which limit, which characters, what to run), the limits
themselves at their edge, clashes found past a broken feed or key, the file-level
mistakes (unreadable, not UTF-8, not TOML) with the path and no field, the one-line
message format of ``FeedsFileError``, and the campaign rules built from the file.
"""

from __future__ import annotations

import errno
import locale
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.feeds import FeedsFileError, FeedsFileProblem, load_feeds, parse_feeds
from tests.consumer.feeds.samples import FLATS_HASH, LETTERS_HASH, feed_toml, write

NAME_RULE = (
    "a feed name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
USER_RULE = (
    "must be 1 to 128 printable characters without ':' (Basic auth cannot carry a ':' in the user)"
)
HASH_RULE = (
    "not a scrypt hash produced by `ivmtr-stream hash-password` "
    "(scrypt$N$r$p$<salt>$<hash>, never a plain password)"
)
TOPIC_RULE = "a topic name is 1 to 249 letters, digits, '.', '_' or '-'"
SERIAL_RULE = 'each range is ["first serial", "last serial"], in digits'


def campaign(lines: str) -> str:
    return feed_toml() + '[[campaigns]]\nid = "spring"\n' + lines + "\n"


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (feed_toml().replace("[feeds.f]", '[feeds."a b"]'), "feeds.a b", NAME_RULE),
        (feed_toml().replace("[feeds.f]", '[feeds."_f"]'), "feeds._f", NAME_RULE),
        (feed_toml(user=f'"{"u" * 129}"'), "feeds.f.user", USER_RULE),
        (feed_toml(user='"usps:letters"'), "feeds.f.user", USER_RULE),
        (feed_toml(user='"usps\\tletters"'), "feeds.f.user", USER_RULE),
        (feed_toml(password_hash='"hunter2"'), "feeds.f.password_hash", HASH_RULE),
        (
            feed_toml(campaign=f'"{"c" * 257}"'),
            "feeds.f.campaign",
            "must be a non-empty string of at most 256 characters",
        ),
        (feed_toml(topics='{ piece = "." }'), "feeds.f.topics.piece", TOPIC_RULE),
        (feed_toml(topics='{ piece = ".." }'), "feeds.f.topics.piece", TOPIC_RULE),
        (feed_toml(topics='{ piece = "a/b" }'), "feeds.f.topics.piece", TOPIC_RULE),
        ("feeds = 3\n", "feeds", "must be a table"),
        (
            campaign('serial_ranges = [["1a", "20"]]'),
            "campaigns[0].serial_ranges[0][0]",
            SERIAL_RULE,
        ),
        # Arabic-Indic digits are digits to str.isdigit, and int() reads them: refused all the same.
        (
            campaign('serial_ranges = [["1", "\u0662\u0660"]]'),
            "campaigns[0].serial_ranges[0][1]",
            SERIAL_RULE,
        ),
        (
            campaign('serial_ranges = [["200", "100"]]'),
            "campaigns[0].serial_ranges[0]",
            "200 is above 100",
        ),
        (
            feed_toml(topics='{ piece = "acme.scans" }')
            + f"[feeds.g]\nuser = 'v'\npassword_hash = '{FLATS_HASH}'\n"
            + "topics = { bundle = 'acme.scans' }\n",
            "feeds.g.topics.bundle",
            "topic 'acme.scans' is already the piece topic of feed 'f'",
        ),
    ],
)
def test_each_check_tells_the_operator_the_rule(
    tmp_path: Path, text: str, field: str, problem: str
) -> None:
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(write(tmp_path, text))
    assert [(p.field, p.problem) for p in caught.value.problems] == [(field, problem)]


def test_the_limits_are_inclusive(tmp_path: Path) -> None:
    text = feed_toml(user=f'"{"u" * 128}"', campaign=f'"{"c" * 256}"') + (
        '[[campaigns]]\nid = "one serial"\nserial_ranges = [["5", "5"]]\n'
    )
    table = load_feeds(write(tmp_path, text))
    feed = table.feeds["f"]
    assert (len(feed.user), len(feed.campaign or "")) == (128, 256)
    assert table.campaigns[0].serial_ranges == ((5, 5),)


def test_clashes_are_found_past_a_broken_feed_or_topic_key(tmp_path: Path) -> None:
    text = (
        "[feeds.a]\n"
        "user = 'u'\n"
        f"password_hash = '{LETTERS_HASH}'\n"
        "topics = { piece = 't' }\n"
        "[feeds]\n"
        "b = 3\n"  # not a table: the model's mistake; the feeds after it are still compared
        "[feeds.c]\n"
        "user = 'u'\n"
        f"password_hash = '{FLATS_HASH}'\n"
        # An unknown key is the model's mistake, not a clash, even with a taken topic;
        # the keys after it are still compared.
        "topics = { pieces = 't', colour = 5, bundle = 't' }\n"
    )
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(write(tmp_path, text))
    assert [(p.field, p.feed) for p in caught.value.problems] == [
        ("feeds.b", "b"),
        ("feeds.c.topics.pieces", "c"),
        ("feeds.c.topics.colour", "c"),
        ("feeds.c.user", "c"),
        ("feeds.c.topics.bundle", "c"),
    ]
    assert caught.value.problems[-1].problem == "topic 't' is already the piece topic of feed 'a'"


def test_a_mistake_without_words_of_ours_keeps_its_own() -> None:
    # No value of a TOML file reaches this today (each check has words of ours); a
    # pydantic error type added later must still say something, in pydantic's words.
    from consumer.feeds.schema import _message

    error = {"type": "int_parsing", "loc": ("x",), "msg": "Input should be an integer"}
    assert _message(error, ("x",)) == "Input should be an integer"  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- FeedsFileError


def test_an_error_needs_a_mistake() -> None:
    with pytest.raises(ValueError) as caught:
        FeedsFileError([])
    assert str(caught.value) == "a FeedsFileError needs at least one problem"


def test_one_mistake_keeps_its_field_feed_and_path() -> None:
    error = FeedsFileError.one(
        "feeds.f.kind", "must be one of ...", feed="f", path="/etc/ivmtr/feeds.toml"
    )
    assert error.problems == (FeedsFileProblem("feeds.f.kind", "must be one of ...", "f"),)
    assert (error.field, error.problem, error.feed, error.path) == (
        "feeds.f.kind",
        "must be one of ...",
        "f",
        "/etc/ivmtr/feeds.toml",
    )
    assert str(error) == "/etc/ivmtr/feeds.toml: feeds.f.kind: must be one of ..."


@pytest.mark.parametrize(
    ("problems", "path", "message"),
    [
        ([FeedsFileProblem("feeds.f.user", "missing", "f")], None, "feeds.f.user: missing"),
        ([FeedsFileProblem("", "not UTF-8 text")], "feeds.toml", "feeds.toml: not UTF-8 text"),
        ([FeedsFileProblem("", "not UTF-8 text")], None, "not UTF-8 text"),
        (
            [FeedsFileProblem("feeds.f.user", "missing", "f"), FeedsFileProblem("other", "no")],
            "feeds.toml",
            "feeds.toml: 2 mistakes: feeds.f.user: missing; other: no",
        ),
    ],
)
def test_the_message_is_one_line_of_path_field_and_problem(
    problems: list[FeedsFileProblem], path: str | None, message: str
) -> None:
    assert str(FeedsFileError(problems, path=path)) == message


# ----------------------------------------------------------------------------- reading the file


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, f"cannot read the feeds file: {os.strerror(errno.ENOENT)}"),
        (b"[feeds.f]\ncampaign = 'Fr\xfchling'\n", "not UTF-8 text"),  # Latin-1
        (b"[feeds\n", "not valid TOML: "),
    ],
)
def test_a_file_that_cannot_be_read_is_named_with_no_field(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "feeds.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(path)
    error = caught.value
    assert (error.field, error.feed, error.path) == ("", None, str(path))
    assert error.problem.startswith(problem)
    assert str(error) == f"{path}: {error.problem}"


@pytest.fixture
def c_locale() -> Iterator[None]:
    """The process's character set is ASCII, as under a service manager with no LANG."""
    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode ignores the locale")
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


@pytest.mark.usefixtures("c_locale")
def test_the_file_is_utf_8_whatever_the_locale(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_bytes(feed_toml(campaign='"Frühling 2026"').encode("utf-8"))
    assert load_feeds(path).feeds["f"].campaign == "Frühling 2026"


def test_campaign_rules_keep_their_mailer_ids() -> None:
    data = tomllib.loads(campaign('mailer_ids = ["902345678", "699515"]'))
    [rule] = parse_feeds(data).campaigns
    assert (rule.campaign, rule.mailer_ids) == ("spring", frozenset({"902345678", "699515"}))
