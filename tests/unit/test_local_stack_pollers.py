"""`make run`'s consumers of the events queue: how many run at once is configurable (Lambda runs
several; docs/performance.md, "Group-code rotation", measures the burst with 1, 4 and 8)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("argv, env, pollers", [
    ([], {}, 4),
    (["--events-pollers", "8"], {}, 8),
    ([], {"SCRM_EVENTS_POLLERS": "2"}, 2),
])
def test_make_run_takes_the_number_of_events_pollers(monkeypatch, argv, env, pollers):
    from infra import local_stack

    seen = {}

    class Stack:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def start(self):
            raise local_stack.PortInUse("stop here")

    monkeypatch.setattr(local_stack, "LocalStack", Stack)
    monkeypatch.delenv("SCRM_EVENTS_POLLERS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert local_stack.main(["--fresh", "--state", "/nonexistent/state.json", *argv]) == 2
    assert seen["events_pollers"] == pollers


def test_make_run_refuses_fewer_than_one_poller(capsys):
    from infra import local_stack

    with pytest.raises(SystemExit):
        local_stack.main(["--events-pollers", "0"])
    assert "events-pollers" in capsys.readouterr().err
