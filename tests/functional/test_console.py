"""The operator console's files, served by the API itself (chalicelib/console): the page, its
modules and styles with their types and a strict CSP; nothing else of the package is reachable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "chalicelib" / "console" / "static"


def test_the_console_page_and_its_files_are_served_with_their_types(chalice_client):
    page = chalice_client.http.get("/console")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]  # no CDN, no inline script
    assert b'src="console/app.js"' in page.body
    for name, kind in (("app.js", "text/javascript"), ("console.css", "text/css"), ("i18n.js", "text/javascript")):
        resp = chalice_client.http.get(f"/console/{name}")
        assert resp.status_code == 200, name
        assert resp.headers["Content-Type"].startswith(kind), name
        assert resp.body == (STATIC / name).read_bytes()


@pytest.mark.parametrize("name", ["routes.py", "__init__.py", "nope.js", "..%2Froutes.py", ".hidden.js", "index.htm"])
def test_only_the_static_files_are_served(chalice_client, name):
    resp = chalice_client.http.get(f"/console/{name}")
    assert resp.status_code == 404


def test_every_module_the_console_imports_is_one_of_its_files():
    names = {p.name for p in STATIC.iterdir()}
    for js in STATIC.glob("*.js"):
        text = js.read_text()
        for ref in re.findall(r"""(?:from|import\()\s*["']\./([^"']+)["']""", text) + re.findall(
                r"""module: "\./([^"]+)\"""", text):
            assert ref in names, f"{js.name} imports {ref}"
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, js.name
