"""Errors shared by capabilities."""

from __future__ import annotations


class NotFound(LookupError):
    """Something the caller named does not exist (or is not visible to it). Its message says what,
    the same way on every route: "<what> <id> not found" (the API answers 404 `not_found`)."""

    what = "resource"

    def __init__(self, ident: str):
        super().__init__(f"{self.what} {ident} not found")
        self.ident = ident


class StateTaken(Exception):
    """A `state` (WeCom's attribution tag of a contact way or join way) is claimed once per corp,
    by a channel code or a group code (store.keys.state_claim); the API answers 409 `state_taken`."""

    def __init__(self, state: str):
        super().__init__(f"state {state} is already used by a channel code or a group code")
        self.state = state


class FieldError(ValueError):
    """A request its JSON Schema allows but that cannot be done as meant: the API answers 400
    `validation_error` with `details` naming the field, as for a schema refusal."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name

    def details(self) -> list[dict[str, str]]:
        return [{"field": self.field, "message": str(self)}]
