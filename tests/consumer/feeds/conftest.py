"""Fixtures of the ``consumer.feeds`` tests: a fresh verification cache, the sample table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.feeds import FeedTable, clear_verification_cache, parse_feeds
from tests.consumer.feeds.samples import TABLE_TOML


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_verification_cache()
    yield
    clear_verification_cache()


@pytest.fixture(scope="module")
def table() -> FeedTable:
    import tomllib

    return parse_feeds(tomllib.loads(TABLE_TOML))
