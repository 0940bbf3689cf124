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
    for (const [name, input] of Object.entries(inputs)) values[name] = input.type === "checkbox" ? input.checked : input.value.trim();
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

export function showErrors(formEl, e, general) {
  if (!(e instanceof ApiError)) { general.textContent = String(e.message || e); return; }
  const rest = [];
  for (const d of Array.isArray(e.details) ? e.details : []) {
    const parts = String(d.field || "").split(".");
    let target = null;
    for (let n = parts.length; n > 0 && !target; n--) {  // the longest named prefix: "target.segment_id" -> segment_id
      for (const cand of [parts.slice(0, n).join("."), parts[n - 1]]) {
        target = target || formEl.querySelector(`[data-error-for="${CSS.escape(cand)}"]`);
      }
    }
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
