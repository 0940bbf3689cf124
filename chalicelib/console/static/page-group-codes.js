// Group codes (群活码): list, create, edit, the QR to print, each listed group's fill against the
// threshold and the rotation status (refreshed on its own). The form covers what the API takes:
// the pool, time windows (other pools by weekday and HH:MM), auto-create (base name, numbering),
// the low-capacity alert, the group welcome (add / edit / delete).
import { t } from "./i18n.js";
import {
  api, attachment, bar, csv, errorBox, fmtTime, form, h, idList, input, labelled, query, rows, section, table,
  weekdayChecks, weekdaysText,
} from "./ui.js";

// One window: on these weekdays between start and end, list these groups instead of the pool.
function windowRow(path, w = {}) {
  const days = weekdayChecks(`${path}.weekdays`, w.weekdays);
  const start = input("start", w.start || "09:00", "time", { "data-path": `${path}.start` });
  const end = input("end", w.end && w.end !== "24:00" ? w.end : "", "time", { "data-path": `${path}.end` });
  const pool = idList(`${path}.pool`, "pool", w.pool);
  return {
    el: h("div.rule", {}, days.el, h("div.inline-fields", {},
      labelled(`${path}.start`, "f_start", start), labelled(`${path}.end`, "f_end", end, "f_end_hint")), pool.el),
    read: () => ({ weekdays: days.read().map(Number), start: start.value, end: end.value || "24:00", pool: pool.read() }),
  };
}

// Auto-create (WeCom opens a new group when the listed ones are full): base name and numbering.
function autoCreate(a) {
  const on = input("auto_create_on", !!a, "checkbox");
  const name = input("room_base_name", a?.room_base_name || "", "text", { "data-path": "auto_create.room_base_name" });
  const base = input("room_base_id", a?.room_base_id ?? "", "number", { "data-path": "auto_create.room_base_id", min: 0 });
  return {
    el: h("div", {}, labelled("auto_create_on", "f_auto_create_on", on),
      labelled("auto_create.room_base_name", "f_room_base_name", name),
      labelled("auto_create.room_base_id", "f_room_base_id", base, "f_room_base_id_hint")),
    read: () => (on.checked ? { room_base_name: name.value.trim(), ...(base.value === "" ? {} : { room_base_id: Number(base.value) }) } : null),
  };
}

// A group welcome as the API takes it (doc 92366): text and at most one attachment, under `prefix`.
const GW_KINDS = ["", "image", "link", "miniprogram", "file", "video"];
export function groupWelcome(prefix, w) {
  const at = (x) => (prefix ? `${prefix}.${x}` : x);
  const text = h("textarea", { name: "group_welcome_text", rows: 3, "data-path": at("text.content") });
  text.value = w?.text?.content || "";
  const kind = GW_KINDS.find((k) => k && w?.[k]) || "";
  // the attachment's fields are addressed as the body names them: "link.title" ("welcome.link.title")
  const one = attachment(at("attachment"), at, kind ? { type: kind, ...w[kind] } : { type: "" }, GW_KINDS);
  return {
    el: h("div", {}, labelled(at("text.content"), "f_group_welcome_text", text, "f_group_welcome_hint"), one.el),
    read: () => {
      const a = one.read();
      const out = {};
      if (text.value.trim()) out.text = { content: text.value.trim() };
      if (a) { const { type, ...payload } = a; out[type] = payload; }
      return Object.keys(out).length ? out : null;
    },
  };
}

function fields(code = {}) {
  return [
    { name: "name", label: "name", value: code.name },
    { name: "owner", label: "owner", value: code.owner || "", hint: "f_owner_hint" },
    { name: "pool", label: "pool", value: (code.pool || []).join(", "), hint: "comma_list" },
    { name: "threshold", label: "threshold", type: "number", value: code.threshold ?? 200 },
    { name: "low_seats", label: "f_low_seats", type: "number", value: code.low_seats ?? "", hint: "f_low_seats_hint" },
    { name: "windows", label: "f_windows", hint: "f_windows_hint",
      widget: rows("windows", "f_add_window", windowRow, code.windows || [], () => ({ weekdays: [6, 7] })) },
    { name: "auto_create", label: "f_auto_create", widget: autoCreate(code.auto_create) },
  ];
}

const num = (v) => (v === "" ? null : Number(v));
const body = (v) => ({ name: v.name, owner: v.owner || null, pool: csv(v.pool), threshold: num(v.threshold),
  low_seats: num(v.low_seats), windows: v.windows, auto_create: v.auto_create });

const alertText = (a) => `${fmtTime(a.at)} · ${t("f_alert_" + a.kind)} · ${t("open_seats")}: ${a.open_seats}`
  + (a.notified.length ? ` · ${t("f_notified")}: ${a.notified.join(", ")}` : "");

async function statusOf(code) {
  const s = await api("GET", `/group-codes/${encodeURIComponent(code.code_id)}/status`);
  return h("div.status", { "data-status-for": code.code_id },
    h("p", {}, `${t("status")}: ${s.status} · ${t("rotation")}: ${s.rotation} · ${t("open_seats")}: ${s.open_seats} · ${s.synced ? t("synced") : t("not_synced")}`
      + (s.auto_create ? ` · ${t("f_auto_create")}` : "")),
    h("ul.fills", {}, s.pool.map((g) => h("li", {}, h("code", {}, g.chat_id), bar(g.member_count ?? 0, s.threshold, g.chat_id)))),
    s.alerts.length ? h("ul.alerts", {}, s.alerts.map((a) => h("li", { "data-alert": a.kind }, alertText(a)))) : null);
}

function welcomeEditor(code, ctx) {
  const msg = h("div");
  const f = form("group-code-welcome", [{ name: "welcome", label: "f_group_welcome", widget: groupWelcome("", code.welcome) }],
    "save", async (v) => {
      await api("PUT", `/group-codes/${encodeURIComponent(code.code_id)}/welcome`, v.welcome || {});
      await ctx.reload();
    });
  const remove = code.welcome ? h("button.secondary", { type: "button", "data-delete-welcome": "", onclick: async () => {
    msg.replaceChildren();
    try {
      await api("DELETE", `/group-codes/${encodeURIComponent(code.code_id)}/welcome`);
      await ctx.reload();
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  } }, t("f_delete_welcome")) : null;
  return section("f_group_welcome", f, msg, remove);
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
    const f = form("group-code-edit", fields(code), "save", async (v) => {
      await api("PATCH", `/group-codes/${encodeURIComponent(code.code_id)}`, body(v));
      await ctx.reload();
    });
    f.dataset.codeId = code.code_id;
    edit.replaceChildren(section("edit_group_code", f), welcomeEditor(code, ctx));
    f.scrollIntoView?.();
  };
  main.append(
    section("group_codes_list", table([
      ["name", (c) => c.name],
      ["state", (c) => h("code", {}, c.state)],
      ["pool", (c) => String(c.pool.length)],
      ["f_windows", (c) => h("span", { "data-windows": c.code_id },
        c.windows.map((w) => `${weekdaysText(w.weekdays)} ${w.start}–${w.end}: ${w.pool.join(", ")}`).join("; ") || "—")],
      ["f_auto_create", (c) => h("span", { "data-auto-create": c.code_id },
        c.auto_create ? `${c.auto_create.room_base_name} ${c.auto_create.room_base_id ?? ""}`.trim() : "—")],
      ["threshold", (c) => String(c.threshold)],
      ["f_low_seats", (c) => String(c.low_seats ?? "—")],
      ["f_group_welcome", (c) => (c.welcome ? "✓" : "—")],
      ["qr_code", (c) => c.qr_code ? h("a", { href: c.qr_code, download: `${c.code_id}.png`, target: "_blank", rel: "noopener" }, t("download_qr")) : "—"],
      ["", (c) => h("button.link", { type: "button", "data-edit": c.code_id, onclick: () => showEdit(c) }, t("edit"))],
    ], codes.items, "no_group_codes")),
    edit, statuses,
    section("create_group_code", form("group-code-create", [...fields(), { name: "state", label: "state", hint: "state_hint" },
      { name: "welcome", label: "f_group_welcome", widget: groupWelcome("welcome", null) }], "create", async (v) => {
      const b = body(v);
      for (const k of ["owner", "low_seats", "auto_create"]) if (b[k] === null) delete b[k];
      if (v.welcome) b.welcome = v.welcome;
      if (v.state) b.state = v.state;
      await api("POST", "/group-codes", b);
      await ctx.reload();
    })));
  await refresh();
  ctx.every(10000, () => refresh().catch(() => {}));
}
