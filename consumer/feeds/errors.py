"""What goes wrong with the feeds file, and why a request is refused access to a feed.

Errors of requests carry no HTTP status; ``consumer.http.errors`` maps them:

    IngestError (consumer.errors)   code
    ├── UnknownFeed                 unknown_feed   (consumer.errors)
    ├── Unauthorized                unauthorized   (credentials missing, malformed or wrong)
    └── Forbidden                   forbidden      (client address not allowed)

    FeedsFileError                  the feeds file is invalid: every FeedsFileProblem in it
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consumer.errors import IngestError

__all__ = ["FeedsFileError", "FeedsFileProblem", "Forbidden", "Unauthorized"]


@dataclass(frozen=True, slots=True)
class FeedsFileProblem:
    """One mistake in the feeds file.

    ``field`` is the key path of the offending value (``feeds.letters.kind``,
    ``feeds.letters.allowed_networks[1]``, ``campaigns[0].id``), empty when the file as a
    whole is unreadable; ``feed`` the feed's name when the mistake is inside one feed.
    ``problem`` never quotes a password hash: the value may be a plain password.
    """

    field: str
    problem: str
    feed: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}" if self.field else self.problem


class FeedsFileError(Exception):
    """The feeds file is unreadable or invalid; the message lists every mistake found.

    One mistake reads ``<path>: <field>: <problem>``; several read
    ``<path>: 3 mistakes: <field>: <problem>; <field>: <problem>; ...`` (one line, for
    logs). ``problems`` holds them in file order, model checks first; ``field``,
    ``problem`` and ``feed`` are the first one's, for callers that show only one.
    ``path`` is the file, when it was read from one.
    """

    def __init__(self, problems: Iterable[FeedsFileProblem], *, path: str | None = None) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("a FeedsFileError needs at least one problem")
        self.path = path
        first = self.problems[0]
        self.field = first.field
        self.problem = first.problem
        self.feed = first.feed
        listed = "; ".join(str(problem) for problem in self.problems)
        if len(self.problems) > 1:
            listed = f"{len(self.problems)} mistakes: {listed}"
        super().__init__(f"{path}: {listed}" if path else listed)

    @classmethod
    def one(
        cls, field: str, problem: str, *, feed: str | None = None, path: str | None = None
    ) -> FeedsFileError:
        """The error of a single mistake."""
        return cls([FeedsFileProblem(field, problem, feed)], path=path)

    def at(self, path: str) -> FeedsFileError:
        """The same mistakes, found in the file at ``path``."""
        return FeedsFileError(self.problems, path=path)


class Unauthorized(IngestError):
    """Missing, malformed or wrong Basic credentials for the feed."""

    code = "unauthorized"


class Forbidden(IngestError):
    """The client address is outside the feed's ``allowed_networks``."""

    code = "forbidden"
