// Broadcasts (群发) to a segment's customers: compose with the segment's live count, schedule,
// progress (refreshed on its own while it runs), per-reason exclusions, cancel.
import { t } from "./i18n.js";
import { api, bar, errorBox, fmtTime, form, h, query, section, table } from "./ui.js";

const FINAL = new Set(["sent", "cancelled", "failed"]);
const REASONS = ["capped", "lost_relation", "no_sender", "not_friend", "over_quota"];

function progress(b) {
  return h("span.progress", { "data-broadcast-status": b.status },
    h("strong", {}, t("b_" + b.status)), " ", bar(b.sent + b.failed, b.planned, t("progress"), { warnFull: false }));
}

async function detail(main, ctx, id) {
  const box = h("div");
  const msg = h("div");
  const load = async () => {
    const [b, recipients] = await Promise.all([api("GET", `/broadcasts/${encodeURIComponent(id)}`),
      api("GET", `/broadcasts/${encodeURIComponent(id)}/recipients?limit=50`)]);
    if (!ctx.current()) return;
    box.replaceChildren(
      section("broadcast", h("h3", {}, b.name), progress(b),
        h("dl.profile", {}, ["planned", "queued", "sent", "confirmed", "delivered", "failed"].flatMap((k) =>
          [h("dt", {}, t("m_" + k)), h("dd", { "data-count": k }, String(b[k]))]),
        h("dt", {}, t("send_at")), h("dd", {}, fmtTime(b.send_at))),
        h("h3", {}, t("excluded")),
        h("dl.profile", {}, REASONS.flatMap((r) => [h("dt", {}, t("x_" + r)), h("dd", { "data-excluded": r }, String(b.excluded[r]))])),
        b.error ? h("p.form-error", {}, b.error) : null,
        FINAL.has(b.status) ? null : h("button", { type: "button", onclick: cancel }, t("cancel_broadcast"))),
      section("recipients", table([["recipient", (r) => r.recipient], ["sender", (r) => r.sender], ["status", (r) => r.status]], recipients.items)));
  };
  const cancel = async () => {
    msg.replaceChildren();
    try { await api("POST", `/broadcasts/${encodeURIComponent(id)}/cancel`); } catch (e) { msg.replaceChildren(errorBox(e)); }
    await load();
  };
  main.append(h("p", {}, h("a", { href: "#/broadcasts" }, "← " + t("nav_broadcasts"))), msg, box);
  await load();
  ctx.every(3000, () => load().catch(() => {}));
}

export async function render(main, ctx) {
  if (ctx.arg) return detail(main, ctx, ctx.arg);
  const segments = await api("GET", "/segments?limit=200");
  const listBox = h("div");
  const refreshList = async () => {  // the list only: a half-composed broadcast is never wiped
    const list = await api("GET", "/broadcasts" + query({ limit: 50 }));
    if (!ctx.current()) return;
    listBox.replaceChildren(table([
      ["name", (b) => h("a", { href: "#/broadcasts/" + encodeURIComponent(b.broadcast_id) }, b.name)],
      ["status", progress], ["send_at", (b) => fmtTime(b.send_at)], ["m_planned", (b) => String(b.planned)],
    ], list.items, "no_broadcasts"));
  };
  const count = h("output.live-count", { "data-preview-count": "", "aria-live": "polite" }, "—");
  const showCount = async () => {
    const id = f.inputs.segment_id.value;
    count.textContent = "…";
    try {
      const p = id ? await api("POST", `/segments/${encodeURIComponent(id)}/preview`, { sample: 0 }) : null;
      count.textContent = p ? `${p.count} ${t("relations_match")}` : "—";
    } catch (e) { count.textContent = e.message; }
  };
  const f = form("broadcast-create", [
    { name: "name", label: "name" },
    { name: "segment_id", label: "segment", type: "select", options: [["", "—"], ...segments.items.map((s) => [s.segment_id, s.name])], onchange: showCount },
    { name: "text", label: "message_text", type: "textarea", hint: "staff_name_hint" },
    { name: "send_at", label: "send_at", type: "datetime-local", hint: "send_at_hint" },
  ], "schedule", async (v) => {
    const body = { name: v.name, target: { kind: "customers", segment_id: v.segment_id }, content: { text: v.text } };
    if (v.send_at) body.send_at = Math.floor(new Date(v.send_at).getTime() / 1000);
    const b = await api("POST", "/broadcasts", body);
    location.hash = "#/broadcasts/" + encodeURIComponent(b.broadcast_id);
  });
  f.querySelector(".actions").prepend(h("span", {}, t("live_count") + ": "), count, " ");
  main.append(section("broadcasts_list", listBox), section("compose_broadcast", f));
  await refreshList();
  ctx.every(5000, () => refreshList().catch(() => {}));
}
