// Handovers (离职继承 / 在职继承): a member's customers (and groups) handed over to takeovers, in service
// or departed; the departed members' customers awaiting assignment; one handover's progress
// (refreshed on its own until done) and each customer's and group's result at #/handovers/<id>.
import { t } from "./i18n.js";
import { api, bar, csv, errorBox, fmtTime, form, h, query, section, table } from "./ui.js";

const ENTRY_STATUSES = ["queued", "waiting", "done", "refused", "takeover_full", "limit_reached", "failed"];
const SETTLED = ENTRY_STATUSES.filter((s) => !["queued", "waiting"].includes(s));
const sum = (counts, keys) => keys.reduce((n, k) => n + (counts[k] || 0), 0);

function progress(hv) {
  const total = sum(hv.customers, ENTRY_STATUSES);
  return h("span.progress", { "data-handover-status": hv.status }, h("strong", {}, t("ho_s_" + hv.status)), " ",
    bar(sum(hv.customers, SETTLED), total, t("progress"), { warnFull: false }));
}

const counts = (c) => h("ul.totals", {}, ENTRY_STATUSES.filter((s) => c[s]).map((s) =>
  h("li", {}, h("span", {}, t("ho_e_" + s)), h("strong", { "data-entry-count": s }, String(c[s])))));

function entries(kind, list) {
  return table([
    [kind === "customer" ? "customer_id" : "group", (e) => kind === "customer"
      ? h("a", { href: "#/customers/" + encodeURIComponent(e.target_id) }, e.target_id) : e.target_id],
    ["ho_takeover", (e) => e.takeover_id],
    ["status", (e) => h("span", { "data-entry-status": e.status }, t("ho_e_" + e.status))],
    ["reason", (e) => [e.reason, e.errcode ? `errcode ${e.errcode}` : null].filter(Boolean).join(" · ") || "—"],
    ["updated_at", (e) => fmtTime(e.takeover_time || e.updated_at)],
  ], list);
}

async function detail(main, ctx, id) {
  const path = `/handovers/${encodeURIComponent(id)}`;
  const box = h("div");
  const results = h("div");
  let status = "";
  const loadResults = async () => {
    const [hv, customers] = await Promise.all([api("GET", path), api("GET", `${path}/customers` + query({ status, limit: 50 }))]);
    const groups = hv.groups ? await api("GET", `${path}/groups?limit=50`) : null;
    if (!ctx.current()) return hv;
    box.replaceChildren(h("dl.profile", {},
      h("dt", {}, t("ho_mode")), h("dd", {}, t("ho_m_" + hv.mode)),
      h("dt", {}, t("ho_from")), h("dd", {}, hv.from_staff_id),
      h("dt", {}, t("ho_takeovers")), h("dd", {}, hv.takeover_ids.join(", ")),
      h("dt", {}, t("started_at")), h("dd", {}, fmtTime(hv.created_at)),
      h("dt", {}, t("status")), h("dd", {}, progress(hv))),
    counts(hv.customers));
    results.replaceChildren(h("h3", {}, t("ho_customers")), entries("customer", customers.items),
      ...(groups ? [h("h3", {}, t("ho_groups")), counts(hv.group_statuses), entries("group", groups.items)] : []));
    return hv;
  };
  const filter = form("handover-filter", [{ name: "status", label: "status", type: "select",
    options: [["", t("any")], ...ENTRY_STATUSES.map((s) => [s, t("ho_e_" + s)])] }], "show", async (v) => {
    status = v.status;
    await loadResults();
  });
  filter.classList.add("inline");
  main.append(h("p", {}, h("a", { href: "#/handovers" }, "← " + t("nav_handovers"))),
    section("ho_handover", box), section("ho_results", filter, results));
  const first = await loadResults();
  if (first.status === "done") return;  // final: nothing changes any more
  const stop = ctx.every(3000, () => loadResults().then((hv) => hv.status === "done" && stop()).catch(() => {}));
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx, ctx.arg);
  const listBox = h("div");
  const refresh = async () => {
    const list = await api("GET", "/handovers" + query({ limit: 20 }));
    if (!ctx.current()) return;
    listBox.replaceChildren(table([
      ["started_at", (x) => h("a", { href: "#/handovers/" + encodeURIComponent(x.handover_id) }, fmtTime(x.created_at))],
      ["ho_mode", (x) => t("ho_m_" + x.mode)], ["ho_from", (x) => x.from_staff_id], ["ho_takeovers", (x) => x.takeover_ids.join(", ")],
      ["status", (x) => h("span", { "data-handover-status": x.status }, t("ho_s_" + x.status))],
    ], list.items, "ho_none"));
  };
  const [segments] = await Promise.all([api("GET", "/segments?limit=200"), refresh()]);
  const f = form("handover-create", [
    { name: "mode", label: "ho_mode", type: "select", options: [["in_service", t("ho_m_in_service")], ["resigned", t("ho_m_resigned")]] },
    { name: "from_staff_id", label: "ho_from" },
    { name: "takeover_ids", label: "ho_takeovers", hint: "ho_takeovers_hint" },
    { name: "source", label: "ho_source", type: "select", options: [["all", t("ho_src_all")], ["list", t("ho_src_list")], ["segment", t("ho_src_segment")]] },
    { name: "customer_ids", label: "ho_customer_ids", type: "textarea", hint: "comma_list" },
    { name: "segment_id", label: "segment", type: "select", options: [["", "—"], ...segments.items.map((s) => [s.segment_id, s.name])] },
    { name: "groups", label: "ho_with_groups", type: "checkbox" },
    { name: "message", label: "ho_message", type: "textarea", hint: "ho_message_hint" },
  ], "ho_start", async (v) => {
    const body = { mode: v.mode, from_staff_id: v.from_staff_id, takeover_ids: csv(v.takeover_ids), groups: v.groups };
    if (v.source === "list") body.customer_ids = csv(v.customer_ids);
    if (v.source === "segment") body.segment_id = v.segment_id;
    if (v.message && v.mode === "in_service") body.message = v.message;
    const created = await api("POST", "/handovers", body);
    location.hash = "#/handovers/" + encodeURIComponent(created.handover_id);
  });
  const show = (name, on) => { f.inputs[name].closest(".field").hidden = !on; };
  const sync = () => {
    show("customer_ids", f.inputs.source.value === "list");
    show("segment_id", f.inputs.source.value === "segment");
    show("message", f.inputs.mode.value === "in_service");  // WeCom sends none in a departed member's handover
  };
  f.inputs.source.addEventListener("change", sync);
  f.inputs.mode.addEventListener("change", sync);
  sync();

  // Departed members' customers awaiting assignment: read from WeCom when asked (not on every visit).
  const unassigned = h("div");
  const lookUnassigned = async () => {
    try {
      const page = await api("GET", "/handovers/unassigned?limit=50");
      unassigned.replaceChildren(table([["ho_departed", (u) => u.handover_staff_id], ["customer_id", (u) => u.customer_id],
        ["ho_dimission", (u) => fmtTime(u.dimission_time)]], page.items, "ho_none_unassigned"));
    } catch (e) { unassigned.replaceChildren(errorBox(e)); }
  };
  const all = form("handover-unassigned", [
    { name: "takeover_ids", label: "ho_takeovers", hint: "ho_takeovers_hint" },
    { name: "groups", label: "ho_with_groups", type: "checkbox" },
  ], "ho_start_unassigned", async (v) => {
    const made = await api("POST", "/handovers/unassigned", { takeover_ids: csv(v.takeover_ids), groups: v.groups });
    unassigned.replaceChildren(h("p.ok", {}, `${t("ho_started")}: ${made.handovers.length}`));
    await refresh();
  });
  main.append(section("ho_list", listBox), section("ho_create", f),
    section("ho_unassigned", h("p.hint", {}, t("ho_unassigned_intro")),
      h("div.actions", {}, h("button", { type: "button", onclick: lookUnassigned }, t("look"))), unassigned, all));
  ctx.every(5000, () => refresh().catch(() => {}));
}
