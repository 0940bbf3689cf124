"""A stack started in a process that imported app.py already (a test run) must poll the queues the
app's consumers are bound to: app.py reads their names once, at import."""

from __future__ import annotations


def test_the_stack_takes_every_consumer_queue_name_of_an_imported_app():
    from chalice.app import SQSEventConfig

    import app as app_module
    from chalicelib.platform import queues
    from infra.local_stack import LocalStack

    taken = LocalStack._queue_names_of_imported_app()
    assert set(taken) == {f"SCRM_{spec.logical_name.upper()}_QUEUE" for spec in queues.ALL_QUEUES}
    bound = {source.queue for source in app_module.app.event_sources if isinstance(source, SQSEventConfig)}
    assert set(taken.values()) == bound
