// Segments (人群): saved customer filters, with a live count of whom a filter selects now.
import { t } from "./i18n.js";
import { api, csv, fmtTime, form, h, query, section, showErrors, table, tagOptions } from "./ui.js";

const STATUSES = ["active", "pending", "lost", "removed", "transferred"];

// The form's values -> the API's filter (fields left empty are left out).
export function filterOf(v) {
  const f = {};
  if (v.tag) f.tags = { tag: v.tag };
  if (v.staff_ids) f.staff_ids = csv(v.staff_ids);
  if (v.channels) f.channels = csv(v.channels);
  if (v.status) f.statuses = [v.status];
  if (v.added_from) f.added_from = v.added_from;
  if (v.added_to) f.added_to = v.added_to;
  return f;
}

export async function render(main, ctx) {
  const [segments, library] = await Promise.all([api("GET", "/segments" + query({ limit: 200 })), api("GET", "/tags")]);
  const tagChoices = [["", t("any")], ...tagOptions(library)];
  const count = h("output.live-count", { "data-preview-count": "", "aria-live": "polite" }, "—");
  let timer = null;
  let asked = 0;
  const preview = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {  // debounced: one request once typing pauses
      const mine = ++asked;
      const values = Object.fromEntries(Object.entries(f.inputs).map(([k, i]) => [k, i.value.trim()]));
      const general = f.querySelector(".form-error");
      f.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
      general.textContent = "";
      const filter = filterOf(values);
      if (!Object.keys(filter).length) { count.textContent = "—"; return; }
      try {
        const p = await api("POST", "/segments/preview", { filter, sample: 0 });
        if (mine === asked) count.textContent = `${p.count} ${t("relations_match")}`;
      } catch (e) {
        if (mine === asked) { count.textContent = "—"; showErrors(f, e, general); }
      }
    }, 400);
  };
  const f = form("segment-create", [
    { name: "name", label: "name" },
    { name: "tag", label: "tag", type: "select", options: tagChoices, onchange: preview },
    { name: "staff_ids", label: "staff_ids", hint: "comma_list", oninput: preview },
    { name: "channels", label: "channel_state", hint: "comma_list", oninput: preview },
    { name: "status", label: "status", type: "select", options: [["", t("any")], ...STATUSES.map((s) => [s, t("s_" + s)])], onchange: preview },
    { name: "added_from", label: "added_from", type: "date", onchange: preview },
    { name: "added_to", label: "added_to", type: "date", onchange: preview },
  ], "save", async (v) => {
    await api("POST", "/segments", { name: v.name, filter: filterOf(v) });
    await ctx.reload();
  });
  f.querySelector(".actions").prepend(h("span", {}, t("live_count") + ": "), count, " ");
  main.append(
    section("segments_list", table([
      ["name", (s) => s.name], ["filter", (s) => h("code", {}, JSON.stringify(s.filter))], ["updated_at", (s) => fmtTime(s.updated_at)],
    ], segments.items, "no_segments")),
    section("create_segment", f));
}
