"""How the slot group deals delivery slots: balanced, sticky, deterministic."""

from __future__ import annotations

from collections import Counter

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from hypothesis import given
from hypothesis import strategies as st

from producer.slot_group import SlotAssignor, SlotMember, assign_slots


def _shares(dealt: dict[str, list[int]]) -> list[int]:
    return sorted(len(held) for held in dealt.values())


def test_one_member_gets_every_slot() -> None:
    assert assign_slots(16, {"a": SlotMember("http://a")}) == {"a": list(range(16))}


def test_a_joining_member_takes_half_and_the_first_keeps_the_rest() -> None:
    before = {"a": SlotMember("http://a", tuple(range(16))), "b": SlotMember("http://b")}
    dealt = assign_slots(16, before)
    assert len(dealt["a"]) == len(dealt["b"]) == 8
    assert set(dealt["a"]) | set(dealt["b"]) == set(range(16))
    assert set(dealt["a"]) <= set(range(16))  # only slots it held: none taken from it in vain


def test_a_member_leaving_moves_only_its_own_slots() -> None:
    held = {"a": (0, 1, 2, 3, 4), "b": (5, 6, 7, 8, 9), "c": (10, 11, 12, 13, 14, 15)}
    dealt = assign_slots(16, {m: SlotMember(m, slots) for m, slots in held.items() if m != "c"})
    assert set(held["a"]) <= set(dealt["a"]) and set(held["b"]) <= set(dealt["b"])
    assert sorted(dealt["a"] + dealt["b"]) == list(range(16))


def test_slots_beyond_the_topic_and_slots_claimed_twice_are_dealt_once() -> None:
    members = {"a": SlotMember("a", (0, 1, 99)), "b": SlotMember("b", (0, 1, 2))}
    dealt = assign_slots(4, members)
    assert sorted(dealt["a"] + dealt["b"]) == [0, 1, 2, 3]
    assert _shares(dealt) == [2, 2]


@given(
    slots=st.integers(1, 64),
    owned=st.dictionaries(
        st.text("abcdef", min_size=1, max_size=3),
        st.lists(st.integers(0, 70), max_size=20, unique=True),
        min_size=1,
        max_size=9,
    ),
)
def test_every_slot_has_one_owner_shares_differ_by_one_and_kept_slots_stay(
    slots: int, owned: dict[str, list[int]]
) -> None:
    members = {m: SlotMember(f"http://{m}", tuple(held)) for m, held in owned.items()}
    dealt = assign_slots(slots, members)
    assert set(dealt) == set(members)
    every = Counter(slot for held in dealt.values() for slot in held)
    assert sorted(every) == list(range(slots)) and set(every.values()) == {1}
    shares = _shares(dealt)
    assert shares[-1] - shares[0] <= 1
    # Sticky: a member keeps as many of the slots it held as its share allows, unless
    # another member kept them first.
    for member, held in owned.items():
        kept = set(dealt[member]) & set(held)
        valid = {s for s in held if s < slots}
        kept_by_others = {
            s for other in dealt if other != member for s in set(dealt[other]) & set(owned[other])
        }
        assert len(kept) == len(dealt[member]) or valid - kept <= kept_by_others
    # The same whichever member leads: a function of its input alone.
    assert assign_slots(slots, dict(reversed(members.items()))) == dealt


def test_the_assignor_hands_every_member_the_whole_map_of_addresses() -> None:
    class Cluster:
        def partitions_for_topic(self, topic: str) -> set[int]:
            assert topic == "deliveries"
            return set(range(6))

    leader, other = SlotAssignor("http://10.0.0.1:4001"), SlotAssignor("http://10.0.0.2:4002")
    leader.owned = (0, 1, 2, 3, 4, 5)
    members = {
        "m1": ConsumerProtocolMemberMetadata(
            0, ["deliveries"], leader.metadata(["deliveries"]).user_data
        ),
        "m2": ConsumerProtocolMemberMetadata(
            0, ["deliveries"], other.metadata(["deliveries"]).user_data
        ),
    }
    assignments = leader.assign(Cluster(), members)
    leader.on_assignment(assignments["m1"])
    other.on_assignment(assignments["m2"])
    assert len(leader.owned) == len(other.owned) == 3
    assert set(leader.owned) | set(other.owned) == set(range(6))
    assert leader.owners == other.owners
    assert {leader.owners[s] for s in leader.owned} == {"http://10.0.0.1:4001"}
    assert {leader.owners[s] for s in other.owned} == {"http://10.0.0.2:4002"}
    # What each member tells the next leader: the slots it holds now.
    assert SlotMember.decode(other.metadata(["deliveries"]).user_data).owned == other.owned


def test_a_member_without_metadata_has_no_address() -> None:
    assert SlotMember.decode(b"") == SlotMember("")
