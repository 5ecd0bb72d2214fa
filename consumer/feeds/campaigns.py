"""The ``[[campaigns]]`` tables of the feeds file: rules that name each event's campaign.

The rule itself, and how it matches, is ``consumer.core.campaigns.CampaignRule``;
this module only reads rules from the file. Serial ranges are pairs of digit strings,
``["first serial", "last serial"]``, inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumer.core.campaigns import CampaignRule
from consumer.feeds.errors import FeedsFileError
from consumer.feeds.keys import no_unknown_keys

__all__ = ["parse_campaign_rules"]

_RULE_KEYS = {"id", "mailer_ids", "serial_ranges", "stids", "job_ids", "mailing_group_ids"}


def parse_campaign_rules(data: object) -> tuple[CampaignRule, ...]:
    """The rules of the ``[[campaigns]]`` tables, in file order (the first match wins).

    ``data`` is the parsed value of ``campaigns``; FeedsFileError names what is wrong.
    """
    if not isinstance(data, list):
        raise FeedsFileError("campaigns", "must be an array of tables: [[campaigns]]")
    rules = []
    for index, item in enumerate(data):
        where = f"campaigns[{index}]"
        if not isinstance(item, dict):
            raise FeedsFileError(where, "must be a table")
        no_unknown_keys(item, _RULE_KEYS, f"{where}.")
        campaign = item.get("id")
        if not isinstance(campaign, str) or not campaign.strip():
            raise FeedsFileError(f"{where}.id", "must be a non-empty string")
        ranges = []
        for pair in _string_list(item, "serial_ranges", where, nested=True):
            low, high = (int(value) for value in pair)
            if low > high:
                raise FeedsFileError(f"{where}.serial_ranges", f"{pair[0]} is above {pair[1]}")
            ranges.append((low, high))
        rules.append(
            CampaignRule(
                campaign=campaign,
                mailer_ids=frozenset(_string_list(item, "mailer_ids", where)),
                serial_ranges=tuple(ranges),
                stids=frozenset(_string_list(item, "stids", where)),
                job_ids=frozenset(_string_list(item, "job_ids", where)),
                mailing_group_ids=frozenset(_string_list(item, "mailing_group_ids", where)),
            )
        )
    return tuple(rules)


def _string_list(
    item: Mapping[str, Any], key: str, where: str, *, nested: bool = False
) -> list[Any]:
    """The non-empty strings of ``item[key]`` (``nested``: its serial pairs); [] when absent."""
    values = item.get(key, [])
    if not isinstance(values, list):
        raise FeedsFileError(f"{where}.{key}", "must be an array")
    for value in values:
        if nested:
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, str) and v.isascii() and v.isdigit() for v in value)
            )
            if not ok:
                raise FeedsFileError(
                    f"{where}.{key}", 'each range is ["first serial", "last serial"]'
                )
        elif not isinstance(value, str) or not value:
            raise FeedsFileError(f"{where}.{key}", "must hold non-empty strings")
    return values
