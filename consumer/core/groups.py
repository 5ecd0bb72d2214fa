"""Message groups: whether a group's messages all arrived, from its message receipts.

IV-MTR splits a large result over several messages sharing a ``msgGrpId``; each says
``totMsgCnt`` (messages in the group) and ``totRecCnt`` (records in the group). Pure
functions over receipts (plain mappings), so every replica decides the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consumer.core.status import ReceiptStatus

__all__ = ["GroupVerdict", "judge_group"]

Receipt = Mapping[str, Any]


@dataclass(frozen=True)
class GroupVerdict:
    """A group receipt to write: GROUP_COMPLETE, or GROUP_INCOMPLETE once its time ran out."""

    status: ReceiptStatus
    feed: str | None
    tot_msg_cnt: int | None
    tot_rec_cnt: int | None
    messages_received: list[int]
    records_received: int
    records_rejected: int
    published: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def judge_group(
    messages: Mapping[int, Receipt],
    current: Receipt | None,
    *,
    first_seen_ms: int,
    now_ms: int,
    timeout_ms: int,
) -> GroupVerdict | None:
    """The group receipt to write now, or None when the current one still holds."""
    if not messages or (current is not None and current["status"] == ReceiptStatus.GROUP_COMPLETE):
        return None
    problems: list[str] = []
    tot_msg_cnt = _agreed(messages, "tot_msg_cnt", "totMsgCnt", problems)
    tot_rec_cnt = _agreed(messages, "tot_rec_cnt", "totRecCnt", problems)
    serials = sorted(messages)
    records = sum(int(r["records_received"]) for r in messages.values())
    # totMsgCnt comes from the sender: never build a range of it.
    complete = (
        tot_msg_cnt is not None
        and tot_msg_cnt <= len(serials)
        and all(serial in messages for serial in range(1, tot_msg_cnt + 1))
    )
    if complete:
        status = ReceiptStatus.GROUP_COMPLETE
        assert tot_msg_cnt is not None
        beyond = [serial for serial in serials if serial > tot_msg_cnt]
        if beyond:
            problems.append(f"msgSerNbr {beyond} beyond totMsgCnt {tot_msg_cnt}")
        if tot_rec_cnt is not None and records != tot_rec_cnt:
            problems.append(f"records received {records} != totRecCnt {tot_rec_cnt}")
    elif current is None and now_ms - first_seen_ms >= timeout_ms:
        status = ReceiptStatus.GROUP_INCOMPLETE
        if tot_msg_cnt is None:
            problems.append("no message says totMsgCnt")
        else:
            problems.append(_missing(messages, tot_msg_cnt))
    else:
        return None
    published: Counter[str] = Counter()
    for receipt in messages.values():
        published.update(receipt["published"])
    return GroupVerdict(
        status=status,
        feed=next(iter(messages.values()))["feed"],
        tot_msg_cnt=tot_msg_cnt,
        tot_rec_cnt=tot_rec_cnt,
        messages_received=serials,
        records_received=records,
        records_rejected=sum(int(r["records_rejected"]) for r in messages.values()),
        published=dict(published),
        problems=problems,
    )


_LISTED = 20


def _missing(messages: Mapping[int, Receipt], tot_msg_cnt: int) -> str:
    missing_count = tot_msg_cnt - sum(1 for serial in messages if 1 <= serial <= tot_msg_cnt)
    listed = []
    for serial in range(1, tot_msg_cnt + 1):
        if serial not in messages:
            listed.append(serial)
            if len(listed) == _LISTED:
                break
    if missing_count <= _LISTED:
        return f"missing msgSerNbr {listed}"
    return f"missing {missing_count} msgSerNbr, the first {listed}"


def _agreed(
    messages: Mapping[int, Receipt], name: str, label: str, problems: list[str]
) -> int | None:
    values = {int(r[name]) for r in messages.values() if r[name] is not None}
    if len(values) > 1:
        problems.append(f"messages disagree on {label}: {sorted(values)}")
    return max(values) if values else None
