"""The feeds file: loading, and every check of its tables."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from consumer.core.records import RecordKind
from consumer.feeds import FeedsFileError, FeedTable, load_feeds
from tests.consumer.feeds.samples import (
    EXAMPLE,
    FLATS_HASH,
    LETTERS_HASH,
    TABLE_TOML,
    feed_toml,
    write,
)


def test_example_file_loads() -> None:
    table = load_feeds(EXAMPLE)
    assert set(table.feeds) == {"letters", "flats-trays"}
    letters = table.feeds["letters"]
    assert letters.kind is RecordKind.PIECE
    assert letters.campaign == "Spring 2026"
    assert letters.user == "usps-letters"
    assert letters.allowed_networks == (
        ipaddress.ip_network("56.0.0.0/8"),
        ipaddress.ip_network("2001:db8:56::/48"),
    )
    assert dict(letters.topics) == {
        "piece": "acme.letters.piece-scans",
        "dead_letters": "acme.letters.dead-letters",
    }
    flats = table.feeds["flats-trays"]
    assert (flats.kind, flats.campaign, flats.allowed_networks, dict(flats.topics)) == (
        None,
        None,
        (),
        {},
    )
    assert table.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)


def test_load_builds_the_table(tmp_path: Path) -> None:
    table = load_feeds(write(tmp_path, TABLE_TOML))
    assert table.feeds["flats"].kind is None
    assert table.feeds["letters"].password_hash == LETTERS_HASH


def test_repr_hides_the_password_hash(table: FeedTable) -> None:
    assert LETTERS_HASH not in repr(table.feeds["letters"])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (feed_toml(colour='"red"'), "feeds.f.colour"),
        (feed_toml(kind='"letter"'), "feeds.f.kind"),
        (feed_toml(kind="1"), "feeds.f.kind"),
        (feed_toml(kind='"PIECE"'), "feeds.f.kind"),
        (feed_toml(user="<absent>"), "feeds.f.user"),
        (feed_toml(user='""'), "feeds.f.user"),
        (feed_toml(user='"a:b"'), "feeds.f.user"),
        (feed_toml(password_hash="<absent>"), "feeds.f.password_hash"),
        (feed_toml(password_hash='"hunter2"'), "feeds.f.password_hash"),
        (feed_toml(password_hash='"scrypt$16384$8$1$AAAA$AAAA"'), "feeds.f.password_hash"),
        (
            feed_toml(password_hash=f'"{LETTERS_HASH.replace("$1024$", "$1000$")}"'),
            "feeds.f.password_hash",
        ),
        (
            feed_toml(password_hash=f'"{LETTERS_HASH.replace("$1024$", "$1073741824$")}"'),
            "feeds.f.password_hash",
        ),
        (
            feed_toml(password_hash=f'"{LETTERS_HASH.replace("scrypt$", "bcrypt$")}"'),
            "feeds.f.password_hash",
        ),
        (feed_toml(password_hash=f'"{LETTERS_HASH}!"'), "feeds.f.password_hash"),
        (feed_toml(allowed_networks='["56.0.0.0/33"]'), "feeds.f.allowed_networks[0]"),
        (feed_toml(allowed_networks='["10.1.2.3/8"]'), "feeds.f.allowed_networks[0]"),
        (
            feed_toml(allowed_networks='["56.0.0.0/8", "example.com"]'),
            "feeds.f.allowed_networks[1]",
        ),
        (feed_toml(allowed_networks='"56.0.0.0/8"'), "feeds.f.allowed_networks"),
        (feed_toml(allowed_networks="[]"), "feeds.f.allowed_networks"),
        (feed_toml(campaign='""'), "feeds.f.campaign"),
        (feed_toml(campaign="3"), "feeds.f.campaign"),
        (feed_toml(topics='{ pieces = "x" }'), "feeds.f.topics.pieces"),
        (feed_toml(topics='{ piece = "no spaces" }'), "feeds.f.topics.piece"),
        (feed_toml(topics='{ piece = ".." }'), "feeds.f.topics.piece"),
        (feed_toml(topics='"x"'), "feeds.f.topics"),
        (feed_toml().replace("[feeds.f]", "[feeds.-bad]"), "feeds.-bad"),
        (feed_toml().replace("[feeds.f]", '[feeds."a b"]'), "feeds.a b"),
        (feed_toml().replace("[feeds.f]", f"[feeds.{'x' * 65}]"), f"feeds.{'x' * 65}"),
        ("feeds = 3\n", "feeds"),
        ("[proxies]\ntrusted = []\n", "feeds"),
        (feed_toml() + "[other]\n", "other"),
        (feed_toml() + "[proxies]\ntrusted = ['10.0.0.0/8']\nhops = 2\n", "proxies.hops"),
        (feed_toml() + "[proxies]\ntrusted = ['nope']\n", "proxies.trusted[0]"),
        (
            feed_toml() + "[feeds.g]\nuser = 'u'\npassword_hash = '" + FLATS_HASH + "'\n",
            "feeds.g.user",
        ),
        (
            feed_toml(topics='{ piece = "t" }')
            + "[feeds.g]\nuser = 'v'\npassword_hash = '"
            + FLATS_HASH
            + "'\ntopics = { bundle = 't' }\n",
            "feeds.g.topics.bundle",
        ),
    ],
)
def test_invalid_files_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(path)
    assert (caught.value.field, caught.value.path) == (field, str(path))
    assert str(caught.value).startswith(f"{path}: {field}: ")
    if field.startswith("feeds.") and field.count(".") >= 2:
        assert caught.value.feed == field.split(".")[1]


def test_a_plain_password_in_the_file_is_not_quoted_back(tmp_path: Path) -> None:
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(write(tmp_path, feed_toml(password_hash='"correct horse battery"')))
    assert "correct horse" not in str(caught.value)


def test_two_feeds_may_share_a_topic_for_the_same_key(tmp_path: Path) -> None:
    text = (
        feed_toml(topics='{ piece = "t" }')
        + f"[feeds.g]\nuser = 'v'\npassword_hash = '{FLATS_HASH}'\ntopics = {{ piece = 't' }}\n"
    )
    assert dict(load_feeds(write(tmp_path, text)).feeds["g"].topics) == {"piece": "t"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[feeds\n", "not valid TOML"), (None, "cannot read")],
)
def test_unreadable_files(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "feeds.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(FeedsFileError, match=problem):
        load_feeds(path)
