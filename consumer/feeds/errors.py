"""What goes wrong with the feeds file, and why a request is refused access to a feed.

Errors of requests are answered by the one handler in ``consumer.http.app``:

    IngestError (consumer.errors)   status  code
    ├── UnknownFeed                         unknown_feed   (consumer.errors)
    ├── Unauthorized                401     unauthorized   (carries ``headers``: the challenge)
    └── Forbidden                   403     forbidden      (client address not allowed)

    FeedsFileError                  the feeds file is invalid; names the feed and field
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from consumer.errors import IngestError

__all__ = ["WWW_AUTHENTICATE", "FeedsFileError", "Forbidden", "Unauthorized"]

WWW_AUTHENTICATE: Final = 'Basic realm="ivmtr-stream", charset="UTF-8"'
"""The challenge sent with every 401 (RFC 7617; credentials are decoded as UTF-8)."""


class FeedsFileError(Exception):
    """The feeds file is unreadable or invalid; the message names the file, feed and field.

    ``field`` is the dotted path of the offending value (``feeds.letters.kind``),
    empty when the file as a whole is unreadable; ``feed`` the feed's name when the
    problem is inside one feed; ``path`` the file, when it was read from one.
    """

    def __init__(
        self, field: str, problem: str, *, feed: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(": ".join(part for part in (path, field, problem) if part))
        self.field = field
        self.feed = feed
        self.path = path
        self.problem = problem


class Unauthorized(IngestError):
    """Missing, malformed or wrong Basic credentials for the feed (401 + challenge)."""

    status = 401
    code = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        # Response headers the error handler must add; a 401 without a challenge is
        # not valid HTTP (RFC 9110 15.5.2).
        self.headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": WWW_AUTHENTICATE})


class Forbidden(IngestError):
    """The client address is outside the feed's ``allowed_networks`` (403)."""

    status = 403
    code = "forbidden"
