"""Every key of every item type: the only place that spells them.

All of a corp's items live under the partition `CORP#<corp_id>` (or a partition that starts
with it), so one deployment serves many corps and a corp's data can be listed and deleted.
docs/architecture.md lists each item type with these shapes.
"""

from __future__ import annotations

Key = dict[str, str]


def _k(pk: str, sk: str) -> Key:
    return {"PK": pk, "SK": sk}


def corp_partition(corp_id: str) -> str:
    return f"CORP#{corp_id}"


def corp(corp_id: str) -> Key:
    return _k(corp_partition(corp_id), "CORP")


def corp_list_entry() -> str:
    """GSI2 partition that lists every registered corp (admin view)."""
    return "CORPS"


def api_key(key_hash: str) -> Key:
    # Looked up by hash on every API call: its own partition, no index needed.
    return _k(f"APIKEY#{key_hash}", "APIKEY")


def corp_api_key(corp_id: str, key_id: str) -> Key:
    """A corp's reference to one of its API keys (id, label, hint, hash), for listing and revoking."""
    return _k(corp_partition(corp_id), f"{corp_api_key_prefix()}{key_id}")


def corp_api_key_prefix() -> str:
    return "APIKEY#"


def event_claim(corp_id: str, identity: str) -> Key:
    return _k(corp_partition(corp_id), f"EVENT#{identity}")



def customer(corp_id: str, customer_id: str) -> Key:
    return _k(corp_partition(corp_id), f"CUSTOMER#{customer_id}")



def relation(corp_id: str, customer_id: str, staff_id: str) -> Key:
    return _k(corp_partition(corp_id), f"CUSTOMER#{customer_id}#REL#{staff_id}")


def relation_prefix(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}#REL#"


def timeline_entry(corp_id: str, customer_id: str, at_ms: int, identity: str) -> Key:
    return _k(corp_partition(corp_id), f"CUSTOMER#{customer_id}#LOG#{at_ms:015d}#{identity}")



def staff_relations_partition(corp_id: str, staff_id: str) -> str:
    """GSI1 partition: one staff member's relations."""
    return f"CORP#{corp_id}#STAFF#{staff_id}"


def relations_by_corp_partition(corp_id: str) -> str:
    """GSI2 partition: all relations of a corp, by date added (customer list)."""
    return f"CORP#{corp_id}#RELATIONS"


def counter(corp_id: str, day: str, dimension: str, value: str) -> Key:
    """Daily counters: day is YYYY-MM-DD in the corp's time zone; dimension corp|channel|staff|group."""
    return _k(corp_partition(corp_id), f"COUNT#{day}#{dimension}#{value}")


def counter_prefix(day_prefix: str = "") -> str:
    return f"COUNT#{day_prefix}"


def group(corp_id: str, group_id: str) -> Key:
    return _k(corp_partition(corp_id), f"GROUP#{group_id}")


def group_member(corp_id: str, group_id: str, member_id: str) -> Key:
    return _k(corp_partition(corp_id), f"GROUP#{group_id}#MEMBER#{member_id}")


def groups_partition(corp_id: str) -> str:
    """GSI2 partition: a corp's groups (not their members), for the groups list."""
    return f"CORP#{corp_id}#GROUPS"


def group_member_prefix(group_id: str) -> str:
    return f"GROUP#{group_id}#MEMBER#"


def member_groups_partition(corp_id: str, member_id: str) -> str:
    """GSI1 partition: the groups one member (a customer; staff too) is joined in, by group id (the
    member items themselves, while joined: the toolbar's "groups a customer is in")."""
    return f"CORP#{corp_id}#MEMBERGROUPS#{member_id}"


def access_token(corp_id: str, app: str) -> Key:
    return _k(corp_partition(corp_id), f"TOKEN#{app}")


def rate_window(corp_id: str, api: str, window: int) -> Key:
    return _k(f"{corp_partition(corp_id)}#RATE#{api}", f"W#{window}")


def sync_job(corp_id: str, job_id: str) -> Key:
    return _k(corp_partition(corp_id), f"{sync_job_prefix()}{job_id}")


def sync_job_prefix() -> str:
    """A corp's sync jobs, by job id (ids sort by start time: newest first reading backwards)."""
    return "SYNC#"


def channel_code(corp_id: str, code_id: str) -> Key:
    return _k(corp_partition(corp_id), f"CHANNEL#{code_id}")



def tag(corp_id: str, tag_id: str) -> Key:
    return _k(corp_partition(corp_id), f"TAG#{tag_id}")



def channel_code_prefix() -> str:
    return "CHANNEL#"


def routed_codes_partition(corp_id: str) -> str:
    """GSI2 partition: channel codes whose routing the schedule tick must re-check."""
    return f"CORP#{corp_id}#ROUTED"


def tag_prefix() -> str:
    return "TAG#"


def staff_directory(corp_id: str) -> Key:
    """The corp's staff members with customer-contact permission, as last read from WeCom."""
    return _k(corp_partition(corp_id), "STAFFDIR")


def default_welcome(corp_id: str) -> Key:
    return _k(corp_partition(corp_id), "WELCOME#default")


def sync_lock(corp_id: str, kind: str) -> Key:
    """One running job of a kind per corp."""
    return _k(corp_partition(corp_id), f"SYNCLOCK#{kind}")


def stalled_jobs_partition() -> str:
    """GSI2 partition of running jobs, for the watchdog that resumes a killed run."""
    return "JOBS#running"


def welcome_claim(corp_id: str, welcome_code: str) -> Key:
    return _k(corp_partition(corp_id), f"WELCOMECODE#{welcome_code}")


def state_claim(corp_id: str, state: str) -> Key:
    """The one item per `state` across channel codes and group codes: a channel code's own item
    is its claim, a group code writes a `group_code_state` item here, so a state is used once."""
    return channel_code(corp_id, state)


def group_code(corp_id: str, code_id: str) -> Key:
    return _k(corp_partition(corp_id), f"GCODE#{code_id}")


def group_code_prefix() -> str:
    return "GCODE#"


def active_group_codes_partition(corp_id: str) -> str:
    """GSI2 partition: a corp's active group codes, which the minute tick re-checks."""
    return f"CORP#{corp_id}#GCODES"


def group_code_chat(corp_id: str, chat_id: str, code_id: str) -> Key:
    """A group in a group code's pool: which codes a group's member change concerns."""
    return _k(corp_partition(corp_id), f"{group_code_chat_prefix(chat_id)}{code_id}")


def group_code_chat_prefix(chat_id: str) -> str:
    return f"GCODECHAT#{chat_id}#"


def segment(corp_id: str, segment_id: str) -> Key:
    return _k(corp_partition(corp_id), f"{segment_prefix()}{segment_id}")


def segment_prefix() -> str:
    """A corp's saved segments, by id (ids sort by creation time)."""
    return "SEGMENT#"


def broadcast(corp_id: str, broadcast_id: str) -> Key:
    return _k(corp_partition(corp_id), f"BCAST#{broadcast_id}")


def broadcasts_partition(corp_id: str) -> str:
    """GSI2 partition: a corp's broadcasts by id (ids sort by creation time: newest first backwards)."""
    return f"CORP#{corp_id}#BCASTS"


def due_broadcasts_partition() -> str:
    """GSI1 partition of scheduled broadcasts across corps, by `<send_at:012>#<corp>#<id>` (the minute tick)."""
    return "BCASTS#DUE"


def broadcast_part(corp_id: str, broadcast_id: str, sender: str, step: int, k: int) -> Key:
    """Up to 1,000 recipients of one sender planned by one plan step."""
    return _k(corp_partition(corp_id), f"{broadcast_part_prefix(broadcast_id)}{sender}#{step:06d}#{k:03d}")


def broadcast_part_prefix(broadcast_id: str) -> str:
    return f"BCAST#{broadcast_id}#PART#"


def broadcast_step(corp_id: str, broadcast_id: str, step: int) -> Key:
    """What one plan step planned: its parts per sender (the chunking step reads these, not the parts)."""
    return _k(corp_partition(corp_id), f"{broadcast_step_prefix(broadcast_id)}{step:06d}")


def broadcast_step_prefix(broadcast_id: str) -> str:
    return f"BCAST#{broadcast_id}#STEP#"


def broadcast_chunk(corp_id: str, broadcast_id: str, sender: str, k: int) -> Key:
    """One WeCom call of a broadcast."""
    return _k(corp_partition(corp_id), f"{broadcast_chunk_prefix(broadcast_id)}{sender}#{k:04d}")


def broadcast_chunk_prefix(broadcast_id: str) -> str:
    return f"BCAST#{broadcast_id}#CHUNK#"


def broadcast_fails(corp_id: str, broadcast_id: str, sender: str, k: int, page: int) -> Key:
    """One page (<= 1,000 ids) of a sent chunk's fail list (WeCom's recipients it would not send to)."""
    return _k(corp_partition(corp_id), f"BCAST#{broadcast_id}#FAIL#{sender}#{k:04d}#{page:02d}")


def broadcast_msgid(corp_id: str, msgid: str) -> Key:
    """Which chunk a WeCom mass-message id was recorded by (a lost reply's lookup skips these)."""
    return _k(corp_partition(corp_id), f"BCASTMSG#{msgid}")


def cap_claim(corp_id: str, day: str, customer_id: str) -> Key:
    """A customer's broadcast claims of one day (corp time zone), shared by every broadcast of that day."""
    return _k(corp_partition(corp_id), f"CAP#{day}#{customer_id}")


def broadcast_policy(corp_id: str) -> Key:
    return _k(corp_partition(corp_id), "BCASTPOLICY")


def sop_calendar(corp_id: str, calendar_id: str) -> Key:
    return _k(corp_partition(corp_id), f"{sop_calendar_prefix()}{calendar_id}")


def sop_calendar_prefix() -> str:
    """A corp's SOP calendars, by id (ids sort by creation time)."""
    return "SOPCAL#"


def sop_rule(corp_id: str, calendar_id: str, rule_id: str) -> Key:
    """One rule's schedule: its next due time (in the due index while the calendar is active)."""
    return _k(corp_partition(corp_id), f"{sop_rule_prefix(calendar_id)}{rule_id}")


def sop_rule_prefix(calendar_id: str) -> str:
    return f"SOPRULE#{calendar_id}#"


def due_sop_rules_partition() -> str:
    """GSI1 partition of SOP rules across corps, by `<next_due:012>#<corp>#<calendar>#<rule>` (the minute tick)."""
    return "SOP#DUE"


def sop_occurrence(corp_id: str, calendar_id: str, due: int, rule_id: str) -> Key:
    """One occurrence of a rule (its identity: rule, due time; the target follows from both), claimed before acting."""
    return _k(corp_partition(corp_id), f"{sop_occurrence_prefix(calendar_id)}{due:012d}#{rule_id}")


def sop_occurrence_prefix(calendar_id: str) -> str:
    return f"SOPOCC#{calendar_id}#"


def tracked_broadcasts_partition() -> str:
    """GSI1 partition of sent broadcasts whose results and reminders the tracking tick still pulls,
    by `<next check:012>#<corp>#<id>`."""
    return "BCASTS#TRACK"


def handover(corp_id: str, handover_id: str) -> Key:
    return _k(corp_partition(corp_id), f"{handover_prefix()}{handover_id}")


def handover_prefix() -> str:
    """A corp's handovers, by id (ids sort by start time: newest first reading backwards)."""
    return "HANDOVER#"


def handover_partition(corp_id: str, handover_id: str) -> str:
    """One handover's chunks (the WeCom calls) and its customers' and groups' progress."""
    return f"{corp_partition(corp_id)}#HANDOVER#{handover_id}"


def handover_chunk(corp_id: str, handover_id: str, chunk: int) -> Key:
    return _k(handover_partition(corp_id, handover_id), f"{handover_chunk_prefix()}{chunk:05d}")


def handover_chunk_prefix() -> str:
    return "CHUNK#"


def handover_entry(corp_id: str, handover_id: str, kind: str, target_id: str) -> Key:
    """One customer's (kind "customer") or group's ("group") progress in a handover."""
    return _k(handover_partition(corp_id, handover_id), f"{handover_entry_prefix(kind)}{target_id}")


def handover_entry_prefix(kind: str) -> str:
    return f"{kind.upper()}#"


def handover_pointer(corp_id: str, customer_id: str, staff_id: str) -> Key:
    """Which handover last moved a customer from or to a staff member: the transfer callbacks
    (DELETE_BY_TRANSFER names the member handed over, transfer_fail the takeover) find it here."""
    return _k(f"{corp_partition(corp_id)}#HOPTR", f"{customer_id}#{staff_id}")


def open_handovers_partition() -> str:
    """GSI2 partition of handovers not settled yet, for the minute tick (calls, transfer_result polls)."""
    return "HANDOVERS#open"


def churn_partition(corp_id: str) -> str:
    """A corp's ended relations (churn), by time ended."""
    return f"{corp_partition(corp_id)}#CHURN"


def churn(corp_id: str, at: int, customer_id: str, staff_id: str) -> Key:
    return _k(churn_partition(corp_id), f"{at:012d}#{customer_id}#{staff_id}")


def churn_alert_settings(corp_id: str) -> Key:
    return _k(corp_partition(corp_id), "CHURNALERTS")


def churn_alerts_partition(corp_id: str) -> str:
    """Churn alerts waiting to be sent (`P#...`) and the claims of the messages sent (`M#...`)."""
    return f"{corp_partition(corp_id)}#CHURNALERT"


def churn_alert(corp_id: str, at: int, customer_id: str, staff_id: str) -> Key:
    return _k(churn_alerts_partition(corp_id), f"{churn_alert_prefix()}{at:012d}#{customer_id}#{staff_id}")


def churn_alert_prefix() -> str:
    return "P#"


def churn_alert_message(corp_id: str, message_key: str) -> Key:
    """The claim of one alert message (an event's, or a digest window's for one recipient)."""
    return _k(churn_alerts_partition(corp_id), f"M#{message_key}")
