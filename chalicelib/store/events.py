"""Exactly-once bookkeeping for callback events.

One record per event identity (`EVENT#<identity>`, TTL'd) holds the set of handler steps already
committed. A handler's DynamoDB effects are committed in ONE transaction together with adding its
step to that set, conditioned on the step not being there yet: a redelivered or retried event can
never apply them twice, and a crash before the commit leaves nothing half-done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.store import ConditionFailed, get_table, keys

_MAX_TRANSACTION_ITEMS = 100


@dataclass(frozen=True)
class StoreOp:
    """One transaction operation; `stale_ok` ops may be dropped when their condition fails
    (e.g. a relation already updated by a newer event), the rest of the commit still applies.
    `if_stale`: what to apply to the same item instead, once, when this op's condition fails
    (itself conditional; dropped in turn if its condition fails)."""

    op: dict[str, Any]
    stale_ok: bool = False
    if_stale: dict[str, Any] | StoreOp | None = None  # a StoreOp: with its own stand-in in turn


@dataclass(frozen=True)
class Count:
    """Increments of one daily counter. Several handlers of one event may count on the same
    counter (a transaction may touch an item only once), so counts are merged at commit."""

    day: str
    dimension: str
    value: str
    increments: tuple[tuple[str, int], ...]


def merge_counts(corp_id: str, items: list[StoreOp | Count]) -> list[StoreOp]:
    from chalicelib.store.counters import count_op

    ops = [i for i in items if isinstance(i, StoreOp)]
    merged: dict[tuple[str, str, str], dict[str, int]] = {}
    for c in (i for i in items if isinstance(i, Count)):
        totals = merged.setdefault((c.day, c.dimension, c.value), {})
        for name, n in c.increments:
            totals[name] = totals.get(name, 0) + n
    ops.extend(count_op(corp_id, day, dim, value, totals) for (day, dim, value), totals in merged.items())
    return ops


class Duplicate(Exception):
    """Another delivery of this event committed these steps first."""


def done_steps(corp_id: str, identity: str) -> set[str]:
    return done_steps_and_items(corp_id, identity, [])[0]


def done_steps_and_items(corp_id: str, identity: str, also: list[dict[str, str]]
                         ) -> tuple[set[str], dict[tuple[str, str], dict[str, Any] | None]]:
    """The event's committed steps and, in the same request (one consistent BatchGetItem), the items
    `also` its steps will read: {(PK, SK): item, or None when there is none}."""
    return done_steps_and_items_of([(corp_id, identity, also)])[0]


def done_steps_and_items_of(events: list[tuple[str, str, list[dict[str, str]]]]
                            ) -> list[tuple[set[str], dict[tuple[str, str], dict[str, Any] | None]]]:
    """`done_steps_and_items` for several events (corp_id, identity, also) at once: one consistent
    BatchGetItem for a whole batch of messages (a GetItem when there is a single key)."""
    records = [keys.event_claim(corp_id, identity) for corp_id, identity, _ in events]
    wanted = {(k["PK"], k["SK"]): k for k in [*records, *(k for _, _, also in events for k in also)]}
    found: dict[tuple[str, str], dict[str, Any] | None] = dict.fromkeys(wanted)
    if len(wanted) == 1:
        [key] = wanted
        found[key] = get_table().get(wanted[key], consistent=True)
    else:
        for item in get_table().batch_get(list(wanted.values()), consistent=True):
            found[(item["PK"], item["SK"])] = item
    out = []
    for record, (_, _, also) in zip(records, events, strict=True):
        item = found[(record["PK"], record["SK"])]
        out.append((set(item.get("done_steps", ())) if item else set(),
                    {(k["PK"], k["SK"]): found[(k["PK"], k["SK"])] for k in also}))
    return out


def commit(
    corp_id: str,
    identity: str,
    *,
    steps: list[str],
    ops: list[StoreOp | Count],
    expires_at: int,
    route: str,
) -> list[int]:
    """Apply `ops` and mark `steps` done, atomically. Returns the indexes of ops dropped as stale.

    Raises Duplicate when any of the steps was already committed.
    """
    table = get_table()
    ops = merge_counts(corp_id, ops)
    names = {"#done": "done_steps", "#exp": "expires_at", "#route": "route"}
    values: dict[str, Any] = {":steps": set(steps), ":exp": expires_at, ":route": route}
    conditions = []
    for i, step in enumerate(steps):
        values[f":s{i}"] = step
        conditions.append(f"NOT contains(#done, :s{i})")
    record = table.op_update(
        keys.event_claim(corp_id, identity),
        expression="ADD #done :steps SET #exp = :exp, #route = :route",
        names=names,
        values=values,
        condition="attribute_not_exists(#done) OR (" + " AND ".join(conditions) + ")",
    )
    live = list(range(len(ops)))
    dropped: list[int] = []
    if len(ops) + 1 > _MAX_TRANSACTION_ITEMS:
        raise ValueError("too many operations for one commit")
    while True:
        try:
            table.transact([record, *(ops[i].op for i in live)])
            return dropped
        except ConditionFailed as exc:
            reasons = exc.reasons
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise Duplicate(identity) from exc
            failed = [live[j - 1] for j, r in enumerate(reasons) if j > 0 and r == "ConditionalCheckFailed"]
            if not failed or any(not ops[i].stale_ok for i in failed):
                raise
            for i in failed:
                stand_in = ops[i].if_stale
                if stand_in is not None:  # apply its stand-in to the item instead
                    ops[i] = stand_in if isinstance(stand_in, StoreOp) else StoreOp(stand_in, stale_ok=True)
                else:
                    dropped.append(i)
                    live.remove(i)
