// SOP calendars (SOP / 群日历): rules of what to send to whom when (a weekday, a date, or N days after a
// customer was added / a member joined a group / a group was created); pause and resume; each
// calendar's occurrences with their status at #/sop/<calendar_id>.
import { t } from "./i18n.js";
import { ApiError, api, csv, errorBox, fmtTime, form, h, query, section, table } from "./ui.js";

const WHEN = ["weekly", "date", "after:customer_added", "after:member_joined", "after:group_created"];
const WHOM = { segment: "customers", channel: "customers", owners: "groups", group_code: "groups", chats: "groups" };
// which of a rule's inputs each choice uses (the others are hidden)
const WHEN_FIELDS = { weekly: ["weekday"], date: ["date"], after: ["days"] };
const WHOM_FIELDS = { segment: "segment_id", channel: "channel_code", owners: "owner_ids", group_code: "group_code_id", chats: "chat_ids" };
const BLANK = { when: { kind: "weekly", weekday: 1, time: "09:00" }, whom: { kind: "customers" }, content: { text: "" } };

const whenChoice = (w) => (w.kind === "after" ? `after:${w.event}` : w.kind);
function whomChoice(w) {
  if (w.kind === "customers") return w.channel_code ? "channel" : "segment";
  return w.group_code_id ? "group_code" : w.chat_ids ? "chats" : "owners";
}

// One rule's fields, named after the API's paths (rules.N.when.time ...) so that its errors land there.
function ruleFields(i, rule, segments) {
  const p = `rules.${i}`;
  const w = rule.when, who = rule.whom;
  return [
    { name: `${p}.name`, label: "sop_rule_name", value: rule.name || "" },
    { name: `${p}.when`, label: "sop_when", type: "select", value: whenChoice(w), options: WHEN.map((k) => [k, t("sop_when_" + k.replace(":", "_"))]) },
    { name: `${p}.when.weekday`, label: "sop_weekday", type: "select", value: String(w.weekday || 1),
      options: [1, 2, 3, 4, 5, 6, 7].map((d) => [String(d), t("weekday_" + d)]) },
    { name: `${p}.when.date`, label: "day", type: "date", value: w.date || "" },
    { name: `${p}.when.days`, label: "sop_days", type: "number", value: w.days ?? 1 },
    { name: `${p}.when.time`, label: "sop_time", type: "time", value: w.time || "09:00", hint: "sop_time_hint" },
    { name: `${p}.whom`, label: "sop_whom", type: "select", value: whomChoice(who), options: Object.keys(WHOM).map((k) => [k, t("sop_whom_" + k)]) },
    { name: `${p}.whom.segment_id`, label: "segment", type: "select", value: who.segment_id || "",
      options: [["", "—"], ...segments.map((s) => [s.segment_id, s.name])] },
    { name: `${p}.whom.channel_code`, label: "channel_state", value: who.channel_code || "" },
    { name: `${p}.whom.owner_ids`, label: "sop_owner_ids", value: (who.owner_ids || []).join(", "), hint: "comma_list" },
    { name: `${p}.whom.group_code_id`, label: "group_code", value: who.group_code_id || "" },
    { name: `${p}.whom.chat_ids`, label: "pool", value: (who.chat_ids || []).join(", "), hint: "comma_list" },
    { name: `${p}.content`, label: "message_text", type: "textarea", value: rule.content?.text || "", hint: "staff_name_hint" },
  ];
}

// The form's values of rule i as the API's Rule; `kept` holds what the form does not edit (attachments).
function ruleBody(v, i, kept) {
  const p = `rules.${i}`;
  const num = (x) => (x === "" ? null : Number(x));
  const [kind, event] = v[`${p}.when`].split(":");
  const when = kind === "weekly" ? { kind, weekday: num(v[`${p}.when.weekday`]), time: v[`${p}.when.time`] }
    : kind === "date" ? { kind, date: v[`${p}.when.date`], time: v[`${p}.when.time`] }
      : { kind, event, days: num(v[`${p}.when.days`]), time: v[`${p}.when.time`] };
  const choice = v[`${p}.whom`];
  const raw = v[`${p}.whom.${WHOM_FIELDS[choice]}`];
  const whom = { kind: WHOM[choice], [WHOM_FIELDS[choice]]: ["owners", "chats"].includes(choice) ? csv(raw) : raw };
  const content = { ...(kept.attachments?.length ? { attachments: kept.attachments } : {}), ...(v[`${p}.content`] ? { text: v[`${p}.content`] } : {}) };
  return { ...(v[`${p}.name`] ? { name: v[`${p}.name`] } : {}), when, whom, content };
}

// Pydantic names a union's member in the error's path (rules.0.when.weekly.time): drop it, as the fields are named.
function atFields(e) {
  if (e instanceof ApiError && Array.isArray(e.details)) {
    e.details = e.details.map((d) => ({ ...d, field: String(d.field || "").replace(/^(rules\.\d+\.(?:when|whom))\.(weekly|date|after|customers|groups)\b/, "$1") }));
  }
  return e;
}

// The calendar's form: its name, grace and rules (added and removed in place, values kept).
// send(body) gets `rules` only when they differ from the calendar's: rules left as they were are not
// checked again (a date rule that was sent is in the past, and would be refused).
function calendarForm(id, cal, segments, submitLabel, send) {
  const box = h("div");
  let initial = null;  // the rules as the form first read them
  const build = (rules, values = {}) => {
    const kept = rules.map((r) => ({ attachments: r.content?.attachments || [] }));
    const fields = [
      { name: "name", label: "name", value: cal.name || "" },
      { name: "grace_minutes", label: "sop_grace", type: "number", value: cal.grace_minutes ?? 120, hint: "sop_grace_hint" },
      ...rules.flatMap((r, i) => ruleFields(i, r, segments)),
    ].map((f) => (f.name in values ? { ...f, value: values[f.name] } : f));
    const rulesOf = (v) => rules.map((_, i) => ruleBody(v, i, kept[i]));
    const f = form(id, fields, submitLabel, async (v) => {
      const body = { name: v.name, grace_minutes: v.grace_minutes === "" ? null : Number(v.grace_minutes), rules: rulesOf(v) };
      if (JSON.stringify(body.rules) === initial) delete body.rules;
      try { await send(body); } catch (e) { throw atFields(e); }
    });
    const current = () => Object.fromEntries(Object.entries(f.inputs).map(([k, x]) => [k, x.value]));
    const show = (name, on) => { f.inputs[name].closest(".field").hidden = !on; };
    rules.forEach((r, i) => {
      const p = `rules.${i}`;
      const sync = () => {
        const kind = f.inputs[`${p}.when`].value.split(":")[0];
        for (const k of ["weekday", "date", "days"]) show(`${p}.when.${k}`, WHEN_FIELDS[kind].includes(k));
        const whom = f.inputs[`${p}.whom`].value;
        for (const [k, name] of Object.entries(WHOM_FIELDS)) show(`${p}.whom.${name}`, k === whom);
      };
      f.inputs[`${p}.when`].addEventListener("change", sync);
      f.inputs[`${p}.whom`].addEventListener("change", sync);
      sync();
      const head = h("h3.rule-head", { "data-rule": i }, `${t("sop_rule")} ${i + 1}`,
        kept[i].attachments.length ? h("small.hint", {}, ` (+${kept[i].attachments.length} ${t("sop_attachments_kept")})`) : null,
        rules.length > 1 ? h("button.link", { type: "button", onclick: () => {
          const v = current();
          const shifted = {};  // the later rules' values move up one
          for (const [k, x] of Object.entries(v)) {
            const m = k.match(/^rules\.(\d+)\.(.*)$/);
            if (!m) shifted[k] = x;
            else if (+m[1] < i) shifted[k] = x;
            else if (+m[1] > i) shifted[`rules.${m[1] - 1}.${m[2]}`] = x;
          }
          build(rules.filter((_, j) => j !== i), shifted);
        } }, t("sop_remove_rule")) : null);
      f.inputs[`${p}.name`].closest(".field").before(head);
    });
    f.querySelector(".actions").prepend(h("button.secondary", { type: "button", onclick: () => build([...rules, BLANK], current()) }, t("sop_add_rule")));
    box.replaceChildren(f);
    if (initial === null && cal.rules?.length) initial = JSON.stringify(rulesOf(current()));
  };
  build(cal.rules?.length ? cal.rules : [BLANK]);
  return box;
}

const nextDue = (c) => Math.min(...c.rules.map((r) => r.next_due ?? Infinity));

function pauseButton(c, after, msg) {
  const action = c.status === "paused" ? "resume" : "pause";
  return h("button.link", { type: "button", "data-action": action, onclick: async () => {
    msg.replaceChildren();
    try { await api("POST", `/sop-calendars/${encodeURIComponent(c.calendar_id)}/${action}`); } catch (e) { msg.replaceChildren(errorBox(e)); }
    await after();
  } }, t("sop_" + action));
}

async function detail(main, ctx, id) {
  const path = `/sop-calendars/${encodeURIComponent(id)}`;
  const [cal, segments] = await Promise.all([api("GET", path), api("GET", "/segments?limit=200")]);
  const ruleName = Object.fromEntries(cal.rules.map((r, i) => [r.rule_id, r.name || `${t("sop_rule")} ${i + 1}`]));
  const head = h("div");
  const msg = h("div");
  const occ = h("div");
  const showHead = (c) => head.replaceChildren(h("dl.profile", {},
    h("dt", {}, t("name")), h("dd", {}, c.name),
    h("dt", {}, t("status")), h("dd", { "data-calendar-status": c.status }, t("sop_s_" + c.status), " ", pauseButton(c, reload, msg))));
  const occurrenceRows = (list) => list.map((o) => ({ ...o, rule: ruleName[o.rule_id] || o.rule_id }));
  const loadOccurrences = async () => {
    const page = await api("GET", `${path}/occurrences?limit=50`);
    if (!ctx.current()) return;
    const cols = [["sop_due", (o) => o.due_local.slice(0, 16).replace("T", " ")], ["sop_rule", (o) => o.rule],
      ["status", (o) => h("span", { "data-occurrence-status": o.status }, t("sop_o_" + o.status))],
      ["kind", (o) => (o.kind ? t("sop_k_" + o.kind) : "—")],
      ["broadcast", (o) => (o.broadcast_id ? h("a", { href: "#/broadcasts/" + encodeURIComponent(o.broadcast_id) }, o.broadcast_id) : "—")],
      ["reason", (o) => o.reason || (o.late_seconds ? `${t("sop_late")} ${o.late_seconds}s` : "—")]];
    occ.replaceChildren(h("h3", {}, t("sop_upcoming")), table(cols, occurrenceRows(page.upcoming), "sop_no_upcoming"),
      h("h3", {}, t("sop_past")), table(cols, occurrenceRows(page.items), "sop_no_occurrences"));
  };
  const reload = async () => {
    const c = await api("GET", path);
    if (!ctx.current()) return;
    showHead(c);
    await loadOccurrences();
  };
  showHead(cal);
  main.append(h("p", {}, h("a", { href: "#/sop" }, "← " + t("nav_sop"))), msg,
    section("sop_calendar", head), section("sop_occurrences", occ),
    section("sop_edit", calendarForm("sop-edit", cal, segments.items, "save", async (body) => {
      await api("PATCH", path, body);
      await ctx.reload();
    })));
  await loadOccurrences();
  ctx.every(10000, () => loadOccurrences().catch(() => {}));
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx, ctx.arg);
  const listBox = h("div");
  const msg = h("div");
  const refresh = async () => {
    const list = await api("GET", "/sop-calendars" + query({ limit: 50 }));
    if (!ctx.current()) return;
    listBox.replaceChildren(table([
      ["name", (c) => h("a", { href: "#/sop/" + encodeURIComponent(c.calendar_id) }, c.name)],
      ["status", (c) => h("span", { "data-calendar-status": c.status }, t("sop_s_" + c.status))],
      ["sop_rules", (c) => String(c.rules.length)],
      ["sop_next", (c) => (Number.isFinite(nextDue(c)) ? fmtTime(nextDue(c)) : "—")],
      ["", (c) => pauseButton(c, refresh, msg)],
    ], list.items, "sop_none"));
  };
  const [segments] = await Promise.all([api("GET", "/segments?limit=200"), refresh()]);
  main.append(section("sop_list", msg, listBox),
    section("sop_create", calendarForm("sop-create", {}, segments.items, "create", async (body) => {
      const c = await api("POST", "/sop-calendars", body);
      location.hash = "#/sop/" + encodeURIComponent(c.calendar_id);
    })));
}
