// Groups (客户群) with filters; one group's members at #/groups/<group_id>.
import { t } from "./i18n.js";
import { api, fmtTime, form, h, query, section, table } from "./ui.js";

async function detail(main, id) {
  const g = await api("GET", `/groups/${encodeURIComponent(id)}`);
  main.append(h("p", {}, h("a", { href: "#/groups" }, "← " + t("nav_groups"))),
    section("group", h("dl.profile", {}, h("dt", {}, t("name")), h("dd", {}, g.name || g.group_id), h("dt", {}, t("owner")), h("dd", {}, g.owner || "—"),
      h("dt", {}, t("member_count")), h("dd", {}, String(g.member_count ?? "—")), h("dt", {}, t("status")), h("dd", {}, g.status))),
    section("members", table([["member_id", (m) => m.member_id], ["member_type", (m) => t(m.member_type === 1 ? "staff" : "customer")],
      ["state", (m) => m.state || "—"], ["joined_at", (m) => fmtTime(m.join_time || m.joined_at)]], g.members)));
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx.arg);
  const results = h("div");
  const load = async (v) => {
    const page = await api("GET", "/groups" + query({ owner: v.owner, name: v.name, group_code: v.group_code, status: v.status, limit: 100 }));
    results.replaceChildren(table([
      ["name", (g) => h("a", { href: "#/groups/" + encodeURIComponent(g.group_id) }, g.name || g.group_id)],
      ["owner", (g) => g.owner || "—"], ["member_count", (g) => String(g.member_count ?? "—")], ["status", (g) => g.status],
      ["codes", (g) => g.codes.join(", ")],
    ], page.items, "no_groups"));
  };
  const f = form("group-search", [
    { name: "name", label: "name" }, { name: "owner", label: "owner" }, { name: "group_code", label: "group_code" },
    { name: "status", label: "status", type: "select", options: [["", t("any")], ["active", "active"], ["dismissed", "dismissed"]] },
  ], "search", load);
  f.classList.add("inline");
  main.append(f, results);
  await load({});
}
