"""Tests for consumer.core.groups: when a message group is complete, or incomplete for good."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.core.groups import GroupVerdict, judge_group

GROUP = "GRP-0001"
FIRST_SEEN = 1_736_787_718_000
TIMEOUT = 60_000
BEFORE = FIRST_SEEN + TIMEOUT - 1  # not yet timed out
AFTER = FIRST_SEEN + TIMEOUT  # timed out


def receipt(
    serial: int,
    *,
    tot_msg_cnt: int | None = 3,
    tot_rec_cnt: int | None = 30,
    records: int = 10,
    rejected: int = 0,
    published: dict[str, int] | None = None,
    feed: str | None = "pieces",
    status: str = "PUBLISHED",
) -> dict[str, Any]:
    """A message receipt shaped like ivmtr.events.DeliveryReceipt."""
    return {
        "kind": "MESSAGE",
        "status": status,
        "feed": feed,
        "msg_grp_id": GROUP,
        "msg_ser_nbr": serial,
        "tot_msg_cnt": tot_msg_cnt,
        "rec_cnt": records,
        "tot_rec_cnt": tot_rec_cnt,
        "records_received": records,
        "records_rejected": rejected,
        "published": {"ivmtr.piece-scans": records - rejected} if published is None else published,
        "content_sha256": None,
        "messages_received": [],
        "problems": [],
        "replica": "r1",
        "written_at": FIRST_SEEN + serial,
    }


def group_receipt(status: str) -> dict[str, Any]:
    return {
        "kind": "GROUP",
        "status": status,
        "feed": "pieces",
        "msg_grp_id": GROUP,
        "msg_ser_nbr": None,
        "tot_msg_cnt": 3,
        "rec_cnt": None,
        "tot_rec_cnt": 30,
        "records_received": 20,
        "records_rejected": 0,
        "published": {},
        "content_sha256": None,
        "messages_received": [1, 2],
        "problems": ["missing msgSerNbr [3]"],
        "replica": "r1",
        "written_at": AFTER,
    }


def messages(*receipts: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Keyed by msg_ser_nbr, in the order given (the order they arrived)."""
    return {int(r["msg_ser_nbr"]): r for r in receipts}


def judge(
    group: dict[int, dict[str, Any]], current: dict[str, Any] | None = None, *, now: int = BEFORE
) -> GroupVerdict | None:
    return judge_group(group, current, first_seen_ms=FIRST_SEEN, now_ms=now, timeout_ms=TIMEOUT)


# (messages, current group receipt, now) -> (status, messages_received, records, problems)
CASES = [
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 30, []),
        id="complete-in-order",
    ),
    pytest.param(
        messages(receipt(3), receipt(1), receipt(2)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 30, []),
        id="complete-out-of-order",
    ),
    pytest.param(
        messages(receipt(1)),
        None,
        BEFORE,
        None,
        id="one-of-three-not-timed-out",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=1, tot_rec_cnt=10)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1], 10, []),
        id="single-message-group",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3, records=7)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 27, ["records received 27 != totRecCnt 30"]),
        id="complete-record-mismatch",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3, tot_rec_cnt=None)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 30, []),
        id="tot-rec-cnt-on-some-messages-only",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3, tot_rec_cnt=None, records=5)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 25, ["records received 25 != totRecCnt 30"]),
        id="tot-rec-cnt-on-some-messages-mismatch",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3, tot_rec_cnt=31, records=11)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 31, ["messages disagree on totRecCnt: [30, 31]"]),
        id="disagree-on-tot-rec-cnt",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=2), receipt(2, tot_msg_cnt=2), receipt(3)),
        None,
        BEFORE,
        ("GROUP_COMPLETE", [1, 2, 3], 30, ["messages disagree on totMsgCnt: [2, 3]"]),
        id="disagree-on-tot-msg-cnt-complete-under-larger",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=2), receipt(2, tot_msg_cnt=3)),
        None,
        BEFORE,
        None,
        id="disagree-on-tot-msg-cnt-larger-not-reached",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=2), receipt(2, tot_msg_cnt=3)),
        None,
        AFTER,
        (
            "GROUP_INCOMPLETE",
            [1, 2],
            20,
            ["messages disagree on totMsgCnt: [2, 3]", "missing msgSerNbr [3]"],
        ),
        id="disagree-on-tot-msg-cnt-timed-out",
    ),
    pytest.param(
        messages(
            receipt(1, tot_msg_cnt=2, tot_rec_cnt=20),
            receipt(2, tot_msg_cnt=2, tot_rec_cnt=20),
            receipt(4, tot_msg_cnt=2, tot_rec_cnt=20),
        ),
        None,
        BEFORE,
        (
            "GROUP_COMPLETE",
            [1, 2, 4],
            30,
            ["msgSerNbr [4] beyond totMsgCnt 2", "records received 30 != totRecCnt 20"],
        ),
        id="serial-beyond-tot-msg-cnt",
    ),
    pytest.param(
        messages(receipt(2), receipt(5)),
        None,
        BEFORE,
        None,
        id="serial-beyond-but-incomplete-not-timed-out",
    ),
    pytest.param(
        messages(receipt(2)),
        None,
        AFTER,
        ("GROUP_INCOMPLETE", [2], 10, ["missing msgSerNbr [1, 3]"]),
        id="timed-out-lists-missing",
    ),
    pytest.param(
        messages(receipt(1)),
        None,
        AFTER + 10 * TIMEOUT,
        ("GROUP_INCOMPLETE", [1], 10, ["missing msgSerNbr [2, 3]"]),
        id="long-timed-out",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=None), receipt(2, tot_msg_cnt=None)),
        None,
        BEFORE,
        None,
        id="no-tot-msg-cnt-not-timed-out",
    ),
    pytest.param(
        messages(receipt(1, tot_msg_cnt=None), receipt(2, tot_msg_cnt=None)),
        None,
        AFTER,
        ("GROUP_INCOMPLETE", [1, 2], 20, ["no message says totMsgCnt"]),
        id="no-tot-msg-cnt-timed-out",
    ),
    pytest.param(
        messages(receipt(1), receipt(2)),
        group_receipt("GROUP_INCOMPLETE"),
        AFTER + TIMEOUT,
        None,
        id="incomplete-receipt-not-written-twice",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3)),
        group_receipt("GROUP_INCOMPLETE"),
        AFTER + TIMEOUT,
        ("GROUP_COMPLETE", [1, 2, 3], 30, []),
        id="incomplete-receipt-then-completion",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3)),
        group_receipt("GROUP_COMPLETE"),
        BEFORE,
        None,
        id="complete-receipt-final",
    ),
    pytest.param(
        messages(receipt(1), receipt(2), receipt(3), receipt(4)),
        group_receipt("GROUP_COMPLETE"),
        AFTER,
        None,
        id="complete-receipt-final-even-with-late-message",
    ),
    pytest.param({}, None, AFTER, None, id="no-messages"),
]


@pytest.mark.parametrize(("group", "current", "now", "expected"), CASES)
def test_judge_group(
    group: dict[int, dict[str, Any]],
    current: dict[str, Any] | None,
    now: int,
    expected: tuple[str, list[int], int, list[str]] | None,
) -> None:
    verdict = judge(group, current, now=now)
    if expected is None:
        assert verdict is None
        return
    assert verdict is not None
    status, serials, records, problems = expected
    assert verdict.status == status
    assert verdict.messages_received == serials
    assert verdict.records_received == records
    assert verdict.problems == problems


def test_timeout_boundary() -> None:
    group = messages(receipt(1))
    assert judge(group, now=FIRST_SEEN) is None
    assert judge(group, now=FIRST_SEEN + TIMEOUT - 1) is None
    verdict = judge(group, now=FIRST_SEEN + TIMEOUT)
    assert verdict is not None
    assert verdict.status == "GROUP_INCOMPLETE"


def test_complete_verdict_fields() -> None:
    verdict = judge(
        messages(
            receipt(2, records=12, rejected=2, published={"ivmtr.piece-scans": 10, "dlq": 2}),
            receipt(1, records=10, rejected=1, published={"ivmtr.piece-scans": 9, "dlq": 1}),
            receipt(3, records=8, published={"ivmtr.piece-scans": 6, "ivmtr.tray-scans": 2}),
        )
    )
    assert verdict == GroupVerdict(
        status="GROUP_COMPLETE",
        feed="pieces",
        tot_msg_cnt=3,
        tot_rec_cnt=30,
        messages_received=[1, 2, 3],
        records_received=30,
        records_rejected=3,
        published={"ivmtr.piece-scans": 25, "dlq": 3, "ivmtr.tray-scans": 2},
        problems=[],
    )


def test_incomplete_verdict_sums_what_arrived() -> None:
    verdict = judge(
        messages(
            receipt(1, records=10, rejected=4, published={"a": 6, "dlq": 4}),
            receipt(3, records=5, rejected=1, published={"a": 3, "b": 1, "dlq": 1}),
        ),
        now=AFTER,
    )
    assert verdict is not None
    assert verdict.status == "GROUP_INCOMPLETE"
    assert verdict.tot_msg_cnt == 3
    assert verdict.tot_rec_cnt == 30
    assert verdict.records_received == 15
    assert verdict.records_rejected == 5
    assert verdict.published == {"a": 9, "b": 1, "dlq": 5}
    assert verdict.problems == ["missing msgSerNbr [2]"]


def test_empty_published_maps() -> None:
    verdict = judge(
        messages(*(receipt(n, records=0, tot_rec_cnt=0, published={}) for n in (1, 2, 3)))
    )
    assert verdict is not None
    assert verdict.status == "GROUP_COMPLETE"
    assert verdict.published == {}
    assert verdict.records_received == 0
    assert verdict.problems == []


def test_inputs_are_not_modified() -> None:
    group = messages(receipt(1, published={"a": 1}), receipt(2, published={"a": 2}))
    before = {n: dict(r, published=dict(r["published"])) for n, r in group.items()}
    verdict = judge(group, now=AFTER)
    assert verdict is not None
    assert verdict.published == {"a": 3}
    assert group == before


@given(
    total=st.integers(min_value=1, max_value=12),
    data=st.data(),
    timed_out=st.booleans(),
    incomplete_receipt=st.booleans(),
)
def test_complete_iff_every_serial_arrived(
    total: int, data: st.DataObject, timed_out: bool, incomplete_receipt: bool
) -> None:
    serials = data.draw(
        st.sets(st.integers(min_value=1, max_value=total + 3), min_size=1), label="serials"
    )
    order = data.draw(st.permutations(sorted(serials)), label="arrival order")
    group = messages(*(receipt(n, tot_msg_cnt=total, tot_rec_cnt=None) for n in order))
    current = group_receipt("GROUP_INCOMPLETE") if incomplete_receipt else None
    now = AFTER if timed_out else BEFORE

    verdict = judge(group, current, now=now)

    wanted = set(range(1, total + 1))
    if wanted <= serials:
        assert verdict is not None
        assert verdict.status == "GROUP_COMPLETE"
        beyond = sorted(serials - wanted)
        expected = [f"msgSerNbr {beyond} beyond totMsgCnt {total}"] if beyond else []
        assert verdict.problems == expected
    elif timed_out and not incomplete_receipt:
        assert verdict is not None
        assert verdict.status == "GROUP_INCOMPLETE"
        assert verdict.problems == [f"missing msgSerNbr {sorted(wanted - serials)}"]
    else:
        assert verdict is None
    if verdict is not None:
        assert verdict.messages_received == sorted(serials)
        assert verdict.records_received == 10 * len(serials)
        assert verdict.tot_msg_cnt == total


# The pipeline accepts any totMsgCnt in 0 <= n < 2**63 (consumer/core/pipeline.py, _set_envelope).
LARGEST_TOT_MSG_CNT = 2**63 - 1
_JUDGE_IN_A_BOX = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
from consumer.core.groups import judge_group
tot_msg_cnt, now_ms = int(sys.argv[1]), int(sys.argv[2])
receipt = {"feed": "pieces", "tot_msg_cnt": tot_msg_cnt, "tot_rec_cnt": None,
           "records_received": 10, "records_rejected": 0, "published": {}}
verdict = judge_group({1: receipt}, None, first_seen_ms=0, now_ms=now_ms, timeout_ms=1000)
print(json.dumps(None if verdict is None else [verdict.status, verdict.problems]))
"""


@pytest.mark.parametrize(
    ("tot_msg_cnt", "now_ms", "status"),
    [
        (LARGEST_TOT_MSG_CNT, 500, None),
        (LARGEST_TOT_MSG_CNT, 1000, "GROUP_INCOMPLETE"),
        (1_000_000, 1000, "GROUP_INCOMPLETE"),
    ],
    ids=["huge-not-timed-out", "huge-timed-out", "million-timed-out"],
)
def test_large_tot_msg_cnt_is_judged_cheaply(
    tot_msg_cnt: int, now_ms: int, status: str | None
) -> None:
    # In a child with 512 MiB of address space, so the bug cannot take this process down.
    done = subprocess.run(
        [sys.executable, "-c", _JUDGE_IN_A_BOX, str(tot_msg_cnt), str(now_ms)],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    verdict = json.loads(done.stdout)
    if status is None:
        assert verdict is None
        return
    assert verdict[0] == status
    # A receipt has to fit in one Kafka record: its problems must stay small.
    assert sum(len(problem) for problem in verdict[1]) < 10_000
