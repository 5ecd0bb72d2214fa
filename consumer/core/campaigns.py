"""Campaigns: the mailer's name for a set of pieces, assigned to each event by rules.

A rule matches on any of mailer ID, serial-number ranges, STID, eDoc job id and eDoc
mailing group id. Within one criterion any listed value matches; all criteria a rule
names must match. The first matching rule wins; with none, the feed's campaign label
(if any) applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CampaignRule", "assign_campaign"]


@dataclass(frozen=True)
class CampaignRule:
    """One rule; empty criteria match anything."""

    campaign: str
    mailer_ids: frozenset[str] = frozenset()
    serial_ranges: tuple[tuple[int, int], ...] = ()  # inclusive, numeric
    stids: frozenset[str] = frozenset()
    job_ids: frozenset[str] = frozenset()
    mailing_group_ids: frozenset[str] = frozenset()

    def matches(
        self,
        *,
        mailer_id: str | None,
        serial_number: str | None,
        stid: str | None,
        job_id: str | None,
        mailing_group_id: str | None,
    ) -> bool:
        """Whether an event with these fields belongs to the rule's campaign."""
        if self.mailer_ids and mailer_id not in self.mailer_ids:
            return False
        if self.stids and stid not in self.stids:
            return False
        if self.job_ids and job_id not in self.job_ids:
            return False
        if self.mailing_group_ids and mailing_group_id not in self.mailing_group_ids:
            return False
        if self.serial_ranges:
            if not serial_number or not serial_number.isascii() or not serial_number.isdigit():
                return False
            serial = int(serial_number)
            return any(low <= serial <= high for low, high in self.serial_ranges)
        return True


def assign_campaign(
    rules: Sequence[CampaignRule],
    *,
    mailer_id: str | None,
    serial_number: str | None = None,
    stid: str | None = None,
    job_id: str | None = None,
    mailing_group_id: str | None = None,
) -> str | None:
    """The campaign of the first rule that matches, or None."""
    for rule in rules:
        if rule.matches(
            mailer_id=mailer_id,
            serial_number=serial_number,
            stid=stid,
            job_id=job_id,
            mailing_group_id=mailing_group_id,
        ):
            return rule.campaign
    return None
