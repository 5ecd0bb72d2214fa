"""The feeds file as pydantic models: what a valid file looks like, key by key.

These models describe the TOML document and nothing else: strict types (a string where
a string is meant, an array where an array is meant; nothing is coerced), no unknown key
in any table (a misspelt ``alowed_networks`` would otherwise be ignored, and its feed run
without the limit it was meant to have), and each value checked by the rule written
beside its type. ``check_feeds_file`` validates a parsed file and turns every mistake into
a ``FeedsFileProblem`` naming its feed and key path; ``consumer.feeds.model`` converts the
valid result into the frozen ``Feed`` and ``FeedTable`` the service uses, so nothing
outside this package sees a pydantic model.

Two rules span feeds: two feeds may not share a user, and one topic may not serve two
keys. They are checked on the raw table, beside the model (``_clashes``), because a
model validator runs only once every field is valid, and cannot point at one key inside
one feed; this way they are reported together with every other mistake.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from consumer.core.records import RecordKind
from consumer.feeds.errors import FeedsFileError, FeedsFileProblem
from consumer.feeds.networks import IPNetwork
from consumer.feeds.passwords import is_password_hash

__all__ = [
    "DEAD_LETTERS",
    "FEED_NAME",
    "TOPIC_KEYS",
    "CampaignRuleModel",
    "FeedModel",
    "FeedsFileModel",
    "ProxiesModel",
    "TopicsModel",
    "check_feeds_file",
]

FEED_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Feed names, as accepted in the URL by ``consumer.http.app``."""

DEAD_LETTERS: Final = "dead_letters"
"""The key of the dead-letter topic in a feed's ``topics`` table, beside the record kinds."""
TOPIC_KEYS: Final = frozenset({*(kind.value for kind in RecordKind), DEAD_LETTERS})
"""Keys of a feed's ``topics`` table: the record kinds, and ``dead_letters``."""

# Kafka's own rule for topic names (``kafka.common.internals.Topic``).
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_MAX_CAMPAIGN_LENGTH = 256
_MAX_USER_LENGTH = 128


def _mistake(message: str) -> PydanticCustomError:
    """A validation error whose message is ``message``, as is (no "Value error, ")."""
    # Passed as context, not as the template: braces in it are then never format fields.
    return PydanticCustomError("feeds_file", "{message}", {"message": message})


# ----------------------------------------------------------------------------- values


def _feed_name(name: str) -> str:
    if not FEED_NAME.fullmatch(name):
        raise _mistake(
            "a feed name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


def _label(value: str) -> str:
    if not value.strip() or len(value) > _MAX_CAMPAIGN_LENGTH:
        raise _mistake(f"must be a non-empty string of at most {_MAX_CAMPAIGN_LENGTH} characters")
    return value


def _user(value: str) -> str:
    if not value or len(value) > _MAX_USER_LENGTH or ":" in value or not value.isprintable():
        raise _mistake(
            f"must be 1 to {_MAX_USER_LENGTH} printable characters without ':' "
            "(Basic auth cannot carry a ':' in the user)"
        )
    return value


def _password_hash(value: str) -> str:
    # The value is never quoted back: it may be a plain password pasted by mistake.
    if not is_password_hash(value):
        raise _mistake(
            "not a scrypt hash produced by `ivmtr-stream hash-password` "
            "(scrypt$N$r$p$<salt>$<hash>, never a plain password)"
        )
    return value


def _network(value: object) -> IPNetwork:
    if not isinstance(value, str):
        raise _mistake("must be a CIDR string")
    try:
        # strict: "10.1.2.3/8" is refused rather than silently widened to 10.0.0.0/8.
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise _mistake(f"{value!r} is not an IPv4/IPv6 network: {exc}") from None


def _topic_name(value: str) -> str:
    if not _TOPIC_NAME.fullmatch(value) or value in {".", ".."}:
        raise _mistake("a topic name is 1 to 249 letters, digits, '.', '_' or '-'")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _mistake("must be a non-empty string")
    return value


# A rule naming a value that no barcode can carry would never match, silently: the values a
# barcode field can hold are refused early instead (USPS-B-3200: a mailer ID is 9 digits
# when it starts with 9, else 6; the serial takes the rest of 15 digits; a STID is 3).


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _mailer_id(value: str) -> str:
    if not _digits(value) or len(value) != (9 if value.startswith("9") else 6):
        raise _mistake(f"{value!r} is not a mailer ID (6 digits, or 9 digits starting with 9)")
    return value


def _stid(value: str) -> str:
    if not _digits(value) or len(value) != 3:
        raise _mistake(f"{value!r} is not a service type ID (3 digits)")
    return value


def _serial(value: str) -> str:
    if not _digits(value):
        raise _mistake('each range is ["first serial", "last serial"], in digits')
    if len(value) > 9:
        raise _mistake(f"{value} has more than 9 digits: no serial number is that long")
    return value


def _serial_range(pair: list[str]) -> list[str]:
    if len(pair) != 2:
        raise _mistake('each range is ["first serial", "last serial"]')
    if int(pair[0]) > int(pair[1]):
        raise _mistake(f"{pair[0]} is above {pair[1]}")
    return pair


FeedName = Annotated[str, AfterValidator(_feed_name)]
Network = Annotated[IPNetwork, PlainValidator(_network, json_schema_input_type=str)]
TopicName = Annotated[str, AfterValidator(_topic_name)]
NonBlank = Annotated[str, AfterValidator(_not_blank)]
Serial = Annotated[str, AfterValidator(_serial)]
MailerId = Annotated[str, AfterValidator(_mailer_id)]
Stid = Annotated[str, AfterValidator(_stid)]
SerialRange = Annotated[list[Serial], AfterValidator(_serial_range)]
KindName = Literal["piece", "bundle", "handling_unit", "container", "auto"]
"""A feed's ``kind``: a ``RecordKind`` value, or ``auto`` (each record's kind is detected)."""


# ----------------------------------------------------------------------------- tables


class _Table(BaseModel):
    """A table of the file: strict types, no unknown key, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TopicsModel(_Table):
    """``[feeds.<name>.topics]``: topics that replace the default topic of a key."""

    piece: TopicName | None = None
    bundle: TopicName | None = None
    handling_unit: TopicName | None = None
    container: TopicName | None = None
    dead_letters: TopicName | None = None

    def overrides(self) -> dict[str, str]:
        """The keys given, with their topics, in ``TOPIC_KEYS`` terms."""
        return {key: topic for key, topic in self if topic is not None}


class FeedModel(_Table):
    """``[feeds.<name>]``: one feed."""

    kind: KindName = "auto"
    campaign: Annotated[str, AfterValidator(_label)] | None = None
    user: Annotated[str, AfterValidator(_user)]
    password_hash: Annotated[str, AfterValidator(_password_hash)] = Field(repr=False)
    allowed_networks: list[Network] | None = None
    topics: TopicsModel = Field(default_factory=TopicsModel)

    @field_validator("allowed_networks")
    @classmethod
    def _some_network(cls, networks: list[IPNetwork] | None) -> list[IPNetwork] | None:
        if networks == []:
            # An empty list would refuse every client, which is never what was meant.
            raise _mistake("is empty, which would refuse every client (leave it out to allow any)")
        return networks


class ProxiesModel(_Table):
    """``[proxies]``: peers whose ``X-Forwarded-For`` is believed."""

    trusted: list[Network] = Field(default_factory=list)


class CampaignRuleModel(_Table):
    """One ``[[campaigns]]`` table; serial ranges are ``["first", "last"]``, inclusive."""

    id: NonBlank
    mailer_ids: list[MailerId] = Field(default_factory=list)
    serial_ranges: list[SerialRange] = Field(default_factory=list)
    stids: list[Stid] = Field(default_factory=list)
    job_ids: list[NonBlank] = Field(default_factory=list)
    mailing_group_ids: list[NonBlank] = Field(default_factory=list)


class FeedsFileModel(_Table):
    """The whole file: feeds by name, trusted proxies, campaign rules in file order."""

    feeds: dict[FeedName, FeedModel] = Field(default_factory=dict, validate_default=True)
    proxies: ProxiesModel = Field(default_factory=ProxiesModel)
    campaigns: list[CampaignRuleModel] = Field(default_factory=list)

    @field_validator("feeds")
    @classmethod
    def _some_feed(cls, feeds: dict[str, FeedModel]) -> dict[str, FeedModel]:
        if not feeds:
            raise _mistake("no feed defined: add a [feeds.<name>] table")
        return feeds


# ----------------------------------------------------------------------------- checking


def check_feeds_file(data: Mapping[str, Any]) -> FeedsFileModel:
    """The parsed TOML ``data`` as a valid ``FeedsFileModel``.

    FeedsFileError lists every mistake: each one the model finds, then the clashes
    between feeds (shared users, a topic serving two keys).
    """
    problems: list[FeedsFileProblem] = []
    model: FeedsFileModel | None = None
    try:
        model = FeedsFileModel.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
    problems += _clashes(data.get("feeds"))
    if problems or model is None:
        raise FeedsFileError(problems)
    return model


def _problem(error: ErrorDetails) -> FeedsFileProblem:
    """The mistake of one pydantic error, named by its key path in the file."""
    # "[key]" marks an invalid dict key (a feed name): the key itself is the field.
    loc = tuple(part for part in error["loc"] if part != "[key]")
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    feed = str(loc[1]) if len(loc) >= 2 and loc[0] == "feeds" else None
    return FeedsFileProblem(field.removeprefix("."), _message(error, loc), feed)


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    """Words for a pydantic error, in the file's terms (tables, arrays, keys)."""
    match error["type"]:
        case "feeds_file":
            return error["msg"]
        case "missing":
            return "missing"
        case "extra_forbidden":
            return f"unknown key (known: {', '.join(sorted(_known_keys(loc[:-1])))})"
        case "string_type":
            return "must be a string"
        case "list_type":
            return "must be an array"
        case "dict_type" | "model_type" | "model_attributes_type":
            return "must be a table"
        case "literal_error":
            return f"must be one of {error.get('ctx', {}).get('expected', '')}"
        case _:
            return error["msg"]


def _known_keys(table: tuple[int | str, ...]) -> list[str]:
    """The keys the model allows in the table at key path ``table``."""
    node: Any = FeedsFileModel
    for part in table:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            node = field.annotation if field is not None else None
        else:  # list[X] or dict[K, X]: the element's type
            node = get_args(node)[-1] if get_args(node) else None
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _clashes(feeds: object) -> list[FeedsFileProblem]:
    """Users shared by two feeds, and topics given to two keys, read from the raw table.

    Two feeds may not share a user: a user then names exactly one feed in logs, and
    "credentials of another feed" is never ambiguous (to let one sender push to two
    feeds, give it two users). One topic carries one schema: the same topic for two
    keys would mix them. Values of the wrong type are the model's mistakes, skipped here.
    """
    if not isinstance(feeds, Mapping):
        return []
    problems: list[FeedsFileProblem] = []
    users: dict[str, str] = {}
    topic_owners: dict[str, tuple[str, str]] = {}
    for name, feed in feeds.items():
        if not isinstance(feed, Mapping):
            continue
        user = feed.get("user")
        if isinstance(user, str):
            if user in users:
                problems.append(
                    FeedsFileProblem(
                        f"feeds.{name}.user",
                        f"user {user!r} is also the user of feed {users[user]!r}: "
                        "each feed needs its own user",
                        name,
                    )
                )
            else:
                users[user] = name
        topics = feed.get("topics")
        if not isinstance(topics, Mapping):
            continue
        for key, topic in topics.items():
            if key not in TOPIC_KEYS or not isinstance(topic, str):
                continue
            owner = topic_owners.setdefault(topic, (key, name))
            if owner[0] != key:
                problems.append(
                    FeedsFileProblem(
                        f"feeds.{name}.topics.{key}",
                        f"topic {topic!r} is already the {owner[0]} topic of feed {owner[1]!r}",
                        name,
                    )
                )
    return problems
