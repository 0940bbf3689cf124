"""What the EventBridge schedules do, per corp. Each job is idempotent, so a late or doubled tick
is harmless; a failure in one corp does not stop the others."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


def all_corp_ids() -> list[str]:
    from chalicelib.corps import items as corp_items

    ids, cursor = [], None
    while True:
        page, cursor = corp_items.list_corps(limit=100, cursor=cursor)
        ids += [c.corp_id for c in page]
        if not cursor:
            return ids


def minute(now: float | None = None) -> dict[str, int]:
    """Channel-code routing (schedules, daily caps, validity windows); group-code rotation (counts,
    windows, lost callbacks); resume stalled syncs; start due broadcasts (resume stalled plans)."""
    from chalicelib.broadcasts import service as broadcasts
    from chalicelib.channel_codes import service as channel_codes
    from chalicelib.customers import sync as customer_sync
    from chalicelib.group_codes import service as group_codes

    now = time.time() if now is None else now
    result = {"routing_checked": 0, "routing_changed": 0, "group_codes_checked": 0, "group_codes_rotated": 0,
              "syncs_resumed": 0, "broadcasts_started": 0, "broadcasts_resumed": 0,
              "broadcasts_tracked": 0, "failures": 0}
    for corp_id in all_corp_ids():
        try:
            r = channel_codes.tick([corp_id], now=now)
            result["routing_checked"] += r["checked"]
            result["routing_changed"] += r["changed"]
        except Exception:
            logger.exception("routing tick failed for %s", corp_id)
            result["failures"] += 1
        try:
            g = group_codes.tick(corp_id, now=now)
            result["group_codes_checked"] += g["checked"]
            result["group_codes_rotated"] += g["rotated"]
            result["failures"] += g["failed"]
        except Exception:
            logger.exception("group code tick failed for %s", corp_id)
            result["failures"] += 1
    result["syncs_resumed"] = customer_sync.resume_stalled(now=now)
    try:
        b = broadcasts.tick(now=now)
        result["broadcasts_started"], result["broadcasts_resumed"] = b["started"], b["resumed"]
        result["broadcasts_tracked"] = b["tracked"]
        result["failures"] += b["failures"]
    except Exception:
        logger.exception("broadcast tick failed")
        result["failures"] += 1
    return result


def daily(now: float | None = None) -> dict[str, int]:
    """Mirror each corp's tag library and start a full customer sync and a full group sync (they
    catch what callbacks missed); one that is still running is left to finish."""
    from chalicelib.customers import sync as customer_sync
    from chalicelib.customers import sync_items as sync_jobs
    from chalicelib.groups import sync as group_sync
    from chalicelib.tags import service as tags

    result = {"corps": 0, "syncs_started": 0, "group_syncs_started": 0, "failures": 0}
    for corp_id in all_corp_ids():
        result["corps"] += 1
        for name, start in (("syncs_started", customer_sync.start), ("group_syncs_started", group_sync.start)):
            try:
                if start is customer_sync.start:
                    tags.sync_library(corp_id)
                start(corp_id, now=now)
                result[name] += 1
            except sync_jobs.JobRunning:
                continue
            except Exception:
                logger.exception("daily %s failed for %s", name, corp_id)
                result["failures"] += 1
    return result
