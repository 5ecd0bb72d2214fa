"""The feeds file: who may push to which feed, and from where; Basic-auth checks.

A feeds file (TOML, see ``examples/feeds.toml``) names every feed, i.e. the ``{feed}``
of ``POST /v1/feeds/{feed}``. ``load_feeds`` reads and checks it once at start-up;
``authorize`` then decides each request from plain values (no HTTP framework here).

    model       Feed, FeedTable, load_feeds, parse_feeds: the file, as the service uses it
    schema      the file's pydantic models: every check, every mistake named by key path
    networks    allowed networks, trusted proxies, X-Forwarded-For: client_address
    passwords   scrypt hashes, verify_password and the cache of successes
    access      authorize, basic_credentials, credentials_cached: one request's check
    dev         generate_dev_credentials: a development feeds file
    throttle    FailureThrottle: failed checks per client address, lockouts;
                TooManyFailures
    errors      FeedsFileError (with each FeedsFileProblem), Unauthorized, Forbidden

Only ``load_feeds`` and ``generate_dev_credentials`` touch the file system; everything
else is pure apart from the verification cache.
"""

from consumer.feeds.access import authorize, basic_credentials, credentials_cached
from consumer.feeds.dev import DEV_FEED, DEV_USER, generate_dev_credentials, password_file
from consumer.feeds.errors import FeedsFileError, FeedsFileProblem, Forbidden, Unauthorized
from consumer.feeds.model import (
    DEAD_LETTERS,
    FEED_NAME,
    TOPIC_KEYS,
    Feed,
    FeedTable,
    load_feeds,
    parse_feeds,
)
from consumer.feeds.networks import IPAddress, IPNetwork, client_address
from consumer.feeds.passwords import clear_verification_cache, hash_password, verify_password
from consumer.feeds.throttle import FailureThrottle, ThrottlePolicy, TooManyFailures, client_key

__all__ = [
    "DEAD_LETTERS",
    "DEV_FEED",
    "DEV_USER",
    "FEED_NAME",
    "TOPIC_KEYS",
    "FailureThrottle",
    "Feed",
    "FeedTable",
    "FeedsFileError",
    "FeedsFileProblem",
    "Forbidden",
    "IPAddress",
    "IPNetwork",
    "ThrottlePolicy",
    "TooManyFailures",
    "Unauthorized",
    "authorize",
    "basic_credentials",
    "clear_verification_cache",
    "client_address",
    "client_key",
    "credentials_cached",
    "generate_dev_credentials",
    "hash_password",
    "load_feeds",
    "parse_feeds",
    "password_file",
    "verify_password",
]
