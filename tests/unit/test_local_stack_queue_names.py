"""A stack started in a process that imported app.py already (a test run) must poll the queues the
app's consumers are bound to: app.py reads their names once, at import."""

from __future__ import annotations

import importlib
import sys


def test_the_stack_takes_every_consumer_queue_name_of_an_imported_app(monkeypatch):
    from chalice.app import SQSEventConfig

    from chalicelib.platform import queues
    from infra.local_stack import LocalStack

    variables = {f"SCRM_{spec.logical_name.upper()}_QUEUE": f"imported-{spec.logical_name}"
                 for spec in queues.ALL_QUEUES}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    before = sys.modules.pop("app", None)  # put back afterwards: other tests hold the app they imported
    app_module = importlib.import_module("app")
    try:
        bound = {source.queue for source in app_module.app.event_sources if isinstance(source, SQSEventConfig)}
        assert bound == set(variables.values())
        assert LocalStack._queue_names_of_imported_app() == variables
    finally:
        if before is None:
            sys.modules.pop("app", None)
        else:
            sys.modules["app"] = before
