"""The group watcher: writes a receipt when a message group completes or times out.

It runs in every process and writes the receipts of the groups whose delivery slot the
process owns. Writing a group receipt goes through the group key's slot like a message
does, and is decided again after the slot is claimed, so that a receipt is never written
twice, even when a rebalance moves the slot meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from consumer.core.groups import GroupVerdict, judge_group
from consumer.core.status import ReceiptStatus
from producer import Publisher, PublishError
from producer.deliveries import GroupState, group_key

__all__ = ["GroupWatcher"]

log = structlog.get_logger()


class GroupWatcher:
    """Checks the groups of the delivery log every ``interval_s``."""

    def __init__(
        self, publisher: Publisher, *, timeout_s: float, interval_s: float, replica_id: str
    ) -> None:
        self._publisher = publisher
        self._timeout_ms = int(timeout_s * 1000)
        self._interval_s = interval_s
        self._replica_id = replica_id
        self._task: asyncio.Task[None] | None = None
        self.incomplete_groups = 0

    async def start(self) -> None:
        """Start checking in the background."""
        self._task = asyncio.create_task(self._run(), name="group-watcher")

    async def stop(self) -> None:
        """Stop checking; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except PublishError as exc:
                log.warning("group check failed", error=str(exc))

    async def check(self) -> list[str]:
        """Write the group receipts that are due; returns the groups written."""
        written = []
        incomplete = 0
        for group in self._publisher.log.groups():
            if self._verdict(group) is None:
                if group.receipt is None or group.receipt["status"] != ReceiptStatus.GROUP_COMPLETE:
                    incomplete += 1
                continue
            if not self._publisher.owns(group_key(group.msg_grp_id)):
                continue  # the slot's owner writes it
            if await self._write(group.msg_grp_id):
                written.append(group.msg_grp_id)
        self.incomplete_groups = incomplete
        return written

    def _verdict(self, group: GroupState) -> GroupVerdict | None:
        return judge_group(
            group.messages,
            group.receipt,
            first_seen_ms=group.first_seen_ms,
            now_ms=time.time_ns() // 1_000_000,
            timeout_ms=self._timeout_ms,
        )

    async def _write(self, msg_grp_id: str) -> bool:
        key = group_key(msg_grp_id)
        started = self._receipt(msg_grp_id, None, ReceiptStatus.STARTED)
        async with self._publisher.delivery(key, started) as delivery:
            group = self._publisher.log.group(msg_grp_id)
            verdict = self._verdict(group) if group is not None else None
            if verdict is None:  # another replica wrote it meanwhile
                delivery.discard = True
                return False
            receipt = self._receipt(msg_grp_id, verdict, verdict.status)
            delivery.receipt = receipt
            await delivery.add(
                self._publisher.topics.deliveries.message(key, receipt, partition=delivery.slot)
            )
        logger = (
            log.warning
            if verdict.problems or verdict.status is ReceiptStatus.GROUP_INCOMPLETE
            else log.info
        )
        logger(
            "message group "
            + ("complete" if verdict.status is ReceiptStatus.GROUP_COMPLETE else "incomplete"),
            msg_grp_id=msg_grp_id,
            messages=len(verdict.messages_received),
            tot_msg_cnt=verdict.tot_msg_cnt,
            records=verdict.records_received,
            tot_rec_cnt=verdict.tot_rec_cnt,
            problems=verdict.problems,
        )
        return True

    def _receipt(
        self, msg_grp_id: str, verdict: GroupVerdict | None, status: ReceiptStatus
    ) -> dict[str, Any]:
        return {
            "kind": "GROUP",
            "status": status,
            "feed": verdict.feed if verdict else None,
            "msg_grp_id": msg_grp_id,
            "msg_ser_nbr": None,
            "tot_msg_cnt": verdict.tot_msg_cnt if verdict else None,
            "rec_cnt": None,
            "tot_rec_cnt": verdict.tot_rec_cnt if verdict else None,
            "records_received": verdict.records_received if verdict else 0,
            "records_rejected": verdict.records_rejected if verdict else 0,
            "published": verdict.published if verdict else {},
            "content_sha256": None,
            "messages_received": verdict.messages_received if verdict else [],
            "problems": verdict.problems if verdict else [],
            "replica": self._replica_id,
            "written_at": time.time_ns() // 1_000_000,
        }
