"""GET /api/v1/openapi.json: generated from the registered endpoints, their pydantic models and the
errors each one can answer.

An operation's errors are found, not listed by hand:
- what `endpoint()` itself answers (API key, ids in the path, body, query): `core.shared_errors`;
- what its view raises: the view's source and the chalicelib functions it calls, transitively, are
  read (ast) for `raise` of an exception type that `register_error` maps (status and code from
  there), `raise HttpError(...)` / `conflict(...)` / `not_found(...)` / `invalid(...)`, and calls of
  `corps.wecom_client` (WeCom's errors, as `core.map_exception` maps them); an `except` that
  catches one and does not re-raise it hides it. Calls on objects (`client.x()`) are not followed:
  a route names what that misses in `endpoint(errors=...)`;
- what it declares in `endpoint(errors=...)`.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import logging
import sys
import textwrap
import types
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from chalicelib.api import core
from chalicelib.api.core import API_PREFIX, ENDPOINTS, WECOM, EndpointSpec, ErrorResponse, Lazy, resolve

logger = logging.getLogger(__name__)

_cache: dict[str, Any] = {}

# The document itself: served by a plain route (corps.openapi), described like the others.
SELF = EndpointSpec("GET", f"{API_PREFIX}/openapi.json", "This document (OpenAPI 3.1)", "public",
                    None, None, None, 200)

# Said when nothing closer to the raise says it (an exception's docstring, a literal message).
_CODE_TEXT = {
    "corp_exists": "that corp is already registered",
    "state_taken": "another channel code of this corp has that `state`",
    "edit_conflict": "the channel code was changed by another request meanwhile: read it again and retry",
    "tag_limit": "the corp would hold more tags than WeCom allows",
    "unknown_tags": ("a tag id is not in the corp's tag library; `details` names each field listing such ids "
                     "(`filter.tags.and.0.tag`, `tag_ids`, ...) with the ids"),
    "sync_running": "a customer sync is running for this corp already; `details.job_id` is its job",
    "not_found": "no such resource (or not visible to this key)",
}


class Raised(NamedTuple):
    """An HttpError raised in so many words: `raise conflict("code", "message")`."""

    status: int
    code: str
    text: str | None


# -- the WeCom client's errors ------------------------------------------------------------------------
def _wecom_classes() -> list[type[Exception]]:
    from chalicelib.wecom import errors

    classes = [getattr(errors, name) for name in errors.__all__]
    return [c for c in classes if isinstance(c, type) and issubclass(c, errors.WeComError)]


def _known_errcodes() -> list[int]:
    """The errcodes chalicelib.wecom.errors classifies (its errcode tables), with 41000-41999."""
    from chalicelib.wecom import errors

    known = set(range(41000, 42000)) | set(errors.FrequencyLimited.DEFAULT_RETRY_AFTER)
    for value in vars(errors).values():
        if isinstance(value, (set, frozenset, dict)):
            known |= {c for c in value if isinstance(c, int) and not isinstance(c, bool)}
    return sorted(known)


def _sample(cls: type[Exception], errcodes: list[int]) -> Exception:
    from chalicelib.wecom import errors

    if issubclass(cls, errors.ApiError):
        return cls(next((c for c in errcodes if errors.error_class(c) is cls), 0))
    if issubclass(cls, errors.WeComTimeout):
        return cls("no answer in time", maybe_executed=False)
    return cls("no usable answer")


def _runs(codes: list[int]) -> str:
    """40003, 41000-41999, 44004: consecutive errcodes (3 or more) as a range."""
    parts, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{codes[i]}-{codes[j]}")
        else:
            parts.extend(str(c) for c in codes[i:j + 1])
        i = j + 1
    return ", ".join(parts)


def wecom_errors() -> dict[type[Exception], tuple[int, str]]:
    """Each class of the WeCom client's errors -> (status, code), asked of core.map_exception."""
    if "wecom" not in _cache:
        errcodes = _known_errcodes()
        mapped = {}
        for cls in _wecom_classes():
            answer = core.map_exception(_sample(cls, errcodes))
            if answer is not None:
                mapped[cls] = (answer.status, answer.code)
        _cache["wecom"] = mapped
    return _cache["wecom"]


def wecom_texts() -> dict[tuple[int, str], str]:
    """(status, code) -> which of WeCom's answers end there: errcodes, or what happened."""
    if "wecom_texts" in _cache:
        return _cache["wecom_texts"]
    from chalicelib.wecom import errors

    by_answer: dict[tuple[int, str], list[int]] = {}
    details: dict[tuple[int, str], list[str]] = {}
    for errcode in _known_errcodes():
        answer = core.map_exception(errors.from_errcode(errcode))
        if answer is not None:
            by_answer.setdefault((answer.status, answer.code), []).append(errcode)
            details[(answer.status, answer.code)] = sorted(answer.details or {})
    unknown = core.map_exception(errors.from_errcode(999_999_999))
    texts: dict[tuple[int, str], str] = {}
    for key, errcodes in by_answer.items():
        text = f"WeCom answered errcode {_runs(errcodes)}"
        if unknown is not None and key == (unknown.status, unknown.code):
            text += " or any errcode not named here"
        if key == wecom_errors().get(errors.FrequencyLimited):
            waits = ", ".join(f"{c}: {s:g} s" for c, s in errors.FrequencyLimited.DEFAULT_RETRY_AFTER.items())
            text += f" (WeCom's frequency limit; retry after {waits})"
        if details[key]:
            text += "; `details`: " + ", ".join(f"`{d}`" for d in details[key])
        texts[key] = text
    for cls, key in wecom_errors().items():
        if not issubclass(cls, errors.ApiError) and key not in texts:
            texts[key] = "WeCom gave no usable answer (HTTP 5xx, no answer in time, no connection, a body " \
                         "that is not JSON); retry later"
    _cache["wecom_texts"] = texts
    return texts


# -- reading a view for the errors it raises -------------------------------------------------------------
_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_PLACEHOLDER = "\x00"


def _module(name: str) -> types.ModuleType | None:
    """A module already imported, or one of chalicelib's (imported now); None for the rest."""
    if name in sys.modules:
        return sys.modules[name]
    if name == "chalicelib" or name.startswith("chalicelib."):
        try:
            return importlib.import_module(name)
        except ImportError:
            return None
    return None


class RaiseReader:
    """What a function can raise that reaches its caller, read from its source and, transitively,
    from the chalicelib functions it calls: exception types and `Raised` HttpErrors."""

    def __init__(self) -> None:
        from chalicelib.corps import registry as corps

        self._wecom_client = corps.wecom_client
        self._wecom = tuple(wecom_errors())
        self._factories = (core.HttpError, core.conflict, core.not_found, core.invalid)
        self._memo: dict[Any, frozenset[Any]] = {}

    def raises(self, fn: Any) -> frozenset[Any]:
        if fn in self._memo:
            return self._memo[fn]
        self._memo[fn] = frozenset()  # a cycle adds nothing
        parsed = self._parse(fn)
        if parsed is not None:
            node, ns = parsed
            self._memo[fn] = frozenset(self._all(node.body, ns))
        return self._memo[fn]

    def _parse(self, fn: Any) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, dict[str, Any]] | None:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        except (OSError, TypeError, SyntaxError):
            return None
        node = tree.body[0] if tree.body else None
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        ns = dict(vars(sys.modules[fn.__module__])) if fn.__module__ in sys.modules else {}
        for sub in ast.walk(node):  # imports inside the function
            if isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                for alias in sub.names:
                    ns[alias.asname or alias.name] = self._import_name(sub.module, alias.name)
            elif isinstance(sub, ast.Import):
                for alias in sub.names:
                    if alias.asname:
                        ns[alias.asname] = _module(alias.name)
                    else:
                        ns[alias.name.split(".")[0]] = _module(alias.name.split(".")[0])
        return node, ns

    @staticmethod
    def _import_name(module: str, name: str) -> Any:
        found = _module(module)
        value = getattr(found, name, None) if found is not None else None
        return value if value is not None else _module(f"{module}.{name}")

    def _all(self, nodes: Iterable[ast.AST], ns: dict[str, Any]) -> set[Any]:
        out: set[Any] = set()
        for node in nodes:
            out |= self._effects(node, ns)
        return out

    def _effects(self, node: ast.AST, ns: dict[str, Any]) -> set[Any]:
        if isinstance(node, _NESTED):
            return set()  # runs only if called
        if isinstance(node, ast.Try):
            return self._try(node, ns)
        out: set[Any] = set()
        if isinstance(node, ast.Raise) and node.exc is not None:
            out |= self._raised(node.exc, ns)
        if isinstance(node, ast.Call):
            out |= self._called(node.func, ns)
        return out | self._all(ast.iter_child_nodes(node), ns)

    def _try(self, node: ast.Try, ns: dict[str, Any]) -> set[Any]:
        out = set()
        for effect in self._all(node.body, ns):
            exc_type = core.HttpError if isinstance(effect, Raised) else effect
            handler = next((h for h in node.handlers if self._catches(h, exc_type, ns)), None)
            if handler is None or self._reraises(handler):
                out.add(effect)
        for handler in node.handlers:
            out |= self._all(handler.body, ns)
        return out | self._all(node.orelse, ns) | self._all(node.finalbody, ns)

    def _catches(self, handler: ast.ExceptHandler, exc_type: type, ns: dict[str, Any]) -> bool:
        if handler.type is None:
            return True
        exprs = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        caught = [self._resolve(e, ns) for e in exprs]
        return any(isinstance(c, type) and issubclass(exc_type, c) for c in caught)

    @staticmethod
    def _reraises(handler: ast.ExceptHandler) -> bool:
        return any(isinstance(n, ast.Raise) and (n.exc is None or (isinstance(n.exc, ast.Name)
                                                                    and n.exc.id == handler.name))
                   for n in ast.walk(handler))

    def _raised(self, exc: ast.expr, ns: dict[str, Any]) -> set[Any]:
        target = self._resolve(exc.func if isinstance(exc, ast.Call) else exc, ns)
        if isinstance(exc, ast.Call) and any(target is f for f in self._factories):
            raised = self._evaluate(target, exc)
            return {raised} if raised is not None else set()
        if isinstance(target, type) and issubclass(target, BaseException):
            return {target}
        return set()

    @staticmethod
    def _evaluate(factory: Any, call: ast.Call) -> Raised | None:
        """The HttpError a factory builds from the call's literals (others stand in as placeholders)."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None

        def value(arg: ast.expr) -> Any:
            return arg.value if isinstance(arg, ast.Constant) else _PLACEHOLDER

        try:
            error = factory(*[value(a) for a in call.args], **{k.arg: value(k.value) for k in call.keywords})
        except Exception:  # not a call that can be evaluated
            return None
        if not (isinstance(error, core.HttpError) and isinstance(error.status, int)
                and isinstance(error.code, str) and _PLACEHOLDER not in error.code):
            return None
        message = error.message if isinstance(error.message, str) and _PLACEHOLDER not in error.message else None
        return Raised(error.status, error.code, message)

    def _called(self, func: ast.expr, ns: dict[str, Any]) -> set[Any]:
        target = self._resolve(func, ns)
        if target is None:
            return set()
        if target is self._wecom_client:
            return set(self._wecom)  # any of the WeCom client's errors, from here on
        if inspect.ismethod(target):
            target = target.__func__
        if not callable(target) or isinstance(target, type):
            return set()
        target = inspect.unwrap(target)
        module = getattr(target, "__module__", None) or ""
        if (inspect.isfunction(target) and module.startswith("chalicelib.")
                and not module.startswith(("chalicelib.wecom", __name__))):
            return set(self.raises(target))
        return set()

    def _resolve(self, expr: ast.expr, ns: dict[str, Any]) -> Any:
        if isinstance(expr, ast.Name):
            return ns[expr.id] if expr.id in ns else getattr(builtins, expr.id, None)
        if isinstance(expr, ast.Attribute):
            base = self._resolve(expr.value, ns)
            if isinstance(base, types.ModuleType):
                found = getattr(base, expr.attr, None)
                return found if found is not None else _module(f"{base.__name__}.{expr.attr}")
            if isinstance(base, type):
                return getattr(base, expr.attr, None)
        return None


def _first_line(obj: Any) -> str | None:
    """An exception's own docstring, first paragraph, as a clause: "The code ..." -> "the code ..."."""
    doc = vars(obj).get("__doc__")
    if not doc:
        return None
    text = inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _exception_errors(exc_type: type) -> list[tuple[int, str, str | None]]:
    wecom = wecom_errors()
    for cls in (exc_type, *exc_type.__mro__):
        if cls in wecom:
            status, code = wecom[cls]
            return [(status, code, wecom_texts().get((status, code)))]
    described = core.describe_error(exc_type)
    return [(*described, _first_line(exc_type))] if described else []


def view_errors(fn: Any) -> list[tuple[int, str, str | None]]:
    """The errors a view can answer, read from its code (see the module's docstring)."""
    reader = _cache.get("reader")
    if reader is None:
        reader = _cache["reader"] = RaiseReader()
    found: list[tuple[int, str, str | None]] = []
    for effect in sorted(reader.raises(fn), key=repr):
        found += [tuple(effect)] if isinstance(effect, Raised) else _exception_errors(effect)
    return found


def _declared(item: Any) -> list[tuple[int, str, str | None]]:
    if item == WECOM:
        return [(s, c, wecom_texts().get((s, c))) for s, c in dict.fromkeys(wecom_errors().values())]
    if isinstance(item, tuple):
        return [(item[0], item[1], item[2] if len(item) > 2 else None)]
    return _exception_errors(resolve(Lazy(item)) if isinstance(item, str) else item)


def operation_errors(ep: EndpointSpec) -> dict[int, dict[str, list[str]]]:
    """status -> code -> what it means, for every error this endpoint can answer."""
    found: list[tuple[int, str, str | None]] = list(core.shared_errors(ep))
    if ep.view is not None:
        try:
            found += view_errors(ep.view)
        except Exception:  # the document is still served; tests/functional/test_openapi_errors.py reads every view
            logger.exception("could not read the errors of %s %s", ep.method, ep.path)
    for item in ep.errors:
        found += _declared(item)
    errors: dict[int, dict[str, list[str]]] = {}
    for status, code, text in found:
        texts = errors.setdefault(status, {}).setdefault(code, [])
        if text and text not in texts:
            texts.append(text)
    for codes in errors.values():
        for code, texts in codes.items():
            if not texts and code in _CODE_TEXT:
                texts.append(_CODE_TEXT[code])
    return dict(sorted(errors.items()))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_object(status: int, codes: dict[str, list[str]]) -> dict[str, Any]:
    lines = [f"- `{code}`" + (": " + "; ".join(texts) if texts else "") for code, texts in codes.items()]
    return {
        "description": f"{HTTPStatus(status).phrase}. `error.code` is one of:\n\n" + "\n".join(lines),
        "content": {"application/json": {"schema": _ref("ErrorResponse")}},
        "x-error-codes": list(codes),
    }


def _description() -> str:
    wecom = "\n".join(f"- {status} `{code}`: {text}" for (status, code), text
                      in sorted(wecom_texts().items()))
    return (
        "Bearer API keys: an admin key registers corps; each corp key sees only its corp.\n\n"
        "**Errors** are `{\"error\": {\"code\", \"message\", \"details\"?}}` (`ErrorResponse`). `code` is "
        "stable: branch on it, never on `message`. Each operation lists the statuses and codes it can "
        "answer.\n\n"
        "**WeCom's errors**, for operations that call WeCom, by WeCom's `errcode`:\n\n"
        f"{wecom}\n\n"
        "**Outside these operations** API Gateway answers, in the same envelope: a path or method that "
        "no operation has is 404 `not_found`; its own other refusals carry its response type as `code` "
        "(e.g. 429 `THROTTLED`, 504 `INTEGRATION_TIMEOUT`)."
    )


def build() -> dict[str, Any]:
    if "spec" in _cache:
        return _cache["spec"]
    pairs: list[tuple[Any, Any]] = [(ErrorResponse, "serialization")]
    for ep in ENDPOINTS:
        ep.body, ep.query, ep.response = resolve(ep.body), resolve(ep.query), resolve(ep.response)
        if ep.body is not None:
            pairs.append((ep.body, "validation"))
        if isinstance(ep.response, type):
            pairs.append((ep.response, "serialization"))
    pairs = list(dict.fromkeys(pairs))
    key_map, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    def schema_of(model: Any, mode: str) -> dict[str, Any]:
        return key_map[(model, mode)]

    paths: dict[str, Any] = {}
    for ep in [*ENDPOINTS, SELF]:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": f"{ep.method.lower()}_{ep.path.strip('/').replace('/', '_')}"
            .replace("{", "").replace("}", "").replace("-", "_").replace(".", "_"),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in ep.path_params
            ],
            "responses": {},
        }
        if ep.query is not None:
            qschema = TypeAdapter(ep.query).json_schema()
            for name, prop in qschema.get("properties", {}).items():
                op["parameters"].append(
                    {"name": name, "in": "query", "required": name in qschema.get("required", []),
                     "schema": prop}
                )
        if ep.body is not None:
            op["requestBody"] = {
                # core._parse_body takes no body as the defaults when every field has one (and a
                # change with min_changes refuses them)
                "required": (any(f.is_required() for f in ep.body.model_fields.values())
                             or getattr(ep.body, "min_changes", 0) > 0),
                "content": {"application/json": {"schema": schema_of(ep.body, "validation")}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if isinstance(ep.response, type):
            ok["content"] = {"application/json": {"schema": schema_of(ep.response, "serialization")}}
        elif ep is SELF:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][str(ep.status)] = ok
        for status, codes in operation_errors(ep).items():
            op["responses"][str(status)] = _error_object(status, codes)
        if ep.auth != "public":
            op["security"] = [{"bearer": []}]
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "WeCom SCRM operator API",
            "version": "1",
            "description": _description(),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    _cache["spec"] = spec
    return spec
