// Customers: search by tag, staff, channel, status and dates; one customer's profile, tags (edit)
// and timeline at #/customers/<customer_id>.
import { t } from "./i18n.js";
import { api, csv, fmtTime, form, h, query, section, table, tagOptions, zonedEpoch } from "./ui.js";

const STATUSES = ["", "active", "pending", "lost", "removed", "transferred"];
const epoch = (d, end) => (d ? zonedEpoch(d + (end ? "T23:59:59" : "")) : "");  // the corp's day

async function detail(main, ctx, id) {
  const [c, library] = await Promise.all([api("GET", `/customers/${encodeURIComponent(id)}`), api("GET", "/tags")]);
  const tagChoices = [["", "—"], ...tagOptions(library)];
  const names = Object.fromEntries(c.tag_details.map((x) => [x.tag_id, x.name || x.tag_id]));
  main.append(
    h("p", {}, h("a", { href: "#/customers" }, "← " + t("nav_customers"))),
    section("profile", h("dl.profile", {},
      h("dt", {}, t("customer_id")), h("dd", {}, c.customer_id),
      h("dt", {}, t("customer_name")), h("dd", { "data-customer-name": "" }, c.profile?.name || "—"),
      h("dt", {}, t("tags")), h("dd", {}, c.tags.map((x) => names[x]).join(", ") || "—"))),
    section("relations", table([
      ["staff_ids", (r) => r.staff_name || r.staff_id], ["status", (r) => t("s_" + r.status)], ["state", (r) => r.state || "—"],
      ["added_at", (r) => fmtTime(r.added_at)], ["tags", (r) => r.tag_details.map((x) => x.name || x.tag_id).join(", ")],
    ], c.relations)),
    c.relations.length ? section("edit_tags", form("customer-tags", [
      { name: "staff_id", label: "staff_ids", type: "select", options: c.relations.map((r) => [r.staff_id, r.staff_name || r.staff_id]) },
      { name: "add", label: "tags_add", type: "select", options: tagChoices },
      { name: "remove", label: "tags_remove", type: "select", options: tagChoices },
    ], "save", async (v) => {
      await api("POST", `/customers/${encodeURIComponent(id)}/tags`, { staff_id: v.staff_id, add: csv(v.add), remove: csv(v.remove) });
      await ctx.reload();
    })) : null,
    section("timeline", h("ol.timeline", {}, c.timeline.map((e) =>
      h("li", { "data-kind": e.kind }, h("time", {}, fmtTime(e.at)), " ", h("strong", {}, e.kind), e.staff_id ? ` · ${e.staff_id}` : "")))));
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx, ctx.arg);
  const results = h("div");
  let cursor = null;
  let last = {};
  const load = async (v, more = false) => {
    last = v;
    const page = await api("GET", "/customers" + query({ tag: v.tag, staff_id: v.staff_id, channel: v.channel, status: v.status,
      added_from: epoch(v.added_from), added_to: epoch(v.added_to, true), limit: 50, cursor: more ? cursor : null }));
    cursor = page.next_cursor;
    const rows = table([
      ["customer_name", (r) => h("a", { href: "#/customers/" + encodeURIComponent(r.customer_id) }, r.customer_name || r.customer_id)],
      ["staff_ids", (r) => r.staff_name || r.staff_id], ["status", (r) => t("s_" + r.status)], ["state", (r) => r.state || "—"],
      ["tags", (r) => r.tag_details.map((x) => x.name || x.tag_id).join(", ")], ["added_at", (r) => fmtTime(r.added_at)],
    ], page.items, "no_customers");
    if (!more) results.replaceChildren();
    results.append(rows);
    if (cursor) results.append(h("button", { type: "button", onclick: (ev) => { ev.target.remove(); load(last, true); } }, t("more")));
  };
  // the tag library (for the filter) and the first customers at once: the page waits for the slower only
  const [library] = await Promise.all([api("GET", "/tags"), load({})]);
  const tagChoices = [["", t("any")], ...tagOptions(library)];
  const f = form("customer-search", [
    { name: "tag", label: "tag", type: "select", options: tagChoices },
    { name: "staff_id", label: "staff_ids" },
    { name: "channel", label: "channel_state" },
    { name: "status", label: "status", type: "select", options: STATUSES.map((s) => [s, s ? t("s_" + s) : t("any")]) },
    { name: "added_from", label: "added_from", type: "date" },
    { name: "added_to", label: "added_to", type: "date" },
  ], "search", (v) => load(v));
  f.classList.add("inline");
  main.append(f, results);
}
