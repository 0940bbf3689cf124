"""The base of every pydantic model in chalicelib.

Models build their validators on first use (``defer_build``), not when their module is imported:
app.py imports the operator API's modules to register its routes, and a Lambda instance woken by
a WeCom callback should not pay for building the models it will never validate (measured with
bench/cold_start.py; docs/performance.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
