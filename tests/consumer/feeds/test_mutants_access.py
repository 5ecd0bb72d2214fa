"""Tests for survivors of `make mutation MODULE=feeds` in ``authorize``: the words of its
refusals before any credentials are read, which name the feed a sender asked for."""

from __future__ import annotations

import pytest

from consumer.errors import UnknownFeed
from consumer.feeds import FeedTable, Forbidden, authorize
from tests.consumer.feeds.samples import LETTERS


def test_an_unknown_feed_is_named(table: FeedTable) -> None:
    with pytest.raises(UnknownFeed) as caught:
        authorize(table, "parcels", LETTERS, "56.1.2.3", None)
    assert caught.value.detail == "no feed called 'parcels'"


@pytest.mark.parametrize(
    ("peer", "forwarded_for"),
    [
        ("testclient", None),  # not an address (a Unix socket, a test client)
        ("10.0.0.5", "not-an-address"),  # a trusted proxy that forwarded garbage
    ],
)
def test_a_client_of_unknown_address_is_refused_by_a_feed_with_networks(
    table: FeedTable, peer: str, forwarded_for: str | None
) -> None:
    with pytest.raises(Forbidden) as caught:
        authorize(table, "letters", LETTERS, peer, forwarded_for)
    assert caught.value.detail == "feed 'letters' only accepts known client addresses"
