"""Feeds file loading, password hashing, Basic-auth authorisation and the auth commands."""

from __future__ import annotations

import base64
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.cli.auth import dev_credentials, hash_password_command
from consumer.core.records import RecordKind
from consumer.errors import IngestError, UnknownFeed
from consumer.feeds import (
    WWW_AUTHENTICATE,
    Feed,
    FeedsFileError,
    FeedTable,
    Forbidden,
    Unauthorized,
    authorize,
    clear_verification_cache,
    client_address,
    credentials_cached,
    generate_dev_credentials,
    hash_password,
    load_feeds,
    parse_feeds,
    password_file,
    verify_password,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "feeds.toml"
FAST = {"n": 2**10, "r": 8, "p": 1}
LETTERS_PASSWORD = "letters-secret-Pa55"
FLATS_PASSWORD = "flats-secret-Pa55w0rd"
LETTERS_HASH = hash_password(LETTERS_PASSWORD, **FAST)
FLATS_HASH = hash_password(FLATS_PASSWORD, **FAST)
OUTSIDE = "203.0.113.7"
USPS = "56.1.2.3"
PROXY = "10.0.0.5"

TABLE_TOML = f"""
[feeds.letters]
kind = "piece"
campaign = "Spring 2026"
user = "usps-letters"
password_hash = "{LETTERS_HASH}"
allowed_networks = ["56.0.0.0/8", "2001:db8:56::/48"]
[feeds.letters.topics]
piece = "acme.letters.piece-scans"

[feeds.flats]
user = "usps-flats"
password_hash = "{FLATS_HASH}"

[proxies]
trusted = ["10.0.0.0/8", "fd00::/8"]
"""


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_verification_cache()
    yield
    clear_verification_cache()


@pytest.fixture(scope="module")
def table() -> FeedTable:
    import tomllib

    return parse_feeds(tomllib.loads(TABLE_TOML))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


LETTERS = basic("usps-letters", LETTERS_PASSWORD)
FLATS = basic("usps-flats", FLATS_PASSWORD)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- loading


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


def feed_toml(**fields: str) -> str:
    base = {"user": '"u"', "password_hash": f'"{LETTERS_HASH}"'}
    base.update(fields)
    lines = [f"{key} = {value}" for key, value in base.items() if value != "<absent>"]
    return "[feeds.f]\n" + "\n".join(lines) + "\n"


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


# --------------------------------------------------------------------------- passwords


def test_hash_verify_round_trip() -> None:
    encoded = hash_password("pässwörd 🔑", **FAST)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("pässwörd 🔑", encoded)
    assert not verify_password("passwörd 🔑", encoded)


def test_salts_differ() -> None:
    assert hash_password("same", **FAST) != hash_password("same", **FAST)


def test_default_parameters() -> None:
    encoded = hash_password("x" * 12)
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("x" * 12, encoded)


def test_wrong_password() -> None:
    assert not verify_password("wrong", LETTERS_HASH)
    assert not verify_password("", LETTERS_HASH)


@pytest.mark.parametrize("n", [2**9, 1000, 2**21])
def test_hash_refuses_parameters_verify_would_refuse(n: int) -> None:
    with pytest.raises(ValueError, match="scrypt parameters"):
        hash_password("password", n=n)


def test_hash_refuses_an_empty_password() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt",
        "scrypt$$$$$",
        "scrypt$1024$8$1$$",
        "scrypt$1024$8$1$!!!!$!!!!",
        "scrypt$1024$8$1$AAAA$AAAA",
        "scrypt$1024$0$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$1024$8$99$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$1048576$32$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$99999999$8$1$" + LETTERS_HASH.split("$", 4)[4],
        "scrypt$-1024$8$1$" + LETTERS_HASH.split("$", 4)[4],
        LETTERS_HASH + "$",
        LETTERS_HASH[:-2],
        LETTERS_HASH.replace("=", "\u00e9"),
        "\ud800",
    ],
)
def test_malformed_hashes_never_raise(encoded: str) -> None:
    assert verify_password(LETTERS_PASSWORD, encoded) is False


def test_unencodable_passwords_are_false() -> None:
    assert verify_password("\ud800", LETTERS_HASH) is False


@given(st.text(max_size=200), st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_verify_never_raises(password: str, encoded: str) -> None:
    assert verify_password(password, encoded) in (True, False)


def test_cache_does_not_accept_a_wrong_password_after_a_right_one() -> None:
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD + "x", LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD[:-1], LETTERS_HASH)
    assert not verify_password(LETTERS_PASSWORD, FLATS_HASH)


def test_authorize_cache_does_not_accept_a_wrong_user_or_password(table: FeedTable) -> None:
    assert authorize(table, "letters", LETTERS, USPS, None).name == "letters"
    assert credentials_cached(table, "letters", LETTERS)
    for header in (
        basic("usps-letters", LETTERS_PASSWORD + "x"),
        basic("usps-letterz", LETTERS_PASSWORD),
        basic("usps-flats", LETTERS_PASSWORD),
    ):
        assert not credentials_cached(table, "letters", header)
        with pytest.raises(Unauthorized):
            authorize(table, "letters", header, USPS, None)
    assert not credentials_cached(table, "flats", LETTERS)
    assert not credentials_cached(table, "nope", LETTERS)
    assert not credentials_cached(table, "letters", "Bearer x")


def test_cache_is_bounded_by_the_hash() -> None:
    # A new hash of the same password (password rotated in the file) is checked afresh.
    other = hash_password(LETTERS_PASSWORD, **FAST)
    assert verify_password(LETTERS_PASSWORD, LETTERS_HASH)
    assert verify_password(LETTERS_PASSWORD, other)
    assert not verify_password("x", other)


# --------------------------------------------------------------------------- authorize


def test_right_credentials(table: FeedTable) -> None:
    feed = authorize(table, "letters", LETTERS, USPS, None)
    assert isinstance(feed, Feed)
    assert (feed.name, feed.kind, feed.campaign) == ("letters", RecordKind.PIECE, "Spring 2026")
    assert authorize(table, "flats", FLATS, OUTSIDE, None).name == "flats"


def test_scheme_is_case_insensitive_and_padding_optional(table: FeedTable) -> None:
    assert authorize(table, "flats", "bAsIc  " + FLATS.split()[1].rstrip("="), OUTSIDE, None)


def test_password_may_contain_colons(tmp_path: Path) -> None:
    table = load_feeds(
        write(tmp_path, feed_toml(password_hash=f'"{hash_password("a:b:c", **FAST)}"'))
    )
    assert authorize(table, "f", basic("u", "a:b:c"), OUTSIDE, None).name == "f"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "credentials required"),
        ("", "credentials required"),
        ("   ", "credentials required"),
        ("Bearer abc.def", "unsupported authentication scheme"),
        ("Digest username=usps-flats", "unsupported authentication scheme"),
        ("Basic", "no ':'"),
        ("Basic !!!not-base64!!!", "not base64"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "not base64 of UTF-8"),
        ("Basic " + base64.b64encode(b"usps-flats").decode(), "no ':'"),
        ("Basic " + "A" * 5000, "too long"),
        (basic("usps-flats", "wrong-password"), "invalid user or password"),
        (basic("usps-flats", ""), "invalid user or password"),
        (basic("", FLATS_PASSWORD), "invalid user or password"),
        (basic("usps-flat", FLATS_PASSWORD), "invalid user or password"),
        (basic("USPS-FLATS", FLATS_PASSWORD), "invalid user or password"),
        (LETTERS, "invalid user or password"),  # another feed's credentials
        (basic("usps-flats", LETTERS_PASSWORD), "invalid user or password"),
        (basic("usps-letters", FLATS_PASSWORD), "invalid user or password"),
    ],
)
def test_unauthorized(table: FeedTable, header: str | None, detail: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        authorize(table, "flats", header, OUTSIDE, None)
    error = caught.value
    assert detail in error.detail
    assert (error.status, error.code) == (401, "unauthorized")
    assert dict(error.headers) == {"WWW-Authenticate": WWW_AUTHENTICATE}
    assert WWW_AUTHENTICATE == 'Basic realm="ivmtr-stream", charset="UTF-8"'
    shown = f"{error} {error.body()} {error!r}"
    for secret in (FLATS_PASSWORD, LETTERS_PASSWORD, "wrong-password"):
        assert secret not in shown
    token = (header or "").partition(" ")[2].strip()
    assert not token or token not in shown


def test_another_feeds_credentials_after_they_were_cached(table: FeedTable) -> None:
    authorize(table, "flats", FLATS, OUTSIDE, None)
    authorize(table, "letters", LETTERS, USPS, None)
    with pytest.raises(Unauthorized):
        authorize(table, "flats", LETTERS, OUTSIDE, None)
    with pytest.raises(Unauthorized):
        authorize(table, "letters", FLATS, USPS, None)


def test_unknown_feed(table: FeedTable) -> None:
    with pytest.raises(UnknownFeed) as caught:
        authorize(table, "parcels", FLATS, OUTSIDE, None)
    assert caught.value.status == 404


def test_disallowed_network_is_refused_before_credentials(table: FeedTable) -> None:
    for header in (LETTERS, None, basic("usps-letters", "wrong")):
        with pytest.raises(Forbidden) as caught:
            authorize(table, "letters", header, OUTSIDE, None)
        assert (caught.value.status, caught.value.code) == (403, "forbidden")
        assert OUTSIDE in caught.value.detail
        assert LETTERS_PASSWORD not in str(caught.value)


@pytest.mark.parametrize("peer", [USPS, "56.255.255.255", "::ffff:56.1.2.3", "2001:db8:56::9"])
def test_allowed_networks(table: FeedTable, peer: str) -> None:
    assert authorize(table, "letters", LETTERS, peer, None).name == "letters"


@pytest.mark.parametrize(
    "peer", ["57.0.0.1", "2001:db8:57::1", "::1", "", "testclient", "::ffff:1.2.3.4"]
)
def test_disallowed_networks(table: FeedTable, peer: str) -> None:
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, peer, None)


def test_allowed_network_still_needs_credentials(table: FeedTable) -> None:
    with pytest.raises(Unauthorized):
        authorize(table, "letters", None, USPS, None)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(table: FeedTable) -> None:
    # Spoofing: a client outside claims to be a USPS address.
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, OUTSIDE, USPS)
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, OUTSIDE, f"{USPS}, {PROXY}")


def test_forwarded_for_from_a_trusted_proxy_is_used(table: FeedTable) -> None:
    assert authorize(table, "letters", LETTERS, PROXY, USPS).name == "letters"
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, PROXY, OUTSIDE)


def test_trusted_proxy_without_forwarded_for_is_the_client(table: FeedTable) -> None:
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, PROXY, None)
    assert client_address(PROXY, None, table.trusted_proxies) == ipaddress.ip_address(PROXY)
    assert client_address(PROXY, "  ", table.trusted_proxies) == ipaddress.ip_address(PROXY)


def test_multiple_hops(table: FeedTable) -> None:
    trusted = table.trusted_proxies
    # client -> proxy 10.0.0.9 -> proxy 10.0.0.5; the client forged a first entry.
    assert authorize(table, "letters", LETTERS, PROXY, f"{OUTSIDE}, {USPS}, 10.0.0.9")
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, PROXY, f"{USPS}, {OUTSIDE}, 10.0.0.9")
    assert client_address(PROXY, "1.1.1.1, 2.2.2.2, 10.1.1.1, 10.2.2.2", trusted) == (
        ipaddress.ip_address("2.2.2.2")
    )
    # Every hop trusted: the left-most is the client.
    assert client_address(PROXY, "10.9.9.9, 10.1.1.1", trusted) == ipaddress.ip_address("10.9.9.9")
    # Several X-Forwarded-For headers, joined with ','.
    assert client_address(PROXY, "1.1.1.1,56.0.0.1", trusted) == ipaddress.ip_address("56.0.0.1")
    # IPv6 proxies and clients.
    assert client_address("fd00::1", "2001:db8:56::1, fd00::2", trusted) == (
        ipaddress.ip_address("2001:db8:56::1")
    )
    assert authorize(table, "letters", LETTERS, "fd00::1", "2001:db8:56::1, fd00::2")


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("56.1.2.3:4711", "56.1.2.3"),
        ("[2001:db8:56::1]:443", "2001:db8:56::1"),
        ("[2001:db8:56::1]", "2001:db8:56::1"),
        (" 56.1.2.3 ", "56.1.2.3"),
        ("::ffff:56.1.2.3", "56.1.2.3"),
        ("garbage", None),
        ("56.1.2.3, garbage", None),
        ("56.1.2.3,", None),
        ("unknown", None),
        ("56.1.2.3:http", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("56.1.2.3.4", None),
        ("garbage, 56.1.2.3", "56.1.2.3"),  # left of the client: never read
    ],
)
def test_forwarded_for_entries(table: FeedTable, forwarded: str, expected: str | None) -> None:
    got = client_address(PROXY, forwarded, table.trusted_proxies)
    assert got == (None if expected is None else ipaddress.ip_address(expected))


def test_garbage_forwarded_for_fails_closed(table: FeedTable) -> None:
    for garbage in ("garbage", "56.1.2.3, \x00", ",,,", "56.1.2.3, 999.1.1.1"):
        with pytest.raises(Forbidden):
            authorize(table, "letters", LETTERS, PROXY, garbage)
        # Feeds without network limits do not need to know the client.
        assert authorize(table, "flats", FLATS, PROXY, garbage).name == "flats"


header_text = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.builds(lambda s: "Basic " + s, st.text(max_size=200)),
    st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=200)),
)


@given(
    header=header_text,
    peer=st.one_of(st.text(max_size=60), st.ip_addresses().map(str)),
    forwarded=st.one_of(
        st.none(),
        st.text(max_size=200),
        st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=20)), max_size=6).map(
            ", ".join
        ),
    ),
    feed=st.sampled_from(["letters", "flats", "nope", ""]),
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_requests_raise_only_our_errors(
    table: FeedTable, header: str | None, peer: str, forwarded: str | None, feed: str
) -> None:
    try:
        authorize(table, feed, header, peer, forwarded)
    except (Unauthorized, Forbidden, UnknownFeed) as exc:
        assert isinstance(exc, IngestError)
        for secret in (LETTERS_PASSWORD, FLATS_PASSWORD):
            assert secret not in str(exc)
    else:
        raise AssertionError("random credentials were accepted")


# --------------------------------------------------------------------------- dev credentials


def test_generate_dev_credentials(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "feeds.toml"
    user, password = generate_dev_credentials(path)
    table = load_feeds(path)
    assert set(table.feeds) == {"demo"}
    assert table.feeds["demo"].kind is None
    assert authorize(table, "demo", basic(user, password), "127.0.0.1", None).name == "demo"
    secret = password_file(path)
    assert secret == tmp_path / "sub" / "feeds.toml.password"
    assert secret.read_text() == password + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in path.read_text()
    with pytest.raises(FileExistsError):
        generate_dev_credentials(path)
    assert generate_dev_credentials(tmp_path / "other.toml")[1] != password


# --------------------------------------------------------------------------- commands


def test_hash_password_stdin() -> None:
    result = CliRunner().invoke(hash_password_command, ["--stdin"], input="a long password\nmore\n")
    assert result.exit_code == 0, result.output
    encoded = result.stdout.strip()
    assert verify_password("a long password", encoded)
    assert "a long password" not in result.output


def test_hash_password_prompts_twice() -> None:
    runner = CliRunner()
    result = runner.invoke(hash_password_command, [], input="a long password\na long password\n")
    assert result.exit_code == 0, result.output
    assert verify_password("a long password", result.stdout.strip())
    assert "a long password" not in result.output
    mismatch = runner.invoke(hash_password_command, [], input="a long password\nanother one!\n")
    assert mismatch.exit_code != 0


@pytest.mark.parametrize("text", ["", "\n", "short\n"])
def test_hash_password_refuses_short_passwords(text: str) -> None:
    result = CliRunner().invoke(hash_password_command, ["--stdin"], input=text)
    assert result.exit_code == 1
    assert "shorter than 12" in result.stderr


def credentials(output: str) -> tuple[str, str]:
    lines = dict(line.split(": ", 1) for line in output.splitlines())
    return lines["user"], lines["password"]


def test_dev_credentials(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "feeds.toml"
    runner = CliRunner()
    first = runner.invoke(dev_credentials, ["--out", str(path)])
    assert first.exit_code == 0, first.output
    assert "wrote" in first.stderr
    user, password = credentials(first.stdout)
    table = load_feeds(path)
    assert authorize(table, "demo", basic(user, password), "127.0.0.1", None).name == "demo"

    before = path.read_bytes()
    second = runner.invoke(dev_credentials, ["--out", str(path)])
    assert second.exit_code == 0, second.output
    assert "reusing" in second.stderr
    assert credentials(second.stdout) == (user, password)
    assert path.read_bytes() == before


def test_dev_credentials_without_the_password_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    runner = CliRunner()
    _, password = credentials(runner.invoke(dev_credentials, ["--out", str(path)]).stdout)
    os.remove(password_file(path))
    result = runner.invoke(dev_credentials, ["--out", str(path)])
    assert result.exit_code == 1
    assert "password is unknown" in result.stderr
    assert password not in result.output
    # A password file that does not match is not printed either.
    password_file(path).write_text("not-it\n")
    result = runner.invoke(dev_credentials, ["--out", str(path)])
    assert (result.exit_code, "not-it" in result.output) == (1, False)


def test_dev_credentials_leaves_other_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(TABLE_TOML)
    result = CliRunner().invoke(dev_credentials, ["--out", str(path)])
    assert result.exit_code == 1
    assert "no feed 'demo'" in result.stderr
    assert path.read_text() == TABLE_TOML
    path.write_text("[broken\n")
    assert CliRunner().invoke(dev_credentials, ["--out", str(path)]).exit_code == 1
