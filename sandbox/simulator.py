"""Simulated people: customers scanning, adding, leaving; staff members acting in the WeCom client.

Only these actions fire callbacks (API calls never do, doc 96361). Each posts WeCom's XML event,
encrypted with ``CallbackCrypto`` for the corp (receive id = corp id, doc 91144), to the corp's
callback URL, and re-sends like WeCom: a 5-second timeout, any non-200 is a failure, up to 3
retries (doc 96466). Delivery goes through ``deliver(url, params, body) -> status`` so tests can
deliver in-process; the default posts with httpx. State changes happen under the world lock;
callbacks are delivered after releasing it, so the product may call the sandbox API from its
callback handler (the welcome flow does exactly that).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from sandbox.api import quota_allows
from sandbox.state import Corp, Customer, GroupChat, Relation, SimulationError, WelcomeCode

if TYPE_CHECKING:  # pragma: no cover
    from sandbox.app import Sandbox

Deliver = Callable[[str, dict[str, str], bytes], int]

ADD_WAY_QR = 1  # follow_user.add_way: 1 scanned a QR code
ADD_WAY_PHONE = 2  # searched a phone number
ADD_WAY_TRANSFER = 202  # assigned by an admin (handover)

JOIN_SCENE_INVITE = 0  # change_external_chat JoinScene: invited by a member (incl. link)
JOIN_SCENE_QR = 3  # scanned the group QR code
GROUP_SIZE_LIMIT = 500


def httpx_deliver(timeout: float = 5.0) -> Deliver:
    def deliver(url: str, params: dict[str, str], body: bytes) -> int:
        import httpx

        try:
            resp = httpx.post(url, params=params, content=body, timeout=timeout,
                              headers={"Content-Type": "text/xml"})
        except httpx.HTTPError:
            return 0  # no answer in time / refused: a failure, re-sent
        return resp.status_code

    return deliver


def _cdata(value: Any) -> str:
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def event_xml(corp_id: str, created: int, event: str, fields: list[tuple[str, Any]]) -> bytes:
    """The decrypted callback XML (wecom-api.md section 2): strings in CDATA, numbers bare."""
    parts = [f"<ToUserName>{_cdata(corp_id)}</ToUserName>",
             f"<FromUserName>{_cdata('sys')}</FromUserName>",
             f"<CreateTime>{created}</CreateTime>",
             f"<MsgType>{_cdata('event')}</MsgType>",
             f"<Event>{_cdata(event)}</Event>"]
    for name, value in fields:
        if value is None:
            continue
        if isinstance(value, list):  # MemChangeList: <Item> children
            items = "".join(f"<Item>{escape(str(v))}</Item>" for v in value)
            parts.append(f"<{name}>{items}</{name}>")
        elif isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}>{_cdata(value)}</{name}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()


class Simulator:
    def __init__(self, sandbox: Sandbox, *, deliver: Deliver | None = None) -> None:
        self.sb = sandbox
        self.deliver = deliver

    # -- callback delivery -------------------------------------------------------------------
    def _event(self, corp: Corp, event: str, change_type: str | None,
               fields: list[tuple[str, Any]]) -> dict[str, Any]:
        """Build (under the lock) a pending callback; ``_post`` sends it after the lock."""
        created = int(self.sb.clock())
        all_fields = ([("ChangeType", change_type)] if change_type else []) + fields
        if event == "change_external_chat":  # ChatId precedes ChangeType in WeCom's samples
            all_fields = fields[:1] + [("ChangeType", change_type)] + fields[1:]
        return {"corp_id": corp.corp_id, "event": event, "change_type": change_type,
                "xml": event_xml(corp.corp_id, created, event, all_fields), "created": created,
                "fields": {k: v for k, v in fields if v is not None}}

    def _post(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from chalicelib.wecom.crypto import CallbackCrypto

        results = []
        for item in pending:
            corp = self.sb.world.corp(item["corp_id"])
            entry = {"corp_id": corp.corp_id, "at": self.sb.clock(), "event": item["event"],
                     "change_type": item["change_type"], "fields": item["fields"],
                     "plaintext": item["xml"].decode(), "statuses": [], "delivered": False}
            if corp.callback_url:
                crypto = CallbackCrypto(token=corp.callback_token,
                                        encoding_aes_key=corp.encoding_aes_key,
                                        receive_id=corp.corp_id)
                deliver = self.deliver or httpx_deliver(corp.settings.callback_timeout)
                for _ in range(1 + corp.settings.callback_retries):
                    params, body = crypto.encrypt_callback(
                        item["xml"], timestamp=str(int(self.sb.clock())),
                        nonce=secrets.token_hex(8), agent_id=corp.agent_id)
                    try:
                        status = int(deliver(corp.callback_url, params, body))
                    except Exception:  # noqa: BLE001 - the receiver failing is a failed delivery
                        status = 0
                    entry["statuses"].append(status)
                    if status == 200:
                        entry["delivered"] = True
                        break
            else:
                entry["error"] = "corp has no callback_url"
            results.append(self.sb.journal.record("callback", **entry))
        return results

    def _run(self, action: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, Any]:
        with self.sb.world.lock:
            result, pending = action()
        result["callbacks"] = [{"event": c["event"], "change_type": c["change_type"],
                                "statuses": c["statuses"], "delivered": c["delivered"]}
                               for c in self._post(pending)]
        return result

    # -- helpers -------------------------------------------------------------------------------
    def _corp(self, corp_id: str) -> Corp:
        try:
            return self.sb.world.corp(corp_id)
        except KeyError:
            raise SimulationError(f"no corp {corp_id}") from None

    def _customer(self, corp: Corp, external_userid: str | None, name: str | None,
                  unionid: str | None = None, type: int = 1) -> Customer:
        if external_userid and external_userid in corp.customers:
            return corp.customers[external_userid]
        ext = external_userid or self.sb.world.new_id("wm", 32)
        customer = Customer(ext, name or f"Customer {ext[-4:]}", type=type,
                            unionid=unionid or ("o" + ext[2:30] if type == 1 else None))
        corp.customers[ext] = customer
        return customer

    def _staff(self, corp: Corp, userid: str):
        member = corp.staff.get(userid)
        if member is None or member.resigned:
            raise SimulationError(f"no active staff member {userid}")
        return member

    def _add(self, corp: Corp, customer: Customer, userid: str, *, add_way: int,
             state: str | None, half: bool) -> tuple[Relation, str | None, list[dict[str, Any]]]:
        now = self.sb.clock()
        rel = corp.relations.get((customer.external_userid, userid))
        if rel is not None and rel.status in ("active", "half"):
            raise SimulationError("already a contact of this staff member")
        if rel is None:
            rel = Relation(userid, customer.external_userid, int(now), add_way=add_way, state=state)
            corp.relations[(customer.external_userid, userid)] = rel
        else:  # re-added after a deletion: same relation, new time and state
            rel.createtime, rel.add_way, rel.state = int(now), add_way, state
        rel.status = "half" if half else "active"
        code = None
        if not rel.chatted:  # no WelcomeCode once the chat has started (doc 92130)
            code = self.sb.world.new_id("WC", 43)
            corp.welcome_codes[code] = WelcomeCode(code, userid, customer.external_userid, now)
        change = "add_half_external_contact" if half else "add_external_contact"
        event = self._event(corp, "change_external_contact", change,
                            [("UserID", userid), ("ExternalUserID", customer.external_userid),
                             ("State", state), ("WelcomeCode", code)])
        return rel, code, [event]

    # -- customers and staff ---------------------------------------------------------------------
    def scan_contact_way(self, corp_id: str, config_id: str, *, external_userid: str | None = None,
                         name: str | None = None, userid: str | None = None,
                         unionid: str | None = None) -> dict[str, Any]:
        """A customer scans channel code ``config_id`` (type 2: ``userid`` picks the member,
        else the first available one)."""
        def action():
            corp = self._corp(corp_id)
            way = corp.contact_ways.get(config_id)
            if way is None:
                raise SimulationError("contact way does not exist (deleted?)")
            if way.get("is_temp"):
                if way.get("scans"):
                    raise SimulationError("temporary QR code already used (single add)")
                if self.sb.clock() > way["created_at"] + (way.get("expires_in") or 7 * 86400):
                    raise SimulationError("temporary QR code expired")
            users = list(way.get("user") or [])
            target = userid or next((u for u in users if u in corp.staff
                                     and not corp.staff[u].resigned), None)
            if target is None or target not in users:
                raise SimulationError("no usable staff member on this contact way")
            self._staff(corp, target)
            customer = self._customer(corp, external_userid, name, unionid)
            half = bool(way.get("skip_verify")) and corp.settings.skip_verify_half
            rel, code, events = self._add(corp, customer, target, add_way=ADD_WAY_QR,
                                          state=way.get("state"), half=half)
            way["scans"] = way.get("scans", 0) + 1
            return {"external_userid": customer.external_userid, "userid": target,
                    "welcome_code": code, "state": way.get("state"),
                    "relation_status": rel.status}, events
        return self._run(action)

    def add_staff(self, corp_id: str, userid: str, *, external_userid: str | None = None,
                  name: str | None = None, add_way: int = ADD_WAY_PHONE,
                  half: bool = False) -> dict[str, Any]:
        """A customer adds staff member ``userid`` directly (phone search, card): no state."""
        def action():
            corp = self._corp(corp_id)
            self._staff(corp, userid)
            customer = self._customer(corp, external_userid, name)
            rel, code, events = self._add(corp, customer, userid, add_way=add_way, state=None,
                                          half=half)
            return {"external_userid": customer.external_userid, "userid": userid,
                    "welcome_code": code, "relation_status": rel.status}, events
        return self._run(action)

    def confirm_contact(self, corp_id: str, userid: str, external_userid: str) -> dict[str, Any]:
        """The staff member confirms a skip-verify (half) add: add_external_contact, no code."""
        def action():
            corp = self._corp(corp_id)
            rel = corp.relations.get((external_userid, userid))
            if rel is None or rel.status != "half":
                raise SimulationError("no unconfirmed add to confirm")
            rel.status = "active"
            used = any(w.used for w in corp.welcome_codes.values()
                       if w.userid == userid and w.external_userid == external_userid)
            code = None
            if not used and not rel.chatted:
                code = self.sb.world.new_id("WC", 43)
                corp.welcome_codes[code] = WelcomeCode(code, userid, external_userid, self.sb.clock())
            event = self._event(corp, "change_external_contact", "add_external_contact",
                                [("UserID", userid), ("ExternalUserID", external_userid),
                                 ("State", rel.state), ("WelcomeCode", code)])
            return {"welcome_code": code}, [event]
        return self._run(action)

    def customer_deletes_staff(self, corp_id: str, external_userid: str, userid: str) -> dict[str, Any]:
        """del_follow_user: the customer removed the staff member (relation stays one-sided)."""
        def action():
            corp = self._corp(corp_id)
            rel = corp.relations.get((external_userid, userid))
            if rel is None or rel.status not in ("active", "half"):
                raise SimulationError("no relation to delete")
            rel.status = "lost"
            return {}, [self._event(corp, "change_external_contact", "del_follow_user",
                                    [("UserID", userid), ("ExternalUserID", external_userid)])]
        return self._run(action)

    def staff_deletes_customer(self, corp_id: str, userid: str, external_userid: str) -> dict[str, Any]:
        """del_external_contact: the staff member removed the customer (84061 from then on)."""
        def action():
            corp = self._corp(corp_id)
            rel = corp.relations.pop((external_userid, userid), None)
            if rel is None:
                raise SimulationError("no relation to delete")
            return {}, [self._event(corp, "change_external_contact", "del_external_contact",
                                    [("UserID", userid), ("ExternalUserID", external_userid)])]
        return self._run(action)

    def staff_edits_customer(self, corp_id: str, userid: str, external_userid: str, *,
                             add_tag: list[str] | None = None, remove_tag: list[str] | None = None,
                             remark: str | None = None, description: str | None = None) -> dict[str, Any]:
        """edit_external_contact: the staff member edits tags/remark in the client."""
        def action():
            corp = self._corp(corp_id)
            rel = corp.relations.get((external_userid, userid))
            if rel is None or rel.status not in ("active", "lost"):
                raise SimulationError("no relation to edit")
            add, remove = list(add_tag or []), list(remove_tag or [])
            for tag_id in add + remove:
                if corp.tag(tag_id) is None:
                    raise SimulationError(f"no tag {tag_id}")
            rel.tags = [t for t in rel.tags if t not in remove] + [t for t in add if t not in rel.tags]
            if remark is not None:
                rel.remark = remark
            if description is not None:
                rel.description = description
            if add or remove:
                self.sb.journal.record("tag_mark", corp_id=corp_id, at=self.sb.clock(),
                                       source="staff", userid=userid,
                                       external_userid=external_userid, add_tag=add,
                                       remove_tag=remove)
            return {"tags": list(rel.tags)}, [
                self._event(corp, "change_external_contact", "edit_external_contact",
                            [("UserID", userid), ("ExternalUserID", external_userid)])]
        return self._run(action)

    # -- groups ------------------------------------------------------------------------------------
    def _chat_event(self, corp: Corp, chat: GroupChat, change: str, **fields: Any) -> dict[str, Any]:
        order = ["UpdateDetail", "JoinScene", "QuitScene", "MemChangeCnt", "MemChangeList",
                 "LastMemVer", "CurMemVer"]
        return self._event(corp, "change_external_chat", change,
                           [("ChatId", chat.chat_id)] + [(k, fields[k]) for k in order if k in fields])

    def create_group(self, corp_id: str, owner: str, name: str = "", *,
                     members: list[str] | None = None, customers: list[str] | None = None
                     ) -> dict[str, Any]:
        """A staff member creates a customer group in the client (change_external_chat create)."""
        def action():
            corp = self._corp(corp_id)
            self._staff(corp, owner)
            chat = self._new_chat(corp, owner, name)
            now = int(self.sb.clock())
            for userid in [u for u in (members or []) if u != owner]:
                self._staff(corp, userid)
                chat.members[userid] = {"userid": userid, "type": 1, "join_time": now,
                                        "join_scene": 1, "invitor": {"userid": owner}}
            for ext in customers or []:
                customer = self._customer(corp, ext, None)
                chat.members[ext] = {"userid": ext, "type": 2, "join_time": now, "join_scene": 1,
                                     "invitor": {"userid": owner}, "name": customer.name,
                                     "unionid": customer.unionid}
            return {"chat_id": chat.chat_id}, [self._chat_event(corp, chat, "create")]
        return self._run(action)

    def _new_chat(self, corp: Corp, owner: str, name: str) -> GroupChat:
        chat = GroupChat(self.sb.world.new_id("wr", 32), name, owner, int(self.sb.clock()))
        chat.members[owner] = {"userid": owner, "type": 1, "join_time": chat.create_time,
                               "join_scene": 1}
        corp.chats[chat.chat_id] = chat
        return chat

    def _join(self, corp: Corp, chat: GroupChat, customer: Customer, *, scene: int,
              state: str | None, invitor: str | None) -> dict[str, Any]:
        if customer.external_userid in chat.members:
            raise SimulationError("already in the group")
        before = chat.member_version
        chat.members[customer.external_userid] = {
            "userid": customer.external_userid, "type": 2, "join_time": int(self.sb.clock()),
            "join_scene": 3 if scene == JOIN_SCENE_QR else 2, "state": state,
            "invitor": {"userid": invitor} if invitor else None, "name": customer.name,
            "unionid": customer.unionid, "group_nickname": ""}
        chat.version += 1
        return self._chat_event(corp, chat, "update", UpdateDetail="add_member", JoinScene=scene,
                                MemChangeCnt=1, MemChangeList=[customer.external_userid],
                                LastMemVer=before, CurMemVer=chat.member_version)

    def join_group(self, corp_id: str, config_id: str, *, external_userid: str | None = None,
                   name: str | None = None) -> dict[str, Any]:
        """A customer scans group code ``config_id``: joins the first of its groups below the
        scan-join cap (200 by default); if all are full, ``auto_create_room`` makes a new one."""
        def action():
            corp = self._corp(corp_id)
            way = corp.join_ways.get(config_id)
            if way is None:
                raise SimulationError("join way does not exist (deleted?)")
            customer = self._customer(corp, external_userid, name)
            cap = corp.settings.group_join_cap
            events = []
            chat = next((corp.chats[c] for c in way["chat_id_list"]
                         if c in corp.chats and len(corp.chats[c].members) < cap), None)
            if chat is None:
                if not way.get("auto_create_room"):
                    raise SimulationError("every group of this group code is full")
                last = next((corp.chats[c] for c in reversed(way["chat_id_list"]) if c in corp.chats), None)
                if last is None:
                    raise SimulationError("every group of this group code was dismissed")
                base = way.get("room_base_name") or last.name
                seq = int(way.get("room_base_id") or 0) + way.get("room_seq", 1)
                way["room_seq"] = way.get("room_seq", 1) + 1
                chat = self._new_chat(corp, last.owner, f"{base}{seq}")
                chat_ids = way["chat_id_list"]
                if len(chat_ids) >= 5:
                    chat_ids.pop(0)
                chat_ids.append(chat.chat_id)
                events.append(self._chat_event(corp, chat, "create"))
            events.append(self._join(corp, chat, customer, scene=JOIN_SCENE_QR,
                                     state=way.get("state"), invitor=None))
            return {"chat_id": chat.chat_id, "external_userid": customer.external_userid}, events
        return self._run(action)

    def join_many(self, corp_id: str, config_id: str, count: int, *, concurrency: int = 16,
                  prefix: str | None = None) -> dict[str, Any]:
        """``count`` customers scan group code ``config_id`` at once, from ``concurrency`` threads:
        each join is decided atomically under the world lock (the cap holds whatever the
        interleaving), and the callbacks are delivered concurrently, as WeCom would post them.
        Returns ``joins``: each join's result, or ``{"error": ...}`` for a customer who could not
        join; ``joined`` and ``refused`` count them."""
        from concurrent.futures import ThreadPoolExecutor

        def one(i: int) -> dict[str, Any]:
            ext = f"{prefix}{i:06d}" if prefix else None
            try:
                return self.join_group(corp_id, config_id, external_userid=ext)
            except SimulationError as exc:
                return {"error": str(exc), "external_userid": ext}

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            joins = list(pool.map(one, range(count)))
        refused = sum(1 for j in joins if "error" in j)
        return {"joins": joins, "joined": len(joins) - refused, "refused": refused}

    def invite_to_group(self, corp_id: str, chat_id: str, invitor: str, *,
                        external_userid: str | None = None, name: str | None = None) -> dict[str, Any]:
        """A member invites a customer (no scan cap; groups hold at most 500)."""
        def action():
            corp = self._corp(corp_id)
            chat = corp.chats.get(chat_id)
            if chat is None:
                raise SimulationError("no such group")
            if len(chat.members) >= GROUP_SIZE_LIMIT:
                raise SimulationError("group is full (500)")
            customer = self._customer(corp, external_userid, name)
            event = self._join(corp, chat, customer, scene=JOIN_SCENE_INVITE, state=None,
                               invitor=invitor)
            return {"chat_id": chat_id, "external_userid": customer.external_userid}, [event]
        return self._run(action)

    def leave_group(self, corp_id: str, chat_id: str, member_id: str, *,
                    removed: bool = False) -> dict[str, Any]:
        """A member leaves (QuitScene 0) or is removed by the owner (QuitScene 1)."""
        def action():
            corp = self._corp(corp_id)
            chat = corp.chats.get(chat_id)
            if chat is None or member_id not in chat.members:
                raise SimulationError("not in that group")
            before = chat.member_version
            del chat.members[member_id]
            chat.version += 1
            return {}, [self._chat_event(corp, chat, "update", UpdateDetail="del_member",
                                         QuitScene=1 if removed else 0, MemChangeCnt=1,
                                         MemChangeList=[member_id], LastMemVer=before,
                                         CurMemVer=chat.member_version)]
        return self._run(action)

    def dismiss_group(self, corp_id: str, chat_id: str) -> dict[str, Any]:
        def action():
            corp = self._corp(corp_id)
            chat = corp.chats.pop(chat_id, None)
            if chat is None:
                raise SimulationError("no such group")
            return {}, [self._chat_event(corp, chat, "dismiss")]
        return self._run(action)

    # -- broadcasts and handover ---------------------------------------------------------------
    def confirm_mass_message(self, corp_id: str, msgid: str, userid: str) -> dict[str, Any]:
        """The staff member confirms a pending broadcast: it goes to each recipient still a
        friend and under WeCom's receive quota (others skipped silently). No callback."""
        def action():
            corp = self._corp(corp_id)
            msg = corp.mass_messages.get(msgid)
            if msg is None or userid not in msg.targets:
                raise SimulationError("no such task for this staff member")
            if msg.cancelled:
                raise SimulationError("broadcast was cancelled")
            if msg.task_status.get(userid) == 2:
                raise SimulationError("already sent")
            now = int(self.sb.clock())
            sent = 0
            group = msg.chat_type == "group"
            for target in msg.targets[userid]:
                if group:
                    ok = target in corp.chats
                else:
                    rel = corp.relations.get((target, userid))
                    ok = rel is not None and rel.status == "active"
                if not ok:
                    msg.results[(userid, target)] = (2, None)
                elif not quota_allows(self.sb.api, corp, target, group=group):
                    msg.results[(userid, target)] = (3, None)
                else:
                    msg.results[(userid, target)] = (1, now)
                    sent += 1
                    self.sb.journal.record(
                        "mass_message", corp_id=corp_id, at=self.sb.clock(), msgid=msgid,
                        userid=userid, text=(msg.text or {}).get("content"),
                        attachments=msg.attachments,
                        **({"chat_id": target} if group else {"external_userid": target}))
            msg.task_status[userid] = 2
            msg.task_time[userid] = now
            return {"sent": sent}, []
        return self._run(action)

    def complete_transfers(self, corp_id: str, *, refuse: list[str] | None = None,
                           force: bool = False) -> dict[str, Any]:
        """Finish handovers started 24 h ago (or all with ``force``): the customer moves unless
        in ``refuse``. Callbacks: del_external_contact Source=DELETE_BY_TRANSFER to the old
        member, add_external_contact to the new one (unless already a friend), transfer_fail
        (FailReason customer_refused, or customer_limit_exceed when the takeover holds
        `takeover_customer_limit` customers already)."""
        def action():
            corp = self._corp(corp_id)
            now = self.sb.clock()
            events, done = [], []
            for t in corp.transfers:
                if t.status != 2 or (not force and now - t.started_at < 86400):
                    continue
                refused = t.external_userid in (refuse or [])
                full = not refused and len(corp.relations_of_staff(t.takeover_userid, ("active",))) >= \
                    corp.settings.takeover_customer_limit
                if refused or full:  # status 3 refused / 4 takeover full (transfer_result)
                    t.status = 3 if refused else 4
                    events.append(self._event(corp, "change_external_contact", "transfer_fail",
                                              [("UserID", t.takeover_userid),
                                               ("ExternalUserID", t.external_userid),
                                               ("FailReason", "customer_refused" if refused
                                                else "customer_limit_exceed")]))
                    continue
                old = corp.relations.pop((t.external_userid, t.handover_userid), None)
                t.status, t.takeover_time = 1, int(now)
                done.append(t.external_userid)
                events.append(self._event(corp, "change_external_contact", "del_external_contact",
                                          [("UserID", t.handover_userid),
                                           ("ExternalUserID", t.external_userid),
                                           ("Source", "DELETE_BY_TRANSFER")]))
                existing = corp.relations.get((t.external_userid, t.takeover_userid))
                if existing is None or existing.status not in ("active",):
                    corp.relations[(t.external_userid, t.takeover_userid)] = Relation(
                        t.takeover_userid, t.external_userid, int(now), add_way=ADD_WAY_TRANSFER,
                        state=old.state if old else None, tags=list(old.tags) if old else [],
                        chatted=True)
                    events.append(self._event(corp, "change_external_contact",
                                              "add_external_contact",
                                              [("UserID", t.takeover_userid),
                                               ("ExternalUserID", t.external_userid)]))
            return {"completed": done}, events
        return self._run(action)

    ACTIONS = ("scan_contact_way", "add_staff", "confirm_contact", "customer_deletes_staff",
               "staff_deletes_customer", "staff_edits_customer", "create_group", "join_group",
               "join_many", "invite_to_group", "leave_group", "dismiss_group", "confirm_mass_message",
               "complete_transfers")
