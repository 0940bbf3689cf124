"""Churn as stored: each relation a customer or a staff member ended (not by a handover), the
corp's churn-alert setting, the alerts waiting to be sent and the claims of the messages sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.platform.model import Model
from chalicelib.store import ConditionFailed, get_table, keys
from chalicelib.store.events import StoreOp

# lost: the customer deleted the member; removed: the member deleted the customer
ChurnKind = Literal["lost", "removed"]
AlertStatus = Literal["pending", "sent", "failed", "uncertain", "off"]
MessageStatus = Literal["sending", "retry", "sent", "failed", "uncertain"]
FINAL = ("sent", "failed", "uncertain")


class ChurnItem(Model):
    customer_id: str
    staff_id: str
    kind: ChurnKind
    at: int = Field(description="when the relation ended (the callback's CreateTime)")
    customer_name: str | None = None
    channel: str | None = Field(None, description="the channel code the relation came through; null: none")
    tags: list[str] = Field(default_factory=list, description="the relation's tags when it ended")
    added_at: int | None = None
    welcome_sent: bool = False
    alert: AlertStatus | None = Field(None, description="the churn alert: null when alerts were off")
    alert_errcode: int | None = None


class AlertSettings(Model):
    enabled: bool = False
    mode: Literal["event", "digest"] = "digest"
    digest_minutes: int = 30
    notify_staff: bool = True
    managers: list[str] = Field(default_factory=list)
    updated_at: int = 0


class PendingAlert(Model):
    """A churn alert not yet delivered to every recipient group (`delivered_to`: "event", or staff ids)."""

    sk: str
    at: int
    customer_id: str
    staff_id: str
    customer_name: str | None = None
    channel: str | None = None
    added_at: int | None = None
    delivered_to: list[str] = Field(default_factory=list)
    failed: dict[str, int] = Field(default_factory=dict)  # recipient group -> errcode (0: uncertain)


class AlertMessage(Model):
    """The claim of one alert message: taken before message/send, so a run repeated never sends it twice."""

    key: str
    status: MessageStatus
    touser: list[str]
    alerts: list[str]
    attempts: int = 0  # refusals by WeCom (retried until MAX_REFUSALS)
    errcode: int | None = None
    retry_at: int = 0
    updated_at: int = 0


def churn_recorded(corp_id: str, churn: ChurnItem) -> StoreOp:
    return StoreOp(get_table().op_put({**keys.churn(corp_id, churn.at, churn.customer_id, churn.staff_id),
                                       "type": "churn", **churn.model_dump(exclude_none=True)},
                                      condition="attribute_not_exists(PK)"), stale_ok=True)


def alert_queued(corp_id: str, churn: ChurnItem) -> StoreOp:
    key = keys.churn_alert(corp_id, churn.at, churn.customer_id, churn.staff_id)
    alert = PendingAlert(sk=key["SK"], at=churn.at, customer_id=churn.customer_id, staff_id=churn.staff_id,
                         customer_name=churn.customer_name, channel=churn.channel, added_at=churn.added_at)
    # delivered_to is a string set, added to as messages go (DynamoDB stores no empty set)
    return StoreOp(get_table().op_put({**key, "type": "churn_alert",
                                       **alert.model_dump(exclude_none=True, exclude={"delivered_to"})},
                                      condition="attribute_not_exists(PK)"), stale_ok=True)


def search(corp_id: str, *, staff_id: str | None, channel: str | None, kind: str | None, since: int | None,
           until: int | None, limit: int, cursor: str | None) -> tuple[list[ChurnItem], str | None]:
    """Newest first; dates narrow the key range, the rest filter (a filtered page reads on)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    filters = []
    for attr, value in (("staff_id", staff_id), ("channel", channel), ("kind", kind)):
        if value:
            names[f"#{attr}"] = attr
            values[f":{attr}"] = value
            filters.append(f"#{attr} = :{attr}")
    lo, hi = f"{since or 0:012d}", f"{until if until is not None else 10**12 - 1:012d}\uffff"
    found, nxt = get_table().query_filled(keys.churn_partition(corp_id), limit=limit, cursor=cursor,
                                          max_reads=10 if filters else 1, sk_between=(lo, hi), newest_first=True,
                                          filter_expression=" AND ".join(filters) or None, names=names or None,
                                          values=values or None)
    return [ChurnItem.model_validate(i) for i in found], nxt


def settings_of(item: dict[str, Any] | None) -> AlertSettings:
    return AlertSettings.model_validate(item) if item else AlertSettings()


def get_settings(corp_id: str) -> AlertSettings:
    return settings_of(get_table().get(keys.churn_alert_settings(corp_id), consistent=True))


def save_settings(corp_id: str, settings: AlertSettings) -> None:
    get_table().put({**keys.churn_alert_settings(corp_id), "type": "churn_alert_settings",
                     **settings.model_dump()})


def pending(corp_id: str) -> list[PendingAlert]:
    found = get_table().query_all(keys.churn_alerts_partition(corp_id), sk_prefix=keys.churn_alert_prefix(),
                                  consistent=True)
    return [PendingAlert.model_validate(i) for i in found]


def get_message(corp_id: str, key: str) -> AlertMessage | None:
    item = get_table().get(keys.churn_alert_message(corp_id, key), consistent=True)
    return AlertMessage.model_validate(item) if item else None


def claim_message(corp_id: str, message: AlertMessage, *, seen: AlertMessage | None) -> bool:
    """Put the claim (status sending) if no claim exists, or if it is still the retry `seen`."""
    item = {**keys.churn_alert_message(corp_id, message.key), "type": "churn_alert_message", **message.model_dump()}
    try:
        if seen is None:
            get_table().put(item, condition="attribute_not_exists(PK)")
        else:
            get_table().put(item, condition="#status = :retry AND updated_at = :seen", names={"#status": "status"},
                            values={":retry": "retry", ":seen": seen.updated_at})
    except ConditionFailed:
        return False
    return True


def save_message(corp_id: str, message: AlertMessage) -> None:
    get_table().put({**keys.churn_alert_message(corp_id, message.key), "type": "churn_alert_message",
                     **message.model_dump()})


def mark_delivered(corp_id: str, alert: PendingAlert, group: str, *, errcode: int | None) -> PendingAlert:
    """One recipient group's message is final for this alert (errcode: refused; 0 uncertain)."""
    values: dict[str, Any] = {":g": {group}}
    expression = "ADD delivered_to :g"
    names: dict[str, str] = {}
    if errcode is not None:
        expression += " SET failed.#grp = :e"
        names["#grp"] = group
        values[":e"] = errcode
    key = keys.churn_alert(corp_id, alert.at, alert.customer_id, alert.staff_id)
    item = get_table().update(key, expression=expression, names=names or None, values=values,
                              condition="attribute_exists(PK)", return_new=True)
    return PendingAlert.model_validate(item)


def close_alert(corp_id: str, alert: PendingAlert, *, status: AlertStatus, errcode: int | None) -> None:
    """Every recipient group is final: the outcome on the churn item, the pending alert gone."""
    table = get_table()
    values: dict[str, Any] = {":s": status}
    expression = "SET alert = :s"
    if errcode is not None:
        expression += ", alert_errcode = :e"
        values[":e"] = errcode
    table.transact([
        table.op_update(keys.churn(corp_id, alert.at, alert.customer_id, alert.staff_id), expression=expression,
                        values=values),
        table.op_delete(keys.churn_alert(corp_id, alert.at, alert.customer_id, alert.staff_id)),
    ])
