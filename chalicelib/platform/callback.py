"""The WeCom callback receiver: verify, decrypt, check the corp, parse, enqueue, answer 200.

Nothing slow happens here: WeCom wants URL verification within 1 s and events within 5 s, and
re-posts otherwise. Bad input gets a 4xx with a JSON error and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from chalice import Response

logger = logging.getLogger(__name__)


def _reject(status: int, code: str, message: str) -> Response:
    return Response(
        body=json.dumps({"error": {"code": code, "message": message}}),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def handle(method: str, corp_id: str, query: dict[str, str] | None, body: bytes | None) -> Response:
    from chalicelib.corps import registry as corps
    from chalicelib.wecom import crypto

    query = query or {}
    body = body or b""
    if len(body) > crypto.MAX_BODY_BYTES:  # refuse before any lookup or parsing
        return _reject(413, "body_too_large", "callback body over 1 MB")
    corp = corps.runtime(corp_id)
    if corp is None:
        return _reject(404, "unknown_corp", "no corp is registered at this callback URL")
    try:
        try:
            return _answer(method, corp, query, body)
        except crypto.SignatureInvalid:
            # The corp's token may have been changed through another instance (PATCH /corps):
            # judge with the stored secrets, reloaded at most every few seconds per instance.
            fresh = corps.refresh(corp_id)
            if fresh is None:
                raise
            return _answer(method, fresh, query, body)
    except crypto.CallbackRejected as exc:
        logger.warning("callback for %s rejected: %s", corp_id, exc.code,
                       extra={"corp_id": corp_id, "rejected": exc.code})
        return _reject(exc.http_status, exc.code, str(exc) or exc.code)


def _answer(method: str, corp: Any, query: dict[str, str], body: bytes) -> Response:
    if method == "GET":
        echo = corp.crypto.verify_url(
            msg_signature=query.get("msg_signature"),
            timestamp=query.get("timestamp"),
            nonce=query.get("nonce"),
            echostr=query.get("echostr"),
        )
        return Response(body=echo.decode(), status_code=200, headers={"Content-Type": "text/plain"})
    plaintext = corp.crypto.decrypt_callback(
        msg_signature=query.get("msg_signature"),
        timestamp=query.get("timestamp"),
        nonce=query.get("nonce"),
        body=body,
    )
    from chalicelib.wecom.events import parse_event

    event = parse_event(plaintext)
    _check_not_future(event)
    _enqueue(corp.corp_id, event)
    return Response(body="", status_code=200, headers={"Content-Type": "text/plain"})


# WeCom stamps CreateTime when the change happens, before it posts; a later one is not WeCom's.
# Left in, it would outrank every real event of that relation until that time (handlers order by
# CreateTime). The margin covers clock skew between WeCom's servers and ours.
MAX_CREATE_TIME_AHEAD = 600


def _check_not_future(event: Any) -> None:
    from chalicelib.wecom.events import EventInvalid, GenericEvent

    if not isinstance(event, GenericEvent) and event.create_time > time.time() + MAX_CREATE_TIME_AHEAD:
        raise EventInvalid(f"{event.KIND}: CreateTime is in the future")


def _enqueue(corp_id: str, event: Any) -> None:
    from chalicelib.platform import queues

    queues.send(
        queues.EVENTS,
        queues.EventMessage(corp_id=corp_id, received_at_ms=int(time.time() * 1000),
                            event=event.to_dict()),
    )
