"""What goes wrong with the feeds file, and why a request is refused access to a feed.

Errors of requests carry no HTTP status; ``consumer.http.errors`` maps them:

    IngestError (consumer.errors)   code
    ├── UnknownFeed                 unknown_feed   (consumer.errors)
    ├── Unauthorized                unauthorized   (credentials missing, malformed or wrong)
    └── Forbidden                   forbidden      (client address not allowed)

    FeedsFileError                  the feeds file is invalid; names the feed and field
"""

from __future__ import annotations

from consumer.errors import IngestError

__all__ = ["FeedsFileError", "Forbidden", "Unauthorized"]


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
    """Missing, malformed or wrong Basic credentials for the feed."""

    code = "unauthorized"


class Forbidden(IngestError):
    """The client address is outside the feed's ``allowed_networks``."""

    code = "forbidden"
