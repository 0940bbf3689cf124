"""Tag expressions of segments: `{"tag": id}`, `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`, nested.

One expression is checked three ways before anything is stored or read: its shape (depth and
size, stated in its JSON Schema too), its satisfiability (`satisfiable`: an `and` of a tag and
`not` the same tag selects nobody, a mistake worth a 400), and the tags it names (the service
checks them against the corp's library). `to_filter` renders it as a DynamoDB FilterExpression on
a relation's `tags` string set.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_serializer, model_validator

from chalicelib.platform.model import Model

MAX_DEPTH = 4  # operators nested above a tag: and(or(not(and(tag)))) is as deep as it goes
MAX_ITEMS = 10  # operands of one `and` / `or`
MAX_LEAVES = 30  # tags named in one expression (repeats count): keeps the FilterExpression small
SAT_BUDGET = 20_000  # steps of the satisfiability check; past it the expression is taken as satisfiable
TAG_ID = {"type": "string", "minLength": 1, "maxLength": 128}


def _schema(depth: int) -> dict[str, Any]:
    """The expression's JSON Schema, nesting at most `depth` operators (no recursive $ref: the
    depth limit is part of what the server takes)."""
    leaf = {"type": "object", "required": ["tag"], "properties": {"tag": TAG_ID}, "additionalProperties": False}
    if depth == 0:
        return leaf
    inner = _schema(depth - 1)
    many = {"type": "array", "items": inner, "minItems": 1, "maxItems": MAX_ITEMS}
    return {"anyOf": [leaf, *({"type": "object", "required": [op], "properties": {op: many},
                               "additionalProperties": False} for op in ("and", "or")),
                      {"type": "object", "required": ["not"], "properties": {"not": inner},
                       "additionalProperties": False}]}


SCHEMA = {**_schema(MAX_DEPTH),
          "description": f"a tag expression: `{{\"tag\": id}}` (the relation carries the tag), `{{\"and\": [...]}}`, "
                         f"`{{\"or\": [...]}}` (1-{MAX_ITEMS} operands), `{{\"not\": {{...}}}}`; at most "
                         f"{MAX_DEPTH} operators nested and {MAX_LEAVES} tags in all; it must be able to "
                         "select someone (not `and` of a tag and `not` the same tag)"}


class TagExpr(Model):
    """Exactly one of `tag`, `and`, `or`, `not`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
    tag: str | None = Field(None, min_length=1, max_length=128)
    and_: list[TagExpr] | None = Field(None, alias="and", min_length=1, max_length=MAX_ITEMS)
    or_: list[TagExpr] | None = Field(None, alias="or", min_length=1, max_length=MAX_ITEMS)
    not_: TagExpr | None = Field(None, alias="not")

    @model_validator(mode="after")
    def _one(self) -> TagExpr:
        given = [v for v in (self.tag, self.and_, self.or_, self.not_) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of tag, and, or, not")
        return self

    @model_serializer(mode="wrap")
    def _given(self, handler):  # unannotated: the JSON Schema stays the model's
        return drop_none(handler(self))

    def depth(self) -> int:
        if self.tag is not None:
            return 0
        return 1 + max(c.depth() for c in self.children())

    def children(self) -> list[TagExpr]:
        return self.and_ or self.or_ or ([self.not_] if self.not_ is not None else [])

    def leaves(self) -> list[str]:
        return [self.tag] if self.tag is not None else [t for c in self.children() for t in c.leaves()]

    def located(self, path: str) -> list[tuple[str, str]]:
        """(where, tag id) of each tag named, `where` its field path in a request whose expression is
        at `path` ("filter.tags" -> "filter.tags.and.1.or.0.tag"), as a schema refusal names it."""
        if self.tag is not None:
            return [(f"{path}.tag", self.tag)]
        if self.not_ is not None:
            return self.not_.located(f"{path}.not")
        op = "and" if self.and_ is not None else "or"
        return [found for i, c in enumerate(self.children()) for found in c.located(f"{path}.{op}.{i}")]


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """Fields left out stay out of the JSON (their schema does not allow null)."""
    return {k: v for k, v in data.items() if v is not None}


def check_shape(expr: TagExpr) -> None:
    """ValueError unless the expression is within MAX_DEPTH and MAX_LEAVES."""
    if expr.depth() > MAX_DEPTH:
        raise ValueError(f"tag expression nested deeper than {MAX_DEPTH} operators")
    if len(expr.leaves()) > MAX_LEAVES:
        raise ValueError(f"tag expression names more than {MAX_LEAVES} tags")


# -- satisfiability ----------------------------------------------------------------------------------
def _simplify(expr: TagExpr, known: dict[str, bool]) -> bool | TagExpr:
    """The expression under these tag values: True / False when decided, else what is left."""
    if expr.tag is not None:
        return known.get(expr.tag, expr)
    if expr.not_ is not None:
        inner = _simplify(expr.not_, known)
        return (not inner) if isinstance(inner, bool) else TagExpr(not_=inner)
    is_and = expr.and_ is not None
    left: list[TagExpr] = []
    for child in expr.children():
        value = _simplify(child, known)
        if value is (not is_and):  # False in an and, True in an or: decided
            return not is_and
        if not isinstance(value, bool):
            left.append(value)
    if not left:
        return is_and
    return left[0] if len(left) == 1 else TagExpr(and_=left) if is_and else TagExpr(or_=left)


class _Budget(Exception):
    pass


def satisfiable(expr: TagExpr) -> bool:
    """Whether some set of tags makes the expression true (Shannon expansion on one tag at a time,
    simplifying as it goes). Past SAT_BUDGET steps it answers True: evaluation then simply finds
    no one, where a hostile expression must not cost the API its time."""
    steps = [0]

    def sat(e: bool | TagExpr, known: dict[str, bool]) -> bool:
        steps[0] += 1
        if steps[0] > SAT_BUDGET:
            raise _Budget
        e = _simplify(e, known) if isinstance(e, TagExpr) else e
        if isinstance(e, bool):
            return e
        tag = e.leaves()[0]
        return sat(e, {**known, tag: True}) or sat(e, {**known, tag: False})

    try:
        return sat(expr, {})
    except _Budget:
        return True


# -- DynamoDB -------------------------------------------------------------------------------------------
def to_filter(expr: TagExpr, names: dict[str, str], values: dict[str, Any]) -> str:
    """A FilterExpression on the item's `tags` (a string set; absent when it has none), adding its
    placeholders to `names` and `values` (one value per distinct tag)."""
    names["#tags"] = "tags"
    if expr.tag is not None:
        placeholder = next((k for k, v in values.items() if k.startswith(":tag") and v == expr.tag), None)
        if placeholder is None:
            placeholder = f":tag{sum(k.startswith(':tag') for k in values)}"
            values[placeholder] = expr.tag
        return f"contains(#tags, {placeholder})"
    if expr.not_ is not None:
        return f"(NOT {to_filter(expr.not_, names, values)})"
    joiner = " AND " if expr.and_ is not None else " OR "
    return "(" + joiner.join(to_filter(c, names, values) for c in expr.children()) + ")"
