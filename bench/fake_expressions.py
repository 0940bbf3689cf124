"""DynamoDB condition/filter and update expressions, compiled once per expression text and evaluated
on items in wire shape (``{"S": ...}``): bench/fake_aws.py's fast path.

moto's own expression code (parser, validator, executor on DynamoType trees) costs ~2 ms per
UpdateItem here, 2,000 s for a 1M-recipient plan; this costs a few microseconds. The grammar is
DynamoDB's: conditions with AND / OR / NOT / parentheses, = <> < <= > >=, BETWEEN, IN,
attribute_exists, attribute_not_exists, attribute_type, begins_with, contains, size; updates with
SET (``+``/``-``, if_not_exists, list_append), REMOVE, ADD (numbers, sets), DELETE (sets), on
top-level and nested paths. Anything else raises `Unsupported` and the fake falls back to moto;
in tests the fake evaluates every expression both ways and requires the same answer (`check`), so
this is held to moto's semantics by the whole store test suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

Item = dict[str, Any]
Names = dict[str, str]
Values = dict[str, Any]


class Unsupported(Exception):
    """Not in this subset: use moto's evaluation."""


class Invalid(Exception):
    """DynamoDB would refuse the request (ValidationException)."""


_TOKEN = re.compile(r"\s*(?:(<=|>=|<>|[=<>(),.\[\]+-])|(#\w+)|(:\w+)|(\d+)|([A-Za-z_]\w*))")
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(text)
        tok = m.group(m.lastindex)
        out.append(tok.upper() if m.lastindex == 5 and tok.upper() in _KEYWORDS else tok)
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unsupported(f"expected {expected}, got {tok}")
        self.i += 1
        return tok

    # -- paths and operands: compiled to fn(item, names, values) -> attribute value or None
    def path(self) -> list[Any]:
        """A path as a list of steps: a name reference ('#x' or 'x') or an int (list index)."""
        first = self.take()
        if first[0] in ":(" or first in _KEYWORDS or not (first[0] == "#" or first[0].isalpha() or first[0] == "_"):
            raise Unsupported(first)
        steps: list[Any] = [first]
        while self.peek() in (".", "["):
            if self.take() == ".":
                steps.append(self.take())
            else:
                steps.append(int(self.take()))
                self.take("]")
        return steps

    def operand(self) -> Callable:
        tok = self.peek()
        if tok is None:
            raise Unsupported("operand expected")
        if tok[0] == ":":
            self.take()
            return lambda item, names, values, _r=tok: _value(values, _r)
        if tok.lower() == "size" and self.peek(1) == "(":
            self.take(), self.take("(")
            path = self.path()
            self.take(")")
            return lambda item, names, values: _size(_get(item, path, names))
        path = self.path()
        return lambda item, names, values: _get(item, path, names)

    # -- conditions: compiled to fn(item, names, values) -> bool
    def condition(self) -> Callable:
        left = self.conjunction()
        while self.peek() == "OR":
            self.take()
            right = self.conjunction()
            left = (lambda a, b: lambda *args: a(*args) or b(*args))(left, right)
        return left

    def conjunction(self) -> Callable:
        left = self.negation()
        while self.peek() == "AND":
            self.take()
            right = self.negation()
            left = (lambda a, b: lambda *args: a(*args) and b(*args))(left, right)
        return left

    def negation(self) -> Callable:
        if self.peek() == "NOT":
            self.take()
            inner = self.negation()
            return lambda *args: not inner(*args)
        return self.primary()

    def primary(self) -> Callable:
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        name = (tok or "").lower()
        if name in _FUNCTIONS and self.peek(1) == "(":
            self.take(), self.take("(")
            path = self.path()
            arg = None
            if self.peek() == ",":
                self.take()
                arg = self.operand()
            self.take(")")
            return _FUNCTIONS[name](path, arg)
        left = self.operand()
        op = self.take()
        if op in _COMPARE:
            right = self.operand()
            cmp = _COMPARE[op]
            return lambda *args: cmp(left(*args), right(*args))
        if op == "BETWEEN":
            lo = self.operand()
            self.take("AND")
            hi = self.operand()
            return lambda *args: _between(left(*args), lo(*args), hi(*args))
        if op == "IN":
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take()
                options.append(self.operand())
            self.take(")")
            return lambda *args: (lambda v: v is not None and any(_eq(v, o(*args)) for o in options))(left(*args))
        raise Unsupported(op)

    def done(self) -> None:
        if self.peek() is not None:
            raise Unsupported(f"trailing {self.peek()}")

    # -- updates: compiled to a list of (kind, path, fn or None)
    def update(self) -> list[tuple[str, list[Any], Callable | None]]:
        actions: list[tuple[str, list[Any], Callable | None]] = []
        seen: set[str] = set()
        while self.peek() is not None:
            clause = self.take()
            if clause not in ("SET", "REMOVE", "ADD", "DELETE") or clause in seen:
                raise Unsupported(clause)
            seen.add(clause)
            while True:
                path = self.path()
                if clause == "SET":
                    self.take("=")
                    actions.append(("SET", path, self.set_value()))
                elif clause == "REMOVE":
                    actions.append(("REMOVE", path, None))
                else:
                    actions.append((clause, path, self.operand()))
                if self.peek() != ",":
                    break
                self.take()
        return actions

    def set_value(self) -> Callable:
        left = self.set_operand()
        if self.peek() in ("+", "-"):
            op = self.take()
            right = self.set_operand()
            return lambda *args: _arith(op, left(*args), right(*args))
        return left

    def set_operand(self) -> Callable:
        tok = (self.peek() or "").lower()
        if tok == "if_not_exists" and self.peek(1) == "(":
            self.take(), self.take("(")
            path = self.path()
            self.take(",")
            default = self.set_operand()
            self.take(")")
            return lambda item, names, values: _get(item, path, names) or default(item, names, values)
        if tok == "list_append" and self.peek(1) == "(":
            self.take(), self.take("(")
            a = self.set_operand()
            self.take(",")
            b = self.set_operand()
            self.take(")")
            return lambda *args: _list_append(a(*args), b(*args))
        return self.operand()


# -- evaluation helpers --------------------------------------------------------------------------------
def _value(values: Values, ref: str) -> Any:
    if ref not in values:
        raise Invalid(f"An expression attribute value used in expression is not defined: {ref}")
    return values[ref]


def _name(names: Names, step: str) -> str:
    if step[0] == "#":
        if step not in names:
            raise Invalid(f"An expression attribute name used in the document path is not defined: {step}")
        return names[step]
    return step


def _get(item: Item | None, path: list[Any], names: Names) -> Any:
    node: Any = {"M": item or {}}
    for step in path:
        if isinstance(step, int):
            lst = node.get("L") if isinstance(node, dict) else None
            if lst is None or step >= len(lst):
                return None
            node = lst[step]
        else:
            m = node.get("M") if isinstance(node, dict) else None
            if m is None:
                return None
            node = m.get(_name(names, step))
            if node is None:
                return None
    return node


def _key(v: Any) -> Any:
    """A comparable form of an attribute value (numbers as Decimal, sets as frozensets)."""
    (t, x), = v.items()
    if t == "N":
        return t, Decimal(x)
    if t == "NS":
        return t, frozenset(Decimal(e) for e in x)
    if t in ("SS", "BS"):
        return t, frozenset(x)
    if t == "L":
        return t, tuple(_key(e) for e in x)
    if t == "M":
        return t, tuple(sorted((k, _key(e)) for k, e in x.items()))
    return t, x


def _eq(a: Any, b: Any) -> bool:
    return a is not None and b is not None and _key(a) == _key(b)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        ka, kb = _key(a), _key(b)
        return ka[0] == kb[0] and ka[0] in ("S", "N", "B") and op(ka[1], kb[1])
    return compare


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": _eq,
    "<>": lambda a, b: not _eq(a, b) if a is not None else b is not None,  # moto: a missing attribute differs
    "<": _ordered(lambda x, y: x < y),
    "<=": _ordered(lambda x, y: x <= y),
    ">": _ordered(lambda x, y: x > y),
    ">=": _ordered(lambda x, y: x >= y),
}


def _between(v: Any, lo: Any, hi: Any) -> bool:
    return _ordered(lambda x, y: x >= y)(v, lo) and _ordered(lambda x, y: x <= y)(v, hi)


def _size(v: Any) -> Any:
    if v is None:
        return None
    (t, x), = v.items()
    if t == "N" or t in ("BOOL", "NULL"):
        raise Unsupported("size of a number or boolean")
    return {"N": str(len(x))}


def _contains(v: Any, operand: Any) -> bool:
    if v is None or operand is None:
        return False
    (t, x), = v.items()
    (ot, ox), = operand.items()
    if t == "S" and ot == "S":
        return ox in x
    if t in ("SS", "NS", "BS") and ot == t[0]:
        return _key(operand)[1] in _key(v)[1]
    if t == "L":
        return any(_eq(e, operand) for e in x)
    return False


def _begins_with(v: Any, operand: Any) -> bool:
    if v is None or operand is None:
        return False
    (t, x), = v.items()
    (ot, ox), = operand.items()
    return t == ot and t in ("S", "B") and x.startswith(ox)


def _path_function(test: Callable[[Any, Any], bool]) -> Callable:
    def make(path: list[Any], arg: Callable | None) -> Callable:
        return lambda item, names, values: test(_get(item, path, names),
                                                arg(item, names, values) if arg else None)
    return make


_FUNCTIONS: dict[str, Callable] = {
    "attribute_exists": _path_function(lambda v, _: v is not None),
    "attribute_not_exists": _path_function(lambda v, _: v is None),
    "attribute_type": _path_function(lambda v, t: v is not None and t is not None and list(v)[0] == t.get("S")),
    "begins_with": _path_function(_begins_with),
    "contains": _path_function(_contains),
}


def _number(x: Decimal) -> dict[str, str]:
    return {"N": str(int(x)) if x == x.to_integral_value() else str(x.normalize())}


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        raise Invalid("The provided expression refers to an attribute that does not exist in the item")
    if "N" not in a or "N" not in b:
        raise Invalid("An operand in the update expression has an incorrect data type")
    x, y = Decimal(a["N"]), Decimal(b["N"])
    return _number(x + y if op == "+" else x - y)


def _list_append(a: Any, b: Any) -> Any:
    if a is None or b is None or "L" not in a or "L" not in b:
        raise Invalid("An operand in the update expression has an incorrect data type")
    return {"L": [*a["L"], *b["L"]]}


# -- compiled, cached ------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def condition(text: str) -> Callable[[Item | None, Names, Values], bool]:
    p = _Parser(text)
    fn = p.condition()
    p.done()
    return fn


@lru_cache(maxsize=4096)
def update(text: str) -> list[tuple[str, list[Any], Callable | None]]:
    p = _Parser(text)
    actions = p.update()
    p.done()
    return actions


def apply_update(text: str, item: Item, names: Names, values: Values, key_attrs: tuple[str, ...]) -> Item:
    """The item after `text` (a new dict; `item` is not changed). Right-hand sides read the item
    as it was before the update, as DynamoDB does."""
    actions = update(text)
    resolved = []
    targets: list[tuple[Any, ...]] = []
    for kind, path, fn in actions:
        steps = tuple(s if isinstance(s, int) else _name(names, s) for s in path)
        if steps[0] in key_attrs:
            raise Invalid(f"Cannot update attribute {steps[0]}. This attribute is part of the key")
        for other in targets:  # overlapping paths are refused by DynamoDB
            n = min(len(other), len(steps))
            if other[:n] == steps[:n]:
                raise Invalid("Two document paths overlap with each other")
        targets.append(steps)
        resolved.append((kind, steps, fn(item, names, values) if fn else None))
    new = dict(item)
    for kind, steps, value in resolved:
        if len(steps) > 1:
            raise Unsupported("nested update paths")
        attr = steps[0]
        if kind == "SET":
            new[attr] = value
        elif kind == "REMOVE":
            new.pop(attr, None)
        elif kind == "ADD":
            new[attr] = _add(new.get(attr), value)
        else:  # DELETE
            left = _delete(new.get(attr), value)
            if left is None:
                new.pop(attr, None)
            else:
                new[attr] = left
    return new


def _add(current: Any, value: Any) -> Any:
    (t, x), = value.items()
    if t == "N":
        if current is None:
            return _number(Decimal(x))
        if "N" not in current:
            raise Invalid("An operand in the update expression has an incorrect data type")
        return _number(Decimal(current["N"]) + Decimal(x))
    if t in ("SS", "NS", "BS"):
        if current is None:
            return {t: list(dict.fromkeys(x))}
        if t not in current:
            raise Invalid("An operand in the update expression has an incorrect data type")
        return {t: list(dict.fromkeys([*current[t], *x]))}
    raise Invalid("Incorrect operand type for operator or function; operator: ADD")


def _delete(current: Any, value: Any) -> Any:
    (t, x), = value.items()
    if t not in ("SS", "NS", "BS"):
        raise Invalid("Incorrect operand type for operator or function; operator: DELETE")
    if current is None:
        return None
    if t not in current:
        raise Invalid("An operand in the update expression has an incorrect data type")
    gone = _key(value)[1]
    left = [e for e in current[t] if (Decimal(e) if t == "NS" else e) not in gone]
    return {t: left} if left else None
