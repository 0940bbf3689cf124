"""Welcome text rendering: {customer_name} filled in, or left out without a trace."""

from __future__ import annotations

import pytest

from chalicelib.platform.content import MessageContent


@pytest.mark.parametrize(("text", "named", "nameless"), [
    ("Hi {customer_name}, welcome!", "Hi Lily, welcome!", "Hi, welcome!"),
    ("Hello {customer_name} from Store 7", "Hello Lily from Store 7", "Hello from Store 7"),
    ("亲爱的{customer_name}，欢迎光临", "亲爱的Lily，欢迎光临", "亲爱的，欢迎光临"),
    ("{customer_name}你好", "Lily你好", "你好"),
    ("Welcome, {customer_name}", "Welcome, Lily", "Welcome,"),
    ("Thanks {customer_name}!  Enjoy.", "Thanks Lily!  Enjoy.", "Thanks!  Enjoy."),  # the operator's own blanks stay
    ("{customer_name}", "Lily", None),
    ("No placeholder here.", "No placeholder here.", "No placeholder here."),
])
def test_render_text(text, named, nameless):
    content = MessageContent(text=text)
    assert content.render_text(customer_name="Lily") == named
    assert content.render_text(customer_name=None) == nameless
    assert content.render_text(customer_name="") == nameless
