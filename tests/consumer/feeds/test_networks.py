"""Client addresses: allowed networks, trusted proxies and X-Forwarded-For."""

from __future__ import annotations

import ipaddress

import pytest

from consumer.feeds import FeedTable, Forbidden, authorize, client_address
from tests.consumer.feeds.samples import FLATS, LETTERS, OUTSIDE, PROXY, USPS


@pytest.mark.parametrize("peer", [USPS, "56.255.255.255", "::ffff:56.1.2.3", "2001:db8:56::9"])
def test_allowed_networks(table: FeedTable, peer: str) -> None:
    assert authorize(table, "letters", LETTERS, peer, None).name == "letters"


@pytest.mark.parametrize(
    "peer", ["57.0.0.1", "2001:db8:57::1", "::1", "", "testclient", "::ffff:1.2.3.4"]
)
def test_disallowed_networks(table: FeedTable, peer: str) -> None:
    with pytest.raises(Forbidden):
        authorize(table, "letters", LETTERS, peer, None)


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
