"""Authorising a request: the feed, the client address, the Basic credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.core.records import RecordKind
from consumer.errors import IngestError, UnknownFeed
from consumer.feeds import (
    Feed,
    FeedTable,
    Forbidden,
    Unauthorized,
    authorize,
    credentials_cached,
    hash_password,
    load_feeds,
)
from consumer.http.errors import refusal_response, status_of
from tests.consumer.feeds.samples import (
    FAST,
    FLATS,
    FLATS_PASSWORD,
    LETTERS,
    LETTERS_PASSWORD,
    OUTSIDE,
    USPS,
    basic,
    feed_toml,
    write,
)


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
    assert error.code == "unauthorized"
    answer = refusal_response(error, "request-1", retry_after_s=5)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="ivmtr-stream", charset="UTF-8"'
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
    assert status_of(caught.value) == 404


def test_disallowed_network_is_refused_before_credentials(table: FeedTable) -> None:
    for header in (LETTERS, None, basic("usps-letters", "wrong")):
        with pytest.raises(Forbidden) as caught:
            authorize(table, "letters", header, OUTSIDE, None)
        assert (status_of(caught.value), caught.value.code) == (403, "forbidden")
        assert OUTSIDE in caught.value.detail
        assert LETTERS_PASSWORD not in str(caught.value)


def test_allowed_network_still_needs_credentials(table: FeedTable) -> None:
    with pytest.raises(Unauthorized):
        authorize(table, "letters", None, USPS, None)


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
