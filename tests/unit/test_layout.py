"""The package layout's rules (docs/architecture.md "Packages"), read from the sources: a module
moved to the wrong place, or an import against the grain, fails here rather than in review."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import chalicelib

ROOT = Path(chalicelib.__file__).parent
SPINE = {"platform", "wecom", "store", "api", "console"}  # console: static pages over the public API
CAPABILITIES = {"corps", "channel_codes", "welcome", "tags", "customers", "stats", "groups", "group_codes", "segments",
                "broadcasts", "sop_calendars", "handovers", "churn", "toolbar"}
# the four kinds, and the splits of a big capability (docs/architecture.md "Packages")
KINDS = {"routes.py", "steps.py", "service.py", "items.py", "registry.py", "staff.py", "sync.py", "sync_items.py",
         "expression.py", "planner.py", "sender.py", "tracking.py", "schedule.py",
         "__init__.py"}


def _imports(path: Path) -> set[str]:
    """Every chalicelib module a file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chalicelib"))
    return found


def test_chalicelib_holds_only_packages():
    loose = [p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"put these in a capability folder or platform/: {loose}"
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages == SPINE | CAPABILITIES, packages ^ (SPINE | CAPABILITIES)


def test_capability_modules_are_of_the_known_kinds():
    for name in CAPABILITIES:
        odd = [p.name for p in (ROOT / name).glob("*.py") if p.name not in KINDS]
        assert not odd, f"{name}/: {odd} (routes, steps, service, items: docs/architecture.md)"


def test_nothing_under_store_or_wecom_imports_a_capability_and_store_never_imports_wecom():
    for spine in ("store", "wecom"):
        for path in (ROOT / spine).glob("*.py"):
            bad = {m for m in _imports(path) if m.split(".")[1] in CAPABILITIES}
            if spine == "store":
                bad |= {m for m in _imports(path) if m.startswith("chalicelib.wecom")}
            assert not bad, f"{spine}/{path.name} imports {sorted(bad)}"


def test_only_store_knows_botocore_errors():
    for path in ROOT.rglob("*.py"):
        if "store" in path.relative_to(ROOT).parts[:1] or "platform" in path.relative_to(ROOT).parts[:1]:
            continue  # platform/aws.py builds the clients; store/ maps their errors
        assert "ClientError" not in path.read_text(), path


def test_every_in_memory_cache_is_cleared_by_one_call():
    from chalicelib.platform import caches

    for module in pkgutil.walk_packages([str(ROOT)], prefix="chalicelib."):
        importlib.import_module(module.name)
    assert set(caches.registered()) >= {
        "settings", "aws:clients", "queues:urls", "store:table", "corps:runtime+clients",
        "channel_codes:lookup", "welcome:defaults", "tags:library", "api:admin_key"}
    from chalicelib.channel_codes import service as channel_codes
    from chalicelib.tags import service as tags

    channel_codes._lookup_cache.put(("c", "s"), None)
    tags._library_cache.put("c", {})
    assert len(channel_codes._lookup_cache) == len(tags._library_cache) == 1
    caches.clear_all()
    assert len(channel_codes._lookup_cache) == len(tags._library_cache) == 0


def test_an_expiring_cache_loads_once_until_its_entry_expires(monkeypatch):
    from chalicelib.platform import caches

    clock = [100.0]
    monkeypatch.setattr(caches.time, "monotonic", lambda: clock[0])
    cache = caches.Expiring("test:expiring", 60.0)
    loads = []
    assert cache.get("k", lambda: loads.append(1) or "a") == "a"
    clock[0] = 159.9
    assert cache.get("k", lambda: loads.append(1) or "b") == "a"  # still live: not loaded again
    clock[0] = 160.0
    assert cache.get("k", lambda: loads.append(1) or "c") == "c"  # expired at ttl: loaded afresh
    cache.forget("k")
    assert cache.get("k", lambda: loads.append(1) or "d") == "d"
    assert len(loads) == 3
    caches.clear_all()
    assert len(cache) == 0
