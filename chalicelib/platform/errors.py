"""Errors shared by capabilities."""

from __future__ import annotations


class NotFound(LookupError):
    """Something the caller named does not exist (or is not visible to it). Its message says what,
    the same way on every route: "<what> <id> not found" (the API answers 404 `not_found`)."""

    what = "resource"

    def __init__(self, ident: str):
        super().__init__(f"{self.what} {ident} not found")
        self.ident = ident
