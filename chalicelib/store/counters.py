"""Daily counters: one item per (corp, day, dimension, value), e.g. adds through one channel code
on one day. Every capability counts what it does (adds, welcomes, tags marked, group joins) with
`count`, inside its event's exactly-once commit; stats and daily caps read them here."""

from __future__ import annotations

from typing import Any

from chalicelib.store import get_table, keys
from chalicelib.store.events import Count, StoreOp


def count(day: str, dimension: str, value: str, **increments: int) -> Count:
    """Daily counter increments (dimension corp|channel|staff|group); only ever applied inside
    the event's exactly-once commit."""
    return Count(day, dimension, value, tuple(sorted(increments.items())))


def count_op(corp_id: str, day: str, dimension: str, value: str, increments: dict[str, int]) -> StoreOp:
    names = {"#type": "type", "#day": "day", "#dim": "dimension", "#val": "value"}
    values: dict[str, Any] = {":type": "counter", ":day": day, ":dim": dimension, ":val": value}
    adds = []
    for i, (field, n) in enumerate(sorted(increments.items())):
        names[f"#f{i}"] = field
        values[f":n{i}"] = n
        adds.append(f"#f{i} :n{i}")
    return StoreOp(
        get_table().op_update(
            keys.counter(corp_id, day, dimension, value),
            expression="SET #type = :type, #day = :day, #dim = :dim, #val = :val ADD " + ", ".join(adds),
            names=names,
            values=values,
        )
    )


def read(corp_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
    return get_table().query_all(
        keys.corp_partition(corp_id),
        sk_between=(keys.counter_prefix(day_from), keys.counter_prefix(day_to) + "\uffff"),
    )



def channel_staff_adds(corp_id: str, day: str, state: str, *, consistent: bool = False) -> dict[str, int]:
    """Today's adds per staff member through one channel code (for daily caps). `consistent`:
    including every add committed before this read (the cap check right after an add's commit)."""
    items = get_table().query_all(
        keys.corp_partition(corp_id), sk_prefix=keys.counter(corp_id, day, "channel_staff", f"{state}|")["SK"],
        consistent=consistent)
    return {i["value"].split("|", 1)[1]: int(i.get("adds", 0)) for i in items}
