// Channel codes (渠道活码): list with today's adds against the cap, create, edit, the QR to print.
// The form covers what the API takes: staff, schedule rules (which staff on which weekdays and
// hours), backup staff, daily cap, tags to apply, the welcome message (text and attachments),
// validity window; each nested field shows the API's error about it.
import { t } from "./i18n.js";
import {
  api, bar, checks, content, csv, fmtTime, form, fromLocalInput, h, idList, input, labelled, query, rows, section,
  table, tagOptions, toLocalInput, today, weekdayChecks, weekdaysText,
} from "./ui.js";

// One schedule rule: these staff on these weekdays between start and end (corp time).
function rule(path, r = {}) {
  const staff = idList(`${path}.staff_ids`, "staff_ids", r.staff_ids);
  const days = weekdayChecks(`${path}.weekdays`, r.weekdays);
  const start = input("start", r.start || "09:00", "time", { "data-path": `${path}.start` });
  const end = input("end", r.end && r.end !== "24:00" ? r.end : "", "time", { "data-path": `${path}.end` });
  return {
    el: h("div.rule", {}, staff.el, days.el, h("div.inline-fields", {},
      labelled(`${path}.start`, "f_start", start), labelled(`${path}.end`, "f_end", end, "f_end_hint"))),
    read: () => ({ staff_ids: staff.read(), weekdays: days.read().map(Number), start: start.value, end: end.value || "24:00" }),
  };
}

export const scheduleText = (schedule) =>
  schedule.map((r) => `${weekdaysText(r.weekdays)} ${r.start}–${r.end}: ${r.staff_ids.join(", ")}`).join("; ");

function codeFields(code, library) {
  return [
    { name: "name", label: "name", value: code.name },
    { name: "staff_ids", label: "staff_ids", value: (code.staff_ids || []).join(", "), hint: "comma_list" },
    { name: "backup_staff_ids", label: "f_backup_staff", value: (code.backup_staff_ids || []).join(", "), hint: "f_backup_hint" },
    { name: "schedule", label: "f_schedule", hint: "f_schedule_hint",
      widget: rows("schedule", "f_add_rule", rule, code.schedule || [], () => ({ weekdays: [1, 2, 3, 4, 5] })) },
    { name: "channel", label: "channel_label", value: code.channel || "" },
    { name: "store", label: "store", value: code.store || "" },
    { name: "daily_cap", label: "daily_cap", type: "number", value: code.daily_cap ?? "" },
    { name: "skip_verify", label: "f_skip_verify", type: "checkbox", value: code.skip_verify ?? true },
    { name: "tag_ids", label: "f_tags_to_apply", widget: checks("tag_ids", "f_tags_to_apply", tagOptions(library), code.tag_ids) },
    { name: "welcome", label: "welcome_text", widget: content("welcome", code.welcome, { textHint: "f_welcome_hint", textName: "welcome" }) },
    { name: "valid_from", label: "f_valid_from", type: "datetime-local", value: toLocalInput(code.valid_from) },
    { name: "valid_until", label: "f_valid_until", type: "datetime-local", value: toLocalInput(code.valid_until) },
  ];
}

// The form's values -> the API's body: every field, so an edit can clear what is left empty.
function body(v) {
  return {
    name: v.name, staff_ids: csv(v.staff_ids), backup_staff_ids: csv(v.backup_staff_ids), schedule: v.schedule,
    channel: v.channel || null, store: v.store || null, daily_cap: v.daily_cap === "" ? null : Number(v.daily_cap),
    skip_verify: v.skip_verify, tag_ids: v.tag_ids, welcome: v.welcome,
    valid_from: fromLocalInput(v.valid_from), valid_until: fromLocalInput(v.valid_until),
  };
}

export async function render(main, ctx) {
  const day = today();
  const [codes, stats, library] = await Promise.all([
    api("GET", "/channel-codes" + query({ limit: 200 })),
    api("GET", "/stats/contacts" + query({ from: day, to: day, by: "channel" })),
    api("GET", "/tags"),
  ]);
  const adds = Object.fromEntries(stats.rows.map((r) => [r.key, r.adds]));
  const tagNames = Object.fromEntries(tagOptions(library));
  const list = h("div");
  const edit = h("div");
  const showEdit = (code) => {
    const f = form("channel-code-edit", codeFields(code, library), "save", async (v) => {
      const b = body(v);
      if (code.valid_until === b.valid_until) delete b.valid_until;  // unchanged: not checked against the clock again
      await api("PATCH", `/channel-codes/${encodeURIComponent(code.state)}`, b);
      await ctx.reload();
    });
    f.dataset.state = code.state;
    edit.replaceChildren(section("edit_channel_code", h("p", {}, h("code", {}, code.state)), f));
    f.scrollIntoView?.();
  };
  list.append(table([
    ["name", (c) => c.name],
    ["state", (c) => h("code", {}, c.state)],
    ["staff_ids", (c) => c.staff_ids.join(", ")],
    ["f_backup_staff", (c) => c.backup_staff_ids.join(", ") || "—"],
    ["f_schedule", (c) => h("span", { "data-schedule": c.state }, c.schedule.length ? scheduleText(c.schedule) : "—")],
    ["f_tags_to_apply", (c) => h("span", { "data-tags": c.state }, c.tag_ids.map((id) => tagNames[id] || id).join(", ") || "—")],
    ["today_vs_cap", (c) => c.daily_cap ? bar(adds[c.state] || 0, c.daily_cap * c.staff_ids.length, t("today_vs_cap"))
      : h("span", { "data-today": c.state }, String(adds[c.state] || 0))],
    ["qr_code", (c) => c.qr_code ? h("a", { href: c.qr_code, download: `${c.state}.png`, target: "_blank", rel: "noopener" }, t("download_qr")) : "—"],
    ["updated_at", (c) => fmtTime(c.updated_at)],
    ["", (c) => h("button.link", { type: "button", "data-edit": c.state, onclick: () => showEdit(c) }, t("edit"))],
  ], codes.items, "no_channel_codes"));
  const create = form("channel-code-create", [...codeFields({}, library), { name: "state", label: "state", hint: "state_hint" }],
    "create", async (v) => {
      const b = body(v);
      if (v.state) b.state = v.state;
      for (const k of ["channel", "store", "daily_cap", "welcome", "valid_from", "valid_until"]) if (b[k] === null) delete b[k];
      await api("POST", "/channel-codes", b);
      await ctx.reload();
    });
  main.append(section("channel_codes_list", list), edit, section("create_channel_code", create));
}
