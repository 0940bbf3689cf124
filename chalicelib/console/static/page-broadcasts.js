// Broadcasts (群发) to customers (a segment or a filter given here), to groups (by owner, group code
// or list) or as a Moments post (senders, tag visibility): compose with a live count, attachments,
// schedule; progress (refreshed on its own while it runs), per-reason exclusions, cancel; the
// corp's broadcast policy.
import { t } from "./i18n.js";
import {
  api, bar, changed, checks, content, errorBox, fmtTime, form, fromLocalInput, h, idList, labelled, query, section, select,
  table, tagOptions,
} from "./ui.js";
import { filterEditor, livePreview } from "./page-segments.js";

const FINAL = new Set(["sent", "cancelled", "failed"]);
const REASONS = ["capped", "lost_relation", "no_sender", "not_friend", "over_quota"];

function progress(b) {
  return h("span.progress", { "data-broadcast-status": b.status },
    h("strong", {}, t("b_" + b.status)), " ", bar(b.sent + b.failed, b.planned, t("progress"), { warnFull: false }));
}

const targetText = ({ kind, ...rest }) =>
  `${t("f_to_" + kind)}: ${Object.entries(rest).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ") || t("any")}`;

async function detail(main, ctx, id) {
  const box = h("div");
  const msg = h("div");
  const load = async () => {
    const [b, recipients] = await Promise.all([api("GET", `/broadcasts/${encodeURIComponent(id)}`),
      api("GET", `/broadcasts/${encodeURIComponent(id)}/recipients?limit=50`)]);
    if (!ctx.current()) return;
    box.replaceChildren(
      section("broadcast", h("h3", {}, b.name), progress(b),
        h("dl.profile", {}, ["planned", "queued", "sent", "confirmed", "delivered", "failed"].flatMap((k) =>
          [h("dt", {}, t("m_" + k)), h("dd", { "data-count": k }, String(b[k]))]),
        h("dt", {}, t("send_at")), h("dd", {}, fmtTime(b.send_at)),
        h("dt", {}, t("f_target")), h("dd", { "data-target": b.target.kind }, targetText(b.target)),
        b.moment ? [h("dt", {}, t("f_moment")), h("dd", {}, h("code", {}, JSON.stringify(b.moment)))] : null),
        h("h3", {}, t("excluded")),
        h("dl.profile", {}, REASONS.flatMap((r) => [h("dt", {}, t("x_" + r)), h("dd", { "data-excluded": r }, String(b.excluded[r]))])),
        b.error ? h("p.form-error", {}, b.error) : null,
        FINAL.has(b.status) ? null : h("button", { type: "button", onclick: cancel }, t("cancel_broadcast"))),
      section("recipients", table([["recipient", (r) => r.recipient], ["sender", (r) => r.sender], ["status", (r) => r.status]], recipients.items)));
  };
  const cancel = async () => {
    msg.replaceChildren();
    try { await api("POST", `/broadcasts/${encodeURIComponent(id)}/cancel`); } catch (e) { msg.replaceChildren(errorBox(e)); }
    await load();
  };
  main.append(h("p", {}, h("a", { href: "#/broadcasts" }, "← " + t("nav_broadcasts"))), msg, box);
  await load();
  ctx.every(3000, () => load().catch(() => {}));
}

// One of several ways to give a target part (a select of modes, each drawing its own fields).
function modes(path, labelKey, choices) {
  const mode = select(path.replace(/\./g, "_") + "_by", choices.map(([m]) => [m, t("f_by_" + m)]), choices[0][0],
    { "data-mode-for": path });
  const box = h("div.mode-fields");
  let current;
  const draw = () => {
    current = choices.find(([m]) => m === mode.value)[1]();
    box.replaceChildren(current.el);
  };
  mode.addEventListener("change", () => { draw(); changed(box); });
  draw();
  return { el: h("div", {}, labelled(path + "._by", labelKey, mode), box), mode, read: () => current.read() };
}

// The target as the API takes it: customers, groups or Moments, each part addressed by its path.
function targetEditor({ segments, library, groupCodes }) {
  const kind = select("target_kind", ["customers", "groups", "moments"].map((k) => [k, t("f_to_" + k)]), "customers",
    { "data-path": "target.kind" });
  const customers = modes("target.customers", "f_customers_by", [
    ["segment", () => {
      const seg = select("segment_id", [["", "—"], ...segments.map((s) => [s.segment_id, s.name])], "");
      return { el: labelled("segment_id", "segment", seg), read: () => ({ segment_id: seg.value }) };
    }],
    ["filter", () => {
      const f = filterEditor("target.customers.filter", library);
      return { el: f.el, read: () => ({ filter: f.read() }) };
    }],
  ]);
  const groups = modes("target.groups", "f_groups_by", [
    ["owner_ids", () => { const w = idList("target.groups.owner_ids", "f_owner_ids"); return { el: w.el, read: () => ({ owner_ids: w.read() }) }; }],
    ["group_code_id", () => {
      const c = select("group_code_id", [["", "—"], ...groupCodes.map((g) => [g.code_id, g.name])], "", { "data-path": "target.groups.group_code_id" });
      return { el: labelled("target.groups.group_code_id", "group_code", c), read: () => ({ group_code_id: c.value }) };
    }],
    ["chat_ids", () => { const w = idList("target.groups.chat_ids", "f_chat_ids"); return { el: w.el, read: () => ({ chat_ids: w.read() }) }; }],
  ]);
  const senders = idList("target.moments.sender_ids", "f_senders", [], { nullable: true, hint: "f_senders_hint" });
  const visible = checks("target.moments.tag_ids", "f_visible_to_tags", tagOptions(library), [], { nullable: true });
  const moments = { el: h("div", {}, senders.el, visible.el), read: () => {
    const out = { sender_ids: senders.read(), tag_ids: visible.read() };
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null));
  } };
  const parts = { customers, groups, moments };
  const box = h("div.target-fields");
  const draw = () => box.replaceChildren(parts[kind.value].el);
  kind.addEventListener("change", () => { draw(); changed(box); });
  draw();
  return {
    el: h("div.target", {}, labelled("target.kind", "f_target", kind, "f_target_hint"), box),
    labelled: true,
    kind,
    customers,
    read: () => ({ kind: kind.value, ...parts[kind.value].read() }),
  };
}

function policyForm(policy) {
  const done = h("span.ok", { "aria-live": "polite" });
  const f = form("broadcast-policy", [
    { name: "per_customer_per_day", label: "f_per_customer_per_day", type: "number", value: policy.per_customer_per_day,
      hint: "f_per_customer_per_day_hint" },
    { name: "remind_after_minutes", label: "f_remind_after_minutes", type: "number", value: policy.remind_after_minutes,
      hint: "f_remind_after_minutes_hint" },
  ], "save", async (v) => {
    done.textContent = "";
    const saved = await api("PUT", "/broadcast-policy", { per_customer_per_day: Number(v.per_customer_per_day),
      remind_after_minutes: Number(v.remind_after_minutes) });
    f.inputs.per_customer_per_day.value = saved.per_customer_per_day;
    f.inputs.remind_after_minutes.value = saved.remind_after_minutes;
    done.textContent = t("f_saved");
  });
  f.querySelector(".actions").append(done);
  return f;
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx, ctx.arg);
  const [segments, library, groupCodes, policy] = await Promise.all([api("GET", "/segments?limit=200"), api("GET", "/tags"),
    api("GET", "/group-codes?limit=200"), api("GET", "/broadcast-policy")]);
  const listBox = h("div");
  const refreshList = async () => {  // the list only: a half-composed broadcast is never wiped
    const list = await api("GET", "/broadcasts" + query({ limit: 50 }));
    if (!ctx.current()) return;
    listBox.replaceChildren(table([
      ["name", (b) => h("a", { href: "#/broadcasts/" + encodeURIComponent(b.broadcast_id) }, b.name)],
      ["f_target", (b) => t("f_to_" + b.target.kind)],
      ["status", progress], ["send_at", (b) => fmtTime(b.send_at)], ["m_planned", (b) => String(b.planned)],
    ], list.items, "no_broadcasts"));
  };
  const target = targetEditor({ segments: segments.items, library, groupCodes: groupCodes.items });
  const f = form("broadcast-create", [
    { name: "name", label: "name" },
    { name: "target", label: "f_target", widget: target },
    { name: "content", label: "f_content", widget: content("content"), hint: "f_content_hint" },
    { name: "send_at", label: "send_at", type: "datetime-local", hint: "send_at_hint" },
  ], "schedule", async (v) => {
    const body = { name: v.name, target: v.target, content: v.content || { text: "" } };
    if (v.send_at) body.send_at = fromLocalInput(v.send_at);
    const b = await api("POST", "/broadcasts", body);
    location.hash = "#/broadcasts/" + encodeURIComponent(b.broadcast_id);
  });
  // whom it reaches now: customers only (groups and Moments are counted by WeCom when sent)
  const live = livePreview(f, () => {
    if (target.kind.value !== "customers") return null;
    const c = target.customers.read();
    return c.segment_id !== undefined ? c.segment_id || null : c.filter;
  }, { prefix: "target.customers.", scope: () => target.el });
  f.querySelector(".actions").prepend(h("span", {}, t("live_count") + ": "), live.count, " ", live.general);
  main.append(section("broadcasts_list", listBox), section("compose_broadcast", f),
    section("f_broadcast_policy", policyForm(policy)));
  await refreshList();
  ctx.every(5000, () => refreshList().catch(() => {}));
}
