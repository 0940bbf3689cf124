// Churn (流失 / 删除): the relations customers (lost) or staff members (removed) ended, filtered by kind,
// staff member, channel code and the corp's days; the churn-alert setting (app messages to the member
// and managers, per churn or as a digest).
import { t } from "./i18n.js";
import { api, csv, fmtTime, form, h, query, section, session, table } from "./ui.js";

function settingsForm(s, pendingBox) {
  const saved = h("output.ok", { "aria-live": "polite" });
  const f = form("churn-alerts", [
    { name: "enabled", label: "ch_enabled", type: "checkbox", value: s.enabled },
    { name: "mode", label: "ch_mode", type: "select", value: s.mode, options: [["digest", t("ch_mode_digest")], ["event", t("ch_mode_event")]] },
    { name: "digest_minutes", label: "ch_digest_minutes", type: "number", value: s.digest_minutes },
    { name: "notify_staff", label: "ch_notify_staff", type: "checkbox", value: s.notify_staff },
    { name: "managers", label: "ch_managers", value: s.managers.join(", "), hint: "comma_list" },
  ], "save", async (v) => {
    saved.textContent = "";
    const now = await api("PUT", "/churn-alerts", { enabled: v.enabled, mode: v.mode, notify_staff: v.notify_staff,
      digest_minutes: v.digest_minutes === "" ? null : Number(v.digest_minutes), managers: csv(v.managers) });
    pendingBox.replaceChildren(pending(now));
    saved.textContent = t("ch_saved");
  });
  f.querySelector(".actions").append(saved);
  const sync = () => { f.inputs.digest_minutes.closest(".field").hidden = f.inputs.mode.value !== "digest"; };
  f.inputs.mode.addEventListener("change", sync);
  sync();
  return f;
}

const pending = (s) => h("p", { "data-pending": s.pending }, `${t("ch_pending")}: ${s.pending}`);

export async function render(main, ctx) {
  const library = api("GET", "/tags");  // read once, alongside the first churns (names for their tag ids)
  const results = h("div");
  let cursor = null;
  let last = {};
  const load = async (v, more = false) => {
    last = v;
    const [page, tags] = await Promise.all([api("GET", "/churn" + query({ kind: v.kind, staff_id: v.staff_id, channel: v.channel,
      since: v.since, until: v.until, limit: 50, cursor: more ? cursor : null })), library]);
    if (!ctx.current()) return;
    const tagName = Object.fromEntries(tags.groups.flatMap((g) => g.tags.map((x) => [x.tag_id, x.name])));
    cursor = page.next_cursor;
    const rows = table([
      ["ch_at", (c) => fmtTime(c.at)],
      ["customer_name", (c) => h("a", { href: "#/customers/" + encodeURIComponent(c.customer_id) }, c.customer_name || c.customer_id)],
      ["staff_ids", (c) => c.staff_id], ["kind", (c) => h("span", { "data-churn-kind": c.kind }, t("s_" + c.kind))],
      ["channel_state", (c) => c.channel || "—"], ["tags", (c) => c.tags.map((x) => tagName[x] || x).join(", ") || "—"],
      ["ch_days", (c) => (c.days_since_added ?? "—").toString()], ["ch_welcomed", (c) => t(c.welcome_sent ? "yes" : "no")],
      ["ch_alert", (c) => (c.alert ? t("ch_a_" + c.alert) + (c.alert_errcode ? ` (errcode ${c.alert_errcode})` : "") : "—")],
    ], page.items, "ch_none");
    if (!more) results.replaceChildren();
    results.append(rows);
    if (cursor) results.append(h("button", { type: "button", onclick: (ev) => { ev.target.remove(); load(last, true); } }, t("more")));
  };
  const [alerts] = await Promise.all([api("GET", "/churn-alerts"), load({})]);  // at once
  const f = form("churn-search", [
    { name: "kind", label: "kind", type: "select", options: [["", t("any")], ["lost", t("s_lost")], ["removed", t("s_removed")]] },
    { name: "staff_id", label: "staff_ids" },
    { name: "channel", label: "channel_state" },
    { name: "since", label: "from", type: "date" },
    { name: "until", label: "to", type: "date" },
  ], "search", (v) => load(v));
  f.classList.add("inline");
  const pendingBox = h("div", {}, pending(alerts));
  const noAgent = session.corp && !session.corp.agent_configured ? h("p.hint", {}, t("ch_no_agent")) : null;
  main.append(section("ch_list", f, results), section("ch_alerts", h("p.hint", {}, t("ch_alerts_intro")), noAgent, pendingBox, settingsForm(alerts, pendingBox)));
}
