"""Whether a request may push to a feed: the feed, the client address, Basic credentials.

``authorize`` decides each request from plain values (no HTTP framework here); its
errors are answered by the one handler in ``consumer.http.app``.
"""

from __future__ import annotations

import base64
import binascii

from consumer.errors import UnknownFeed
from consumer.feeds.errors import Forbidden, Unauthorized
from consumer.feeds.model import Feed, FeedTable
from consumer.feeds.networks import client_address, in_any
from consumer.feeds.passwords import credentials_known, credentials_match

__all__ = ["authorize", "basic_credentials", "credentials_cached"]

# An Authorization header longer than this is refused before it is decoded; real
# Basic credentials are far shorter, and this bounds the work an attacker can cause.
_MAX_AUTHORIZATION_LENGTH = 4096


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """The (user, password) of a Basic ``Authorization`` header; Unauthorized otherwise.

    The scheme is case-insensitive; the credentials are base64 of UTF-8
    ``user:password`` (RFC 7617), split at the first ':'.
    """
    if authorization is None or not authorization.strip():
        raise Unauthorized("credentials required: use HTTP Basic authentication")
    if len(authorization) > _MAX_AUTHORIZATION_LENGTH:
        raise Unauthorized("malformed Authorization header: too long")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("unsupported authentication scheme: use HTTP Basic authentication")
    token = token.strip()
    try:
        # Some clients drop the padding; put it back rather than refuse them.
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise Unauthorized("malformed Authorization header: not base64 of UTF-8") from None
    user, colon, password = text.partition(":")
    if not colon:
        raise Unauthorized("malformed Authorization header: no ':' between user and password")
    return user, password


def authorize(
    table: FeedTable,
    feed_name: str,
    authorization_header: str | None,
    peer: str,
    forwarded_for: str | None,
) -> Feed:
    """The feed a request may push to, or the error to answer it with.

    Checks in order: the feed exists (else UnknownFeed); the client address (see
    ``client_address``) is in the feed's ``allowed_networks`` when it has some (else
    Forbidden, before any scrypt work, so that other networks cannot make us spend
    CPU); the Basic credentials are the feed's (else Unauthorized). Credentials of
    another feed are simply wrong credentials.

    A cache miss costs one scrypt (tens of ms, ~16 MiB): call it off the event loop,
    or first ask ``credentials_cached``. Error messages never contain the header or
    the password.
    """
    feed = table.feeds.get(feed_name)
    if feed is None:
        raise UnknownFeed(f"no feed called {feed_name!r}")
    if feed.allowed_networks:
        address = client_address(peer, forwarded_for, table.trusted_proxies)
        if address is None:
            raise Forbidden(f"feed {feed_name!r} only accepts known client addresses")
        if not in_any(address, feed.allowed_networks):
            raise Forbidden(f"client address {address} may not push to feed {feed_name!r}")
    user, password = basic_credentials(authorization_header)
    if not credentials_match(user, password, feed.user, feed.password_hash):
        raise Unauthorized("invalid user or password")
    return feed


def credentials_cached(table: FeedTable, feed_name: str, authorization_header: str | None) -> bool:
    """Whether ``authorize`` would accept these credentials without running scrypt.

    Cheap (a base64 decode and an HMAC): lets the app run the common case on the event
    loop and send only cache misses to a worker thread. Never raises.
    """
    feed = table.feeds.get(feed_name)
    if feed is None:
        return False
    try:
        user, password = basic_credentials(authorization_header)
    except Unauthorized:
        return False
    return credentials_known(user, password, feed.password_hash)
