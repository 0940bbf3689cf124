"""Churn: the ended relations listed, and churn alerts (app messages through the corp's agent).

Alerts go out in messages, each claimed before message/send (items.claim_message): per event, one
message to the staff member and the managers; as a digest, one message per recipient per window of
`digest_minutes` listing every churn of the windows that closed (the member gets their own, each
manager all). WeCom refusing a message is retried on the next ticks, `MAX_REFUSALS` times, then
recorded on the churns as failed with its errcode; limited or busy is retried without counting; a
message whose answer was lost may have been delivered and is recorded as uncertain, never sent again.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, StringConstraints

from chalicelib.api.core import PageQuery
from chalicelib.churn import items as churn_items
from chalicelib.churn.items import AlertMessage, AlertSettings, PendingAlert
from chalicelib.platform.errors import FieldError
from chalicelib.platform.model import Model

logger = logging.getLogger(__name__)

MAX_REFUSALS = 3
RETRY_SECONDS = 60
SENDING_STALE_SECONDS = 300  # a claim this old still "sending": its run died mid-send (uncertain)
TEXT_LIMIT = 2000  # message/send text is <= 2048 bytes
StaffId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-.@]{1,64}$")]


class ChurnQuery(PageQuery):
    staff_id: StaffId | None = None
    channel: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    kind: Literal["lost", "removed"] | None = Field(None, description="lost: the customer deleted the member; "
                                                                      "removed: the member deleted the customer")
    since: date | None = Field(None, description="ended on or after this day (the corp's time zone)")
    until: date | None = Field(None, description="ended on or before this day; not before `since`")


class ChurnView(churn_items.ChurnItem):
    days_since_added: int | None = Field(None, description="whole days from the add to the end; null: add unknown")

    @classmethod
    def of(cls, c: churn_items.ChurnItem) -> ChurnView:
        days = (c.at - c.added_at) // 86400 if c.added_at else None
        return cls(**c.model_dump(), days_since_added=days)


class AlertSettingsBody(Model):
    """PUT /churn-alerts. Cross-field (400 validation_error): when enabled, someone to tell (notify_staff
    or managers)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool
    mode: Literal["event", "digest"] = Field("digest", description="event: one message per churn; digest: "
                                                                   "one per recipient every digest_minutes")
    digest_minutes: int = Field(30, ge=5, le=1440)
    notify_staff: bool = Field(True, description="the member the customer deleted")
    managers: list[StaffId] = Field(default_factory=list, max_length=20)


class AlertSettingsView(AlertSettingsBody):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    pending: int = Field(0, description="alerts not yet sent to every recipient")


class InvalidChurnRequest(FieldError):
    """A rule between fields (400 validation_error, naming the field)."""


class NoAgent(ValueError):
    """Alerts need the corp's app (agent id: PATCH /corps) to send message/send."""


# -- listing -------------------------------------------------------------------------------------------
def _epoch(corp_id: str, day: date | None, *, end: bool) -> int | None:
    from chalicelib.corps import registry as corps

    if day is None:
        return None
    corp = corps.runtime(corp_id)
    tz = ZoneInfo(corp.time_zone if corp else "Asia/Shanghai")
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    return int((start + timedelta(days=1)).timestamp()) - 1 if end else int(start.timestamp())


def search(corp_id: str, q: ChurnQuery) -> tuple[list[ChurnView], str | None]:
    if q.since and q.until and q.until < q.since:
        raise InvalidChurnRequest("until", "until is before since")
    found, cursor = churn_items.search(corp_id, staff_id=q.staff_id, channel=q.channel, kind=q.kind,
                                       since=_epoch(corp_id, q.since, end=False),
                                       until=_epoch(corp_id, q.until, end=True), limit=q.limit, cursor=q.cursor)
    return [ChurnView.of(c) for c in found], cursor


# -- settings ------------------------------------------------------------------------------------------
def view_settings(corp_id: str) -> AlertSettingsView:
    s = churn_items.get_settings(corp_id)
    return AlertSettingsView(**s.model_dump(exclude={"updated_at"}), pending=len(churn_items.pending(corp_id)))


def put_settings(corp_id: str, body: AlertSettingsBody, *, now: float | None = None) -> AlertSettingsView:
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import staff
    from chalicelib.handovers.service import UnknownStaff

    if len(set(body.managers)) != len(body.managers):
        raise InvalidChurnRequest("managers", "a manager is listed twice")
    if body.enabled and not (body.notify_staff or body.managers):
        raise InvalidChurnRequest("managers", "alerts on need a recipient: notify_staff or managers")
    missing = staff.unknown(corp_id, list(body.managers)) if body.managers else []
    if missing:
        raise UnknownStaff("managers", missing)
    corp = corp_items.get_corp(corp_id)
    if body.enabled and (corp is None or not corp.agent_id):
        raise NoAgent("churn alerts are app messages: the corp needs its app's agent_id (POST /api/v1/corps)")
    churn_items.save_settings(corp_id, AlertSettings(**body.model_dump(), updated_at=int(time.time() if now is None
                                                                                         else now)))
    return view_settings(corp_id)


# -- sending -------------------------------------------------------------------------------------------
def _line(a: PendingAlert, names: dict[str, str]) -> str:
    who = a.customer_name or a.customer_id
    return f"{who} -> {names.get(a.staff_id, a.staff_id)}" + (f" ({a.channel})" if a.channel else "")


def _text(alerts: list[PendingAlert], names: dict[str, str], *, digest: bool) -> str:
    if not digest:
        a = alerts[0]
        days = f", {(a.at - a.added_at) // 86400} days after adding" if a.added_at else ""
        return f"Churn alert: {a.customer_name or a.customer_id} deleted {names.get(a.staff_id, a.staff_id)}" \
               f"{f' (channel {a.channel})' if a.channel else ''}{days}."
    head = f"Churn digest: {len(alerts)} customer(s) deleted a staff member"
    lines = [head]
    for i, a in enumerate(sorted(alerts, key=lambda x: (x.at, x.customer_id))):
        line = _line(a, names)
        if len("\n".join([*lines, line]).encode()) > TEXT_LIMIT - 60:
            lines.append(f"... and {len(alerts) - i} more: GET /api/v1/churn")
            break
        lines.append(line)
    return "\n".join(lines)


def _groups(s: AlertSettings, pending: list[PendingAlert], *, now: int) -> dict[str, tuple[list[str], str,
                                                                                              list[PendingAlert]]]:
    """message key -> (touser, recipient group, alerts) for what is due now."""
    out: dict[str, tuple[list[str], str, list[PendingAlert]]] = {}
    if s.mode == "event":
        for a in pending:
            if "event" not in a.delivered_to:
                touser = list(dict.fromkeys(([a.staff_id] if s.notify_staff else []) + s.managers))
                out[f"E#{a.sk}"] = (touser, "event", [a])
        return out
    window = s.digest_minutes * 60
    current = now // window
    for a in (a for a in pending if a.at < current * window):  # churns of the windows that closed
        for r in dict.fromkeys(([a.staff_id] if s.notify_staff else []) + s.managers):
            if r not in a.delivered_to:
                out.setdefault(f"D#{current}#{r}", ([r], r, []))[2].append(a)
    return out


def _deliver(corp_id: str, client: Any, agent_id: int, key: str, touser: list[str], text: str,
             alerts: list[PendingAlert], *, now: int) -> AlertMessage | None:
    """The message, sent at most once: its claim when final (sent / failed / uncertain), else None."""
    from chalicelib.wecom import errors
    from chalicelib.wecom.models import AppTextMessage, Text

    seen = churn_items.get_message(corp_id, key)
    if seen is not None and seen.status in churn_items.FINAL:
        return seen
    if seen is not None and seen.status == "sending":
        if now - seen.updated_at < SENDING_STALE_SECONDS:
            return None  # another run is sending it
        final = seen.model_copy(update={"status": "uncertain", "updated_at": now})  # that run died mid-send
        churn_items.save_message(corp_id, final)
        return final
    if seen is not None and now < seen.retry_at:
        return None
    claim = AlertMessage(key=key, status="sending", touser=touser, alerts=[a.sk for a in alerts],
                         attempts=seen.attempts if seen else 0, updated_at=now)
    if not churn_items.claim_message(corp_id, claim, seen=seen):
        return None
    try:
        client.send_app_message(AppTextMessage(touser="|".join(touser), agentid=agent_id, text=Text(content=text)))
    except errors.ApiError as exc:
        refusals = claim.attempts + (0 if exc.retryable else 1)
        final = refusals >= MAX_REFUSALS
        logger.warning("churn alert %s/%s refused: errcode %s (%d refusals)", corp_id, key, exc.errcode, refusals)
        done = claim.model_copy(update={"status": "failed" if final else "retry", "attempts": refusals,
                                        "errcode": exc.errcode, "retry_at": now + RETRY_SECONDS, "updated_at": now})
        churn_items.save_message(corp_id, done)
        return done if final else None
    except errors.WeComUnavailable:  # it may have been delivered: never sent twice, recorded as uncertain
        done = claim.model_copy(update={"status": "uncertain", "updated_at": now})
        churn_items.save_message(corp_id, done)
        return done
    done = claim.model_copy(update={"status": "sent", "updated_at": now})
    churn_items.save_message(corp_id, done)
    return done


def _close(corp_id: str, alert: PendingAlert, group: str, message: AlertMessage, wanted: set[str]) -> None:
    errcode = None if message.status == "sent" else (message.errcode or 0)
    updated = churn_items.mark_delivered(corp_id, alert, group, errcode=errcode)
    if not wanted <= set(updated.delivered_to):
        return
    failed = [e for e in updated.failed.values()]
    status = "sent" if not failed else "failed" if any(failed) else "uncertain"
    churn_items.close_alert(corp_id, updated, status=status, errcode=next((e for e in failed if e), None))


def flush(corp_id: str, *, now: float | None = None) -> dict[str, int]:
    """Send what is due for one corp (per-event alerts, closed digest windows, retries)."""
    from chalicelib.corps import items as corp_items
    from chalicelib.corps import registry as corps
    from chalicelib.corps import staff

    now = int(time.time() if now is None else now)
    result = {"messages": 0, "alerts_delivered": 0}
    s = churn_items.get_settings(corp_id)
    pending = churn_items.pending(corp_id)
    if not pending:
        return result
    if not s.enabled:  # switched off with alerts waiting: recorded as such, not sent later
        for a in pending:
            churn_items.close_alert(corp_id, a, status="off", errcode=None)
        return result
    corp = corp_items.get_corp(corp_id)
    if corp is None or not corp.agent_id:
        return result
    client, names = corps.wecom_client(corp_id), staff.names(corp_id)
    for key, (touser, group, alerts) in _groups(s, pending, now=now).items():
        if not touser:
            continue
        message = _deliver(corp_id, client, int(corp.agent_id), key, touser,
                           _text(alerts, names, digest=s.mode == "digest"), alerts, now=now)
        if message is None:
            continue
        result["messages"] += 1
        listed = set(message.alerts)
        for a in (a for a in alerts if a.sk in listed):
            wanted = {"event"} if s.mode == "event" else set(([a.staff_id] if s.notify_staff else []) + s.managers)
            _close(corp_id, a, group, message, wanted)
            result["alerts_delivered"] += 1
    return result


def tick(corp_ids: list[str], *, now: float | None = None) -> dict[str, int]:
    totals = {"alert_messages": 0, "failures": 0}
    for corp_id in corp_ids:
        try:
            totals["alert_messages"] += flush(corp_id, now=now)["messages"]
        except Exception:
            logger.exception("churn alerts failed for %s", corp_id)
            totals["failures"] += 1
    return totals
