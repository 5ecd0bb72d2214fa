"""The feeds file: loading, and every check of its tables."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import get_args

import pytest

from consumer.core.records import RecordKind
from consumer.feeds import TOPIC_KEYS, Feed, FeedsFileError, FeedTable, load_feeds
from consumer.feeds.schema import FeedModel, KindName, TopicsModel
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


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (
            feed_toml(password_hash='"hunter2"'),
            "feeds.f.password_hash",
            "not a scrypt hash produced by `ivmtr-stream hash-password`",
        ),
        (
            feed_toml(colour='"red"'),
            "feeds.f.colour",
            "unknown key (known: allowed_networks, campaign, kind, password_hash, topics, user)",
        ),
        (
            feed_toml(topics='{ pieces = "x" }'),
            "feeds.f.topics.pieces",
            "unknown key (known: bundle, container, dead_letters, handling_unit, piece)",
        ),
        (feed_toml() + "[other]\n", "other", "unknown key (known: campaigns, feeds, proxies)"),
        (
            feed_toml(kind='"letter"'),
            "feeds.f.kind",
            "must be one of 'piece', 'bundle', 'handling_unit', 'container' or 'auto'",
        ),
        (feed_toml(kind="1"), "feeds.f.kind", "must be one of"),
        (feed_toml(user="<absent>"), "feeds.f.user", "missing"),
        (feed_toml(user="7"), "feeds.f.user", "must be a string"),
        (
            feed_toml(allowed_networks='"56.0.0.0/8"'),
            "feeds.f.allowed_networks",
            "must be an array",
        ),
        (feed_toml(allowed_networks="[7]"), "feeds.f.allowed_networks[0]", "must be a CIDR string"),
        (
            feed_toml(allowed_networks='["10.1.2.3/8"]'),
            "feeds.f.allowed_networks[0]",
            "'10.1.2.3/8' is not an IPv4/IPv6 network: 10.1.2.3/8 has host bits set",
        ),
        # Braces in a value are text, never format fields of the message.
        (
            feed_toml(allowed_networks='["{message}"]'),
            "feeds.f.allowed_networks[0]",
            "'{message}' is not an IPv4/IPv6 network",
        ),
        (
            feed_toml(allowed_networks="[]"),
            "feeds.f.allowed_networks",
            "is empty, which would refuse every client",
        ),
        (feed_toml(topics='"x"'), "feeds.f.topics", "must be a table"),
        ("[proxies]\ntrusted = []\n", "feeds", "no feed defined: add a [feeds.<name>] table"),
        ("feeds = {}\n", "feeds", "no feed defined"),
        (
            feed_toml() + "[proxies]\ntrusted = '10.0.0.0/8'\n",
            "proxies.trusted",
            "must be an array",
        ),
        ("campaigns = 3\n" + feed_toml(), "campaigns", "must be an array"),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nserial_ranges = [["1", "2", "3"]]\n',
            "campaigns[0].serial_ranges[0]",
            'each range is ["first serial", "last serial"]',
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nmailer_ids = [""]\n',
            "campaigns[0].mailer_ids[0]",
            "'' is not a mailer ID (6 digits, or 9 digits starting with 9)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\njob_ids = ["J1", " "]\n',
            "campaigns[0].job_ids[1]",
            "must be a non-empty string",
        ),
        # Values no barcode can carry: the rule would never match.
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nmailer_ids = ["123456", "12345"]\n',
            "campaigns[0].mailer_ids[1]",
            "'12345' is not a mailer ID (6 digits, or 9 digits starting with 9)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nmailer_ids = ["912345"]\n',
            "campaigns[0].mailer_ids[0]",
            "'912345' is not a mailer ID (6 digits, or 9 digits starting with 9)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nmailer_ids = ["123456789"]\n',
            "campaigns[0].mailer_ids[0]",
            "'123456789' is not a mailer ID (6 digits, or 9 digits starting with 9)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nmailer_ids = ["12345\\uff16"]\n',
            "campaigns[0].mailer_ids[0]",
            "'12345\uff16' is not a mailer ID (6 digits, or 9 digits starting with 9)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nstids = ["270", "27"]\n',
            "campaigns[0].stids[1]",
            "'27' is not a service type ID (3 digits)",
        ),
        (
            feed_toml() + '[[campaigns]]\nid = "x"\nserial_ranges = [["1", "1234567890"]]\n',
            "campaigns[0].serial_ranges[0][1]",
            "1234567890 has more than 9 digits: no serial number is that long",
        ),
        (
            feed_toml() + "[feeds.g]\nuser = 'u'\npassword_hash = '" + FLATS_HASH + "'\n",
            "feeds.g.user",
            "user 'u' is also the user of feed 'f': each feed needs its own user",
        ),
    ],
)
def test_each_mistake_says_what_is_wrong(
    tmp_path: Path, text: str, field: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(path)
    assert [(p.field, p.problem.startswith(problem)) for p in caught.value.problems] == [
        (field, True)
    ], caught.value.problems
    assert str(caught.value) == f"{path}: {field}: {caught.value.problem}"


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "[feeds.letters]\n"
        'kind = "letter"\n'
        'user = "shared"\n'
        'password_hash = "correct horse battery"\n'
        'allowed_networks = ["56.0.0.0/8", "nope"]\n'
        "[feeds.flats]\n"
        'user = "shared"\n'
        f'password_hash = "{FLATS_HASH}"\n'
        'topics = { piece = "x y", colour = "red" }\n'
        '[feeds."bad name"]\n'
        'user = "b"\n'
        f'password_hash = "{FLATS_HASH}"\n'
        "[proxies]\n"
        "hops = 2\n"
        "[[campaigns]]\n"
        'mailer_ids = ["902345678"]\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(FeedsFileError) as caught:
        load_feeds(path)
    found = [(p.field, p.feed) for p in caught.value.problems]
    assert found == [
        ("feeds.letters.kind", "letters"),
        ("feeds.letters.password_hash", "letters"),
        ("feeds.letters.allowed_networks[1]", "letters"),
        ("feeds.flats.topics.piece", "flats"),
        ("feeds.flats.topics.colour", "flats"),
        ("feeds.bad name", "bad name"),
        ("proxies.hops", None),
        ("campaigns[0].id", None),
        ("feeds.flats.user", "flats"),
    ]
    message = str(caught.value)
    assert message.startswith(f"{path}: 9 mistakes: feeds.letters.kind: must be one of ")
    for problem in caught.value.problems:
        assert str(problem) in message
    assert "\n" not in message  # one log line
    assert "correct horse" not in message


def test_the_service_refuses_to_start_listing_each_mistake(tmp_path: Path) -> None:
    from consumer.service import IngestService
    from consumer.settings import SettingsError, load_settings

    path = write(tmp_path, feed_toml(kind='"letter"', campaign='""'))
    with pytest.raises(SettingsError) as caught:
        IngestService(load_settings(feeds_file=path))
    assert str(caught.value).startswith(f"invalid settings: IVMTR_FEEDS_FILE: {path}: 2 mistakes: ")
    assert "feeds.f.kind: must be one of" in str(caught.value)
    assert "feeds.f.campaign: must be a non-empty string" in str(caught.value)
    assert isinstance(caught.value.__cause__, FeedsFileError)


def test_the_models_keys_are_the_domains() -> None:
    assert set(get_args(KindName)) == {kind.value for kind in RecordKind} | {"auto"}
    assert set(TopicsModel.model_fields) == TOPIC_KEYS
    assert set(FeedModel.model_fields) == {
        field.name for field in dataclasses.fields(Feed) if field.name != "name"
    }


def test_campaign_rules_keep_file_order_and_numeric_ranges(tmp_path: Path) -> None:
    text = feed_toml() + (
        '[[campaigns]]\nid = "b"\nstids = ["270"]\njob_ids = ["J1"]\n'
        '[[campaigns]]\nid = "a"\nserial_ranges = [["007", "12"]]\nmailing_group_ids = ["9"]\n'
    )
    rules = load_feeds(write(tmp_path, text)).campaigns
    assert [(r.campaign, r.stids, r.job_ids) for r in rules] == [
        ("b", frozenset({"270"}), frozenset({"J1"})),
        ("a", frozenset(), frozenset()),
    ]
    assert (rules[1].serial_ranges, rules[1].mailing_group_ids) == (((7, 12),), frozenset({"9"}))


def test_every_value_a_barcode_can_carry_is_accepted_in_a_campaign_rule(tmp_path: Path) -> None:
    text = feed_toml() + (
        '[[campaigns]]\nid = "x"\nmailer_ids = ["000000", "899999", "900000000", "999999999"]\n'
        'stids = ["000", "270", "999"]\nserial_ranges = [["0", "999999999"], ["000001", "9"]]\n'
    )
    [rule] = load_feeds(write(tmp_path, text)).campaigns
    assert rule.mailer_ids == {"000000", "899999", "900000000", "999999999"}
    assert rule.stids == {"000", "270", "999"}
    assert rule.serial_ranges == ((0, 999_999_999), (1, 9))
