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
