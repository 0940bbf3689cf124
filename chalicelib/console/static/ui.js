// Shared helpers of the console's pages: elements, the API client, forms that show the API's
// errors at the field they name, tables, polling. No framework, no build step.
import { getLang, t } from "./i18n.js";

const KEY = "scrm.console.key";  // sessionStorage only: gone when the tab closes
export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
  role: null,  // "corp" | "admin", found at sign-in (GET /me)
  corp: null,  // the key's corp from GET /me: {corp_id, name, time_zone, agent_configured}
};

// The API is beside the console: <base>/console -> <base>/api/v1 (API Gateway adds a stage prefix).
export const API = location.pathname.replace(/\/console\/?$/, "") + "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_" + status;
    this.details = err.details;
  }
}

export async function api(method, path, body, key = session.key) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {  // not our API's JSON (a proxy's page, say): its status speaks
    data = { error: { code: "http_" + resp.status, message: `HTTP ${resp.status}: ${text.slice(0, 200)}` } };
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

// h("tag.class", {attr: value, onclick: fn}, ...children)
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

// Dates and times are the corp's (its time zone, from GET /me), as the API counts days, not the browser's.
export const zone = () => session.corp?.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
export const fmtTime = (s) => (s ? new Date(s * 1000).toLocaleString(getLang() === "zh" ? "zh-CN" : "en", { timeZone: zone() }) : "—");
const wallClock = (ms) => {  // the corp's wall clock at an instant, as if it were UTC (ms)
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: zone(), hourCycle: "h23", year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(+p.year, p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
};
export const today = (offsetDays = 0) => new Date(wallClock(Date.now()) + offsetDays * 86400000).toISOString().slice(0, 10);
// Epoch seconds of a wall time in the corp's zone: "2026-01-31" (its first second) or "2026-01-31T09:30".
export function zonedEpoch(local) {
  const [d, tm = "00:00"] = local.split("T");
  const wanted = Date.parse(`${d}T${tm.length === 5 ? tm + ":00" : tm}Z`);
  let at = wanted - (wallClock(wanted) - wanted);
  at += wanted - wallClock(at);  // once more across a DST change
  return Math.floor(at / 1000);
}
// An epoch as the value of a datetime-local input, in the corp's zone.
export const zonedInput = (s) => new Date(wallClock(s * 1000)).toISOString().slice(0, 16);

let uid = 0;
// A labelled form. fields: [{name, label (i18n key), type: text|number|select|textarea|datetime-local|checkbox,
// options: [[value, label]], required, placeholder, value}]. submit(values) -> Promise; an ApiError's
// `details` [{field, message}] is shown at the field it names ("staff_ids.0" -> staff_ids), the rest above.
export function form(id, fields, submitLabel, submit) {
  const el = h("form.form", { id, novalidate: true });
  const general = h("p.form-error", { role: "alert", "data-error": "" });
  el.append(general);
  const inputs = {};
  for (const f of fields) {
    if (f.widget) {  // a composite field ({el, read}): its own labelled inputs, addressed by their paths
      inputs[f.name] = f.widget;
      el.append(f.widget.labelled ? f.widget.el : group(f.name, f.label, f.widget, f.hint));
      continue;
    }
    const fid = `${id}-${f.name}-${++uid}`;
    let input;
    if (f.type === "select") {
      input = h("select", { id: fid, name: f.name }, (f.options || []).map(([v, l]) => h("option", { value: v }, l)));
    } else if (f.type === "textarea") {
      input = h("textarea", { id: fid, name: f.name, rows: 3, placeholder: f.placeholder });
    } else {
      input = h("input", { id: fid, name: f.name, type: f.type || "text", placeholder: f.placeholder });
    }
    if (f.value !== undefined) f.type === "checkbox" ? (input.checked = !!f.value) : (input.value = f.value);
    if (f.oninput) input.addEventListener("input", f.oninput);
    if (f.onchange) input.addEventListener("change", f.onchange);
    inputs[f.name] = input;
    const err = h("span.field-error", { id: fid + "-error", "data-error-for": f.name, role: "alert" });
    input.setAttribute("aria-describedby", err.id);
    el.append(h("div.field" + (f.type === "checkbox" ? ".check" : ""), {},
      h("label", { for: fid }, t(f.label)), input, f.hint ? h("small.hint", {}, t(f.hint)) : null, err));
  }
  const button = h("button", { type: "submit" }, t(submitLabel));
  el.append(h("div.actions", {}, button));
  const clear = () => {
    general.textContent = "";
    el.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
    el.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  };
  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = valueOf(input);
    button.disabled = true;
    try {
      await submit(values);
    } catch (e) {
      showErrors(el, e, general);
    } finally {
      button.disabled = false;
    }
  });
  el.inputs = inputs;
  return el;
}

// A form field's value: a widget's read(), a checkbox's state, an input's trimmed text.
export const valueOf = (input) => (input.read ? input.read() : input.type === "checkbox" ? input.checked : input.value.trim());

// Where the API's error about `field` is shown: the longest prefix of its path that a field is
// addressed by, or at that length the part naming a field ("target.segment_id" -> segment_id;
// "filter.tags.and.1.or.1.and" -> the node "filter.tags.and.1.or.1").
function errorTarget(formEl, field) {
  const parts = String(field || "").split(".");
  for (let n = parts.length; n > 0; n--) {
    for (const cand of [parts.slice(0, n).join("."), parts[n - 1]]) {
      const found = formEl.querySelector(`[data-error-for="${CSS.escape(cand)}"]`);
      if (found) return found;
    }
  }
  return null;
}

export function showErrors(formEl, e, general) {
  if (!(e instanceof ApiError)) { general.textContent = String(e.message || e); return; }
  const rest = [];
  // details as a list of {field, message}; or an object naming fields ({"staff_ids": [unknown ids]}):
  // the error's message and what it names are shown at each field it names
  const details = Array.isArray(e.details) ? e.details : e.details && typeof e.details === "object"
    ? Object.entries(e.details).filter(([k]) => errorTarget(formEl, k))
      .map(([k, v]) => ({ field: k, message: `${e.message}: ${[].concat(v).join(", ")}` })) : [];
  for (const d of details) {
    const target = errorTarget(formEl, d.field);
    if (target) {
      target.textContent = target.textContent ? target.textContent + "; " + d.message : d.message;
      const input = target.parentElement.querySelector("input, select, textarea");
      if (input) input.setAttribute("aria-invalid", "true");
    } else rest.push(d.field ? `${d.field}: ${d.message}` : d.message);
  }
  general.textContent = [e.message, ...rest].join(" — ");
}

export function table(columns, rows, empty = "no_rows") {
  if (!rows.length) return h("p.empty", {}, t(empty));
  return h("div.table-wrap", {}, h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", { scope: "col" }, t(label))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([label, cell]) => h("td", { "data-label": t(label) }, cell(r))))))));
}

export function bar(value, max, label, { warnFull = true } = {}) {
  const pct = max > 0 ? Math.min(100, Math.round((100 * value) / max)) : 0;
  const fill = h("span.fill" + (warnFull && pct >= 100 ? ".full" : ""));
  fill.style.width = pct + "%";  // CSSOM, not a style attribute: the CSP allows no inline styles
  return h("span.bar", { role: "progressbar", "aria-valuenow": value, "aria-valuemin": 0, "aria-valuemax": max, "aria-label": label, title: `${value} / ${max}` },
    fill, h("span.bar-text", {}, `${value} / ${max}`));
}

export function section(titleKey, ...children) {
  return h("section.card", {}, h("h2", {}, t(titleKey)), ...children);
}

export function csv(list) {
  return list.split(/[\s,，]+/).map((s) => s.trim()).filter(Boolean);
}

export function errorBox(e) {
  return h("p.form-error", { role: "alert" }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
}

// The tag library as select options: [tag_id, "group / tag"].
export const tagOptions = (library) => library.groups.flatMap((g) => g.tags.map((x) => [x.tag_id, `${g.group_name} / ${x.name}`]));

// -- deep forms: fields nested as the API's bodies nest them, each addressed by its path --------------
// A widget is {el, read()}: read() gives the API's value. Every input is labelled; every path
// ("schedule.0.start", "filter.tags.and.1") has an error span, so showErrors finds it.
let pathUid = 0;
const domId = (path) => `f-${String(path).replace(/[^\w-]/g, "-")}-${++pathUid}`;
// Tell the form a widget changed (rows added or removed, a node's operator): live counts listen.
export const changed = (el) => el.dispatchEvent(new Event("change", { bubbles: true }));

export function input(name, value, type = "text", attrs = {}) {
  const e = h("input", { name, type, ...attrs });
  if (type === "checkbox") e.checked = !!value;
  else e.value = value ?? "";
  return e;
}

export function select(name, options, value, attrs = {}) {
  const e = h("select", { name, ...attrs }, options.map(([v, l]) => h("option", { value: v }, l)));
  e.value = value ?? (options[0] ? options[0][0] : "");
  return e;
}

// One labelled input, its hint and the API's error about `path`.
export function labelled(path, labelKey, control, hintKey) {
  control.id = control.id || domId(path);
  const err = h("span.field-error", { id: control.id + "-error", "data-error-for": path, role: "alert" });
  control.setAttribute("aria-describedby", err.id);
  return h("div.field" + (control.type === "checkbox" ? ".check" : ""), {},
    h("label", { for: control.id }, t(labelKey)), control, hintKey ? h("small.hint", {}, t(hintKey)) : null, err);
}

// A widget under a legend, with the API's error about the whole of it (`path`).
export function group(path, labelKey, widget, hintKey) {
  return h("fieldset.field.group", { "data-field": path }, h("legend", {}, t(labelKey)), widget.el,
    hintKey ? h("small.hint", {}, t(hintKey)) : null,
    h("span.field-error", { "data-error-for": path, role: "alert" }));
}

// A text field of ids separated by commas: read() is the list (null when empty, if `nullable`).
export function idList(path, labelKey, ids, { nullable = false, hint = "comma_list" } = {}) {
  const control = input(path.split(".").pop(), (ids || []).join(", "), "text", { "data-path": path });
  const el = labelled(path, labelKey, control, hint);
  return { el, control, labelled: true, read: () => { const v = csv(control.value); return nullable && !v.length ? null : v; } };
}

// Checkboxes (weekdays, tags): read() is the checked values, in the options' order.
export function checks(path, labelKey, options, selected = [], { nullable = false } = {}) {
  const chosen = new Set((selected || []).map(String));
  const boxes = options.map(([v, l]) => {
    const box = input(path.split(".").pop(), chosen.has(String(v)), "checkbox", { value: v, id: domId(`${path}-${v}`) });
    box.dataset.value = v;
    return { v, box, el: h("span.check", {}, box, h("label", { for: box.id }, l)) };
  });
  const el = h("fieldset.field.checks", { "data-field": path }, h("legend", {}, t(labelKey)),
    h("div.check-list", {}, boxes.map((b) => b.el)), h("span.field-error", { "data-error-for": path, role: "alert" }));
  return { el, labelled: true, read: () => { const v = boxes.filter((b) => b.box.checked).map((b) => b.v); return nullable && !v.length ? null : v; } };
}

export const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];
export const weekdayChecks = (path, selected = WEEKDAYS) =>
  checks(path, "f_weekdays", WEEKDAYS.map((d) => [d, t("f_wd" + d)]), selected);
export const weekdaysText = (days) => (days.length === 7 ? t("f_every_day") : days.map((d) => t("f_wd" + d)).join(" "));

// Rows the operator adds and removes (schedule rules, windows, attachments, operands):
// make(rowPath, value) -> widget; row i is addressed as `${path}.${i}` and its fields below it.
export function rows(path, addKey, make, initial = [], blank = () => ({}), { min = 0 } = {}) {
  const list = h("ol.rows", { "data-rows": path });
  const el = h("div.rows-wrap", {}, list);
  let made = [];
  const render = (values) => {
    made = values.map((v, i) => make(`${path}.${i}`, v));
    list.replaceChildren(...made.map((m, i) => h("li.row", { "data-row": `${path}.${i}` }, m.el,
      h("span.field-error", { "data-error-for": `${path}.${i}`, role: "alert" }),
      values.length > min ? h("button.link", { type: "button", "data-remove": `${path}.${i}`, onclick: () => {
        const now = made.map((x) => x.read());
        now.splice(i, 1);
        render(now);
        changed(el);
      } }, t("f_remove")) : null)));
  };
  render(initial || []);
  el.append(h("button.secondary", { type: "button", "data-add": path, onclick: () => {
    render([...made.map((x) => x.read()), blank()]);
    changed(el);
  } }, t(addKey)));
  return { el, read: () => made.map((m) => m.read()) };
}

// Epoch seconds <-> a datetime-local input's value, in the corp's time zone (as the API counts days).
export const toLocalInput = (s) => (s ? zonedInput(s) : "");
export const fromLocalInput = (v) => (v ? zonedEpoch(v) : null);

// An attachment's fields by kind, as the API names them (platform/content.py; group welcomes alike).
export const ATTACHMENT_FIELDS = {
  image: [["pic_url", "f_pic_url"], ["media_id", "f_media_id"]],
  link: [["title", "f_title"], ["url", "f_url"], ["picurl", "f_picurl"], ["desc", "f_desc"]],
  miniprogram: [["title", "f_title"], ["pic_media_id", "f_pic_media_id"], ["appid", "f_appid"], ["page", "f_page"]],
  file: [["media_id", "f_file_media_id"]],  // a group welcome's only (doc 92366): by media_id
  video: [["media_id", "f_video_media_id"]],
};
// What message content (welcomes, broadcasts) takes; a group welcome takes file and video too.
export const MESSAGE_ATTACHMENTS = ["image", "link", "miniprogram"];

// One attachment: a kind select ("" among `kinds`: none) and that kind's fields. pathOf(kind) is where the API names its
// fields ("content.attachments.0.link" for message content, "link" for a group welcome).
export function attachment(path, pathOf, value = {}, kinds = MESSAGE_ATTACHMENTS) {
  const kind = select("type", kinds.map((k) => [k, t("f_att_" + (k || "none"))]), value.type ?? kinds[0], { "data-path": `${path}.type` });
  const box = h("div.attachment-fields");
  let controls = {};
  const draw = () => {
    const base = pathOf(kind.value);
    controls = {};
    box.replaceChildren(...(ATTACHMENT_FIELDS[kind.value] || []).map(([name, label]) => {
      controls[name] = input(name, value.type === kind.value ? value[name] : "", "text", { "data-path": `${base}.${name}` });
      return labelled(`${base}.${name}`, label, controls[name]);
    }));
  };
  kind.addEventListener("change", draw);
  draw();
  const el = h("div.attachment", {}, labelled(`${path}.type`, "f_att_kind", kind), box);
  return { el, read: () => {
    if (!kind.value) return null;  // "none" (a group welcome's attachment is optional)
    const out = { type: kind.value };
    for (const [name, c] of Object.entries(controls)) if (c.value.trim()) out[name] = c.value.trim();
    return out;
  } };
}

// Message content as the API takes it (text with placeholders and up to 9 attachments), at `path`.
// read() is null when both are empty (no content: nothing to send).
export function content(path, value, { textHint = "staff_name_hint", textName = "text" } = {}) {
  const text = h("textarea", { name: textName, rows: 3, "data-path": `${path}.text` });
  text.value = value?.text || "";
  const atts = rows(`${path}.attachments`, "f_add_attachment",
    (p, v) => attachment(p, (kind) => `${p}.${kind}`, v), value?.attachments || [], () => ({ type: "image" }));
  const el = h("div.content", {}, labelled(`${path}.text`, "message_text", text, textHint),
    h("p.sub", {}, t("f_attachments")), atts.el);
  return { el, text, read: () => {
    const a = atts.read();
    if (!text.value.trim() && !a.length) return null;
    return { ...(text.value.trim() ? { text: text.value.trim() } : {}), attachments: a };
  } };
}
