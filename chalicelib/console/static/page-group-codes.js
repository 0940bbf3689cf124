// Group codes (群活码): list, create, edit, the QR to print, each listed group's fill against the
// threshold and the rotation status (refreshed on its own).
import { t } from "./i18n.js";
import { api, bar, csv, form, h, query, section, table } from "./ui.js";

function fields(code = {}) {
  return [
    { name: "name", label: "name", value: code.name },
    { name: "pool", label: "pool", value: (code.pool || []).join(", "), hint: "comma_list" },
    { name: "threshold", label: "threshold", type: "number", value: code.threshold ?? 200 },
    { name: "owner", label: "owner", value: code.owner || "" },
  ];
}

const body = (v) => ({ name: v.name, pool: csv(v.pool), threshold: v.threshold === "" ? null : Number(v.threshold), owner: v.owner || null });

async function statusOf(code) {
  const s = await api("GET", `/group-codes/${encodeURIComponent(code.code_id)}/status`);
  return h("div.status", { "data-status-for": code.code_id },
    h("p", {}, `${t("status")}: ${s.status} · ${t("rotation")}: ${s.rotation} · ${t("open_seats")}: ${s.open_seats} · ${s.synced ? t("synced") : t("not_synced")}`),
    h("ul.fills", {}, s.pool.map((g) => h("li", {}, h("code", {}, g.chat_id), bar(g.member_count ?? 0, s.threshold, g.chat_id)))),
    s.alerts.length ? h("ul.alerts", {}, s.alerts.map((a) => h("li", {}, JSON.stringify(a)))) : null);
}

export async function render(main, ctx) {
  const codes = await api("GET", "/group-codes" + query({ limit: 200 }));
  const edit = h("div");
  const statuses = h("div");
  const refresh = async () => {
    const blocks = await Promise.all(codes.items.map((c) => statusOf(c).then((b) => h("section.card", {}, h("h2", {}, c.name), b))));
    if (ctx.current()) statuses.replaceChildren(...blocks);
  };
  const showEdit = (code) => {
    edit.replaceChildren(section("edit_group_code", form("group-code-edit", fields(code), "save", async (v) => {
      await api("PATCH", `/group-codes/${encodeURIComponent(code.code_id)}`, body(v));
      await ctx.reload();
    })));
  };
  main.append(
    section("group_codes_list", table([
      ["name", (c) => c.name],
      ["state", (c) => h("code", {}, c.state)],
      ["pool", (c) => String(c.pool.length)],
      ["threshold", (c) => String(c.threshold)],
      ["qr_code", (c) => c.qr_code ? h("a", { href: c.qr_code, download: `${c.code_id}.png`, target: "_blank", rel: "noopener" }, t("download_qr")) : "—"],
      ["", (c) => h("button.link", { type: "button", onclick: () => showEdit(c) }, t("edit"))],
    ], codes.items, "no_group_codes")),
    edit, statuses,
    section("create_group_code", form("group-code-create", fields(), "create", async (v) => {
      await api("POST", "/group-codes", body(v));
      await ctx.reload();
    })));
  await refresh();
  ctx.every(10000, () => refresh().catch(() => {}));
}
