"""group_codes.service.plan once the pool has no open group: what the join way lists must not
flap between full groups as their counts move (each change is a join-way update), and with
auto-create it lists the group WeCom will fill to its scan cap soonest (then it opens a room)."""

from __future__ import annotations

import pytest

T = 190


def plan(*, listed, full, counts, auto_create):
    from chalicelib.group_codes.service import plan

    return plan(threshold=T, listed=listed, full=full, pool=list(counts), auto_create=auto_create, low_seats=None,
                counts=counts)


def test_with_auto_create_the_exhausted_pool_lists_its_fullest_group():
    p = plan(listed=["c"], full=["a", "b"], counts={"a": 199, "b": 193, "c": 190}, auto_create=True)
    assert (p.listed, p.status) == (["a"], "low_capacity")  # 1 scan from WeCom's cap: the room opens next


@pytest.mark.parametrize("auto_create", [True, False])
def test_an_exhausted_pool_keeps_its_listed_groups_as_their_counts_move(auto_create):
    first = plan(listed=["c"], full=["a", "b"], counts={"a": 195, "b": 193, "c": 190}, auto_create=auto_create)
    moved = {"a": 195, "b": 193, "c": 190, **{c: 198 for c in first.listed}}  # scans went to the listed groups
    again = plan(listed=first.listed, full=first.full, counts=moved, auto_create=auto_create)
    assert again.listed == first.listed and again.status == first.status  # no update: nothing better to list


def test_without_auto_create_groups_at_the_scan_cap_give_way_to_the_least_full():
    p = plan(listed=["a"], full=["a", "b", "c"], counts={"a": 200, "b": 193, "c": 195}, auto_create=False)
    assert (p.listed, p.status) == (["b", "c", "a"], "exhausted")
