"""The base of every pydantic model in chalicelib.

Models build their validators on first use (``defer_build``), not when their module is imported:
app.py imports the operator API's modules to register its routes, and a Lambda instance woken by
a WeCom callback should not pay for building the models it will never validate (measured with
bench/cold_start.py; docs/performance.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)


def integral(value: object) -> object:
    """JSON Schema's `integer` includes 5.0: take it as 5 (before a strict int, which still refuses
    "5", true and 5.5). Use as `Annotated[int, Field(...), BeforeValidator(integral)]`."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Change(Model):
    """A PATCH body: a field left out keeps its value, so the schema gives none a default; null is
    taken only by fields whose value may be null (it clears them); `min_changes` = 1 refuses {}."""

    min_changes: ClassVar[int] = 0

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for prop in schema.get("properties", {}).values():
            prop.pop("default", None)
        if cls.min_changes:
            schema["minProperties"] = cls.min_changes
        return schema
