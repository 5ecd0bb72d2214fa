"""The check every table of the feeds file gets: no key we do not know.

A misspelt key (``alowed_networks``) would otherwise be silently ignored, and its
feed run without the limit it was meant to have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumer.feeds.errors import FeedsFileError

__all__ = ["no_unknown_keys"]


def no_unknown_keys(
    data: Mapping[str, Any],
    known: frozenset[str] | set[str],
    prefix: str,
    *,
    feed: str | None = None,
) -> None:
    """FeedsFileError naming ``prefix`` + the first key of ``data`` not in ``known``."""
    for key in data:
        if key not in known:
            raise FeedsFileError(
                f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(known))})", feed=feed
            )
