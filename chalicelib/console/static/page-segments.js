// Segments (人群): saved customer filters, with a live count and sample of whom a filter selects
// now; edit and delete. The filter editor (a tree of and / or / not over tags, staff, channel codes,
// dates added, statuses) is shared with the broadcasts page (a broadcast's inline filter).
import { t } from "./i18n.js";
import {
  api, changed, checks, errorBox, fmtTime, form, h, idList, input, labelled, query, rows, section, select, showErrors,
  table, tagOptions,
} from "./ui.js";

const STATUSES = ["active", "pending", "lost", "removed", "transferred"];
const OPS = ["tag", "and", "or", "not"];

// One node of a tag expression at `path` ("filter.tags", "filter.tags.and.1", …): an operator and
// its operands. The root may be "" (no tag criterion). Its select is found by data-op-for=path, a
// tag's by data-tag-for=path; the API's errors about the node or below it are shown at it.
export function tagNode(path, tagChoices, value, { root = false } = {}) {
  const opOf = (v) => (v ? OPS.find((o) => o in v) : "") || (root ? "" : "tag");
  const op = select("op", [...(root ? [["", t("any")]] : []), ...OPS.map((o) => [o, t("f_op_" + o)])], opOf(value),
    { "data-op-for": path });
  const body = h("div.tnode-body");
  let inner = { read: () => null };
  const draw = (v) => {
    const kind = op.value;
    if (kind === "tag") {
      const tag = select("tag", [["", "—"], ...tagChoices], v?.tag || "", { "data-tag-for": path });
      inner = { el: labelled(`${path}.tag`, "tag", tag), read: () => ({ tag: tag.value }) };
    } else if (kind === "and" || kind === "or") {
      const operands = rows(`${path}.${kind}`, "f_add_operand", (p, x) => tagNode(p, tagChoices, x),
        v?.[kind] || [{ tag: "" }, { tag: "" }], () => ({ tag: "" }));
      inner = { el: operands.el, read: () => ({ [kind]: operands.read() }) };
    } else if (kind === "not") {
      const child = tagNode(`${path}.not`, tagChoices, v?.not || { tag: "" });
      inner = { el: child.el, read: () => ({ not: child.read() }) };
    } else inner = { el: null, read: () => null };
    body.replaceChildren(...(inner.el ? [inner.el] : []));
  };
  op.addEventListener("change", () => { draw(null); changed(body); });
  draw(value);
  const el = h("div.tnode", { "data-node": path }, labelled(`${path}`, root ? "f_tag_expression" : "f_operator", op), body);
  return { el, read: () => inner.read() };
}

// The filter as the API takes it, at `path` ("filter", "target.customers.filter"); read() leaves
// out what is left empty.
export function filterEditor(path, library, f = {}) {
  const choices = tagOptions(library);
  const tags = tagNode(`${path}.tags`, choices, f.tags, { root: true });
  const staff = idList(`${path}.staff_ids`, "staff_ids", f.staff_ids, { nullable: true });
  const channels = idList(`${path}.channels`, "channel_state", f.channels, { nullable: true });
  const statuses = checks(`${path}.statuses`, "status", STATUSES.map((s) => [s, t("s_" + s)]), f.statuses, { nullable: true });
  const from = input("added_from", f.added_from ?? "", "date", { "data-path": `${path}.added_from` });
  const to = input("added_to", f.added_to ?? "", "date", { "data-path": `${path}.added_to` });
  const el = h("div.filter", { "data-filter": path }, h("span.field-error", { "data-error-for": path, role: "alert" }), tags.el, staff.el, channels.el, statuses.el,
    h("div.inline-fields", {}, labelled(`${path}.added_from`, "added_from", from), labelled(`${path}.added_to`, "added_to", to)));
  return {
    el, labelled: true,
    read: () => {
      const out = { tags: tags.read(), staff_ids: staff.read(), channels: channels.read(), statuses: statuses.read(),
        added_from: from.value || null, added_to: to.value || null };
      return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null));
    },
  };
}

// Count and a sample of whom a filter (or a saved segment) selects now, asked again as the form
// changes. read() -> a filter, a saved segment's id (a string) or null. The API's errors are shown at
// the fields of `scope()` (their paths under `prefix`) and in the preview's own line. An answer
// replaces every error shown in `scope()` (the newest word on those fields); with nothing to ask,
// only the errors of its own last answer go (a save's errors elsewhere stay).
export function livePreview(formEl, read, { prefix = "", scope = () => formEl, sampleSize = 5 } = {}) {
  const count = h("output.live-count", { "data-preview-count": "", "aria-live": "polite" }, "—");
  const sample = h("div.sample", { "data-preview-sample": "" });
  const general = h("p.form-error", { role: "alert", "data-preview-error": "" });
  let timer = null;
  let asked = 0;
  let shown = [];  // the error spans its last answer filled
  const clear = (spans) => {
    general.textContent = "";
    for (const span of spans) {
      span.textContent = "";
      span.parentElement.querySelector("[aria-invalid]")?.removeAttribute("aria-invalid");
    }
    shown = [];
  };
  const filled = () => [...scope().querySelectorAll(".field-error:not(:empty)")];
  const show = (text, p) => {
    count.textContent = text;
    if (p) count.dataset.count = p.count;
    else delete count.dataset.count;
    sample.replaceChildren(p && p.sample.length ? table([["customer_name", (r) => r.customer_name || r.customer_id],
      ["staff_ids", (r) => r.staff_name || r.staff_id], ["status", (r) => t("s_" + r.status)],
      ["added_at", (r) => fmtTime(r.added_at)]], p.sample) : "");
  };
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {  // debounced: one request once typing pauses
      const mine = ++asked;
      const what = read();
      if (!what || (typeof what === "object" && !Object.keys(what).length)) { clear(shown); show("—"); return; }
      try {
        const p = typeof what === "string"
          ? await api("POST", `/segments/${encodeURIComponent(what)}/preview`, { sample: sampleSize })
          : await api("POST", "/segments/preview", { filter: what, sample: sampleSize });
        if (mine !== asked) return;
        clear(filled());
        show(`${p.count} ${t("relations_match")}`, p);
      } catch (e) {
        if (mine !== asked) return;
        clear(filled());
        show("—");
        if (Array.isArray(e.details)) e.details = e.details.map((d) => ({ ...d, field: prefix + d.field }));
        showErrors(scope(), e, general);
        shown = filled();
      }
    }, 400);
  };
  formEl.addEventListener("input", run);
  formEl.addEventListener("change", run);
  return { count, sample, general, run };
}

function segmentForm(id, library, seg, submit) {
  const filter = filterEditor("filter", library, seg?.filter || {});
  const f = form(id, [{ name: "name", label: "name", value: seg?.name }, { name: "filter", label: "filter", widget: filter }],
    "save", submit);
  const live = livePreview(f, filter.read, { scope: () => filter.el });
  f.querySelector(".actions").prepend(h("span", {}, t("live_count") + ": "), live.count, " ", live.general);
  f.append(h("details.numbers", { open: true }, h("summary", {}, t("f_sample")), live.sample));
  if (seg) live.run();
  return f;
}

export async function render(main, ctx) {
  const [segments, library] = await Promise.all([api("GET", "/segments" + query({ limit: 200 })), api("GET", "/tags")]);
  const edit = h("div");
  const msg = h("div");
  const remove = async (s, button) => {
    if (button.dataset.confirm !== "yes") {  // a second click confirms (no browser dialog)
      button.dataset.confirm = "yes";
      button.textContent = t("f_confirm_delete");
      return;
    }
    msg.replaceChildren();
    try {
      await api("DELETE", `/segments/${encodeURIComponent(s.segment_id)}`);
      await ctx.reload();
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  };
  const showEdit = (s) => {
    const f = segmentForm("segment-edit", library, s, async (v) => {
      await api("PATCH", `/segments/${encodeURIComponent(s.segment_id)}`, { name: v.name, filter: v.filter });
      await ctx.reload();
    });
    f.dataset.segmentId = s.segment_id;
    edit.replaceChildren(section("f_edit_segment", f));
    f.scrollIntoView?.();
  };
  main.append(
    msg,
    section("segments_list", table([
      ["name", (s) => s.name], ["filter", (s) => h("code", { "data-filter-of": s.segment_id }, JSON.stringify(s.filter))],
      ["updated_at", (s) => fmtTime(s.updated_at)],
      ["", (s) => h("span.row-actions", {},
        h("button.link", { type: "button", "data-edit": s.segment_id, onclick: () => showEdit(s) }, t("edit")),
        h("button.link.danger", { type: "button", "data-delete": s.segment_id, onclick: (ev) => remove(s, ev.currentTarget) }, t("f_delete")))],
    ], segments.items, "no_segments")),
    edit,
    section("create_segment", segmentForm("segment-create", library, null, async (v) => {
      await api("POST", "/segments", { name: v.name, filter: v.filter });
      await ctx.reload();
    })));
}
