"""The JS-SDK signature (sans-I/O): what wx.config / wx.agentConfig need from the server.

doc 90506 (JS-SDK使用权限签名算法), the algorithm of WeChat's JS-SDK 附录1: the fields
``jsapi_ticket``, ``noncestr``, ``timestamp``, ``url`` joined as ``key=value`` pairs in that
(ASCII) order with ``&``, unescaped, and hashed with SHA-1 (lowercase hex). The URL is the page's
full URL without the fragment. wx.config signs with the corp's ticket (``get_jsapi_ticket``),
wx.agentConfig with the app's (``ticket/get?type=agent_config``).
"""

from __future__ import annotations

import hashlib

__all__ = ["TICKET_KINDS", "js_signature"]

# kind -> (API path, its query): the corp's ticket (wx.config) and the app's (wx.agentConfig)
TICKET_KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "jsapi": ("get_jsapi_ticket", {}),
    "agent_config": ("ticket/get", {"type": "agent_config"}),
}


def js_signature(*, ticket: str, noncestr: str, timestamp: int, url: str) -> str:
    page = url.split("#", 1)[0]
    string1 = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={int(timestamp)}&url={page}"
    return hashlib.sha1(string1.encode()).hexdigest()
