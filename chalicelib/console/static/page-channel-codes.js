// Channel codes (渠道活码): list with today's adds against the cap, create, edit, the QR to print.
import { t } from "./i18n.js";
import { api, bar, csv, fmtTime, form, h, query, section, table, today } from "./ui.js";

function codeFields(code = {}) {
  return [
    { name: "name", label: "name", value: code.name, required: true },
    { name: "staff_ids", label: "staff_ids", value: (code.staff_ids || []).join(", "), hint: "comma_list" },
    { name: "channel", label: "channel_label", value: code.channel || "" },
    { name: "store", label: "store", value: code.store || "" },
    { name: "daily_cap", label: "daily_cap", type: "number", value: code.daily_cap ?? "" },
    { name: "welcome", label: "welcome_text", type: "textarea", value: code.welcome?.text || "" },
  ];
}

function body(v, creating) {
  const b = { name: v.name, staff_ids: csv(v.staff_ids), channel: v.channel || null, store: v.store || null,
    daily_cap: v.daily_cap === "" ? null : Number(v.daily_cap) };
  if (v.welcome) b.welcome = { text: v.welcome };
  if (creating && v.state) b.state = v.state;
  return b;
}

export async function render(main, ctx) {
  const day = today();
  const [codes, stats] = await Promise.all([
    api("GET", "/channel-codes" + query({ limit: 200 })),
    api("GET", "/stats/contacts" + query({ from: day, to: day, by: "channel" })),
  ]);
  const adds = Object.fromEntries(stats.rows.map((r) => [r.key, r.adds]));
  const list = h("div");
  const edit = h("div");
  const showEdit = (code) => {
    const f = form("channel-code-edit", codeFields(code), "save", async (v) => {
      await api("PATCH", `/channel-codes/${encodeURIComponent(code.state)}`, body(v, false));
      await ctx.reload();
    });
    edit.replaceChildren(section("edit_channel_code", h("p", {}, code.state), f));
    f.scrollIntoView?.();
  };
  list.append(table([
    ["name", (c) => c.name],
    ["state", (c) => h("code", {}, c.state)],
    ["staff_ids", (c) => c.staff_ids.join(", ")],
    ["today_vs_cap", (c) => c.daily_cap ? bar(adds[c.state] || 0, c.daily_cap * c.staff_ids.length, t("today_vs_cap"))
      : h("span", { "data-today": c.state }, String(adds[c.state] || 0))],
    ["qr_code", (c) => c.qr_code ? h("a", { href: c.qr_code, download: `${c.state}.png`, target: "_blank", rel: "noopener" }, t("download_qr")) : "—"],
    ["updated_at", (c) => fmtTime(c.updated_at)],
    ["", (c) => h("button.link", { type: "button", onclick: () => showEdit(c) }, t("edit"))],
  ], codes.items, "no_channel_codes"));
  const create = form("channel-code-create", [...codeFields(), { name: "state", label: "state", hint: "state_hint" }], "create",
    async (v) => {
      await api("POST", "/channel-codes", body(v, true));
      await ctx.reload();
    });
  main.append(section("channel_codes_list", list), edit, section("create_channel_code", create));
}
