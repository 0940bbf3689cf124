// Dead letters (admin key): each queue's DLQ size, a look at its messages, redrive.
import { t } from "./i18n.js";
import { api, errorBox, h, section, table } from "./ui.js";

export async function render(main, ctx) {
  const peek = h("div");
  const msg = h("div");
  const summary = h("div");
  const refresh = async () => {
    const s = await api("GET", "/dead-letters");
    if (!ctx.current()) return;
    summary.replaceChildren(table([
      ["queue", (q) => q.queue], ["dlq", (q) => h("code", {}, q.name)], ["dead_letters", (q) => String(q.dead_letters)],
      ["", (q) => h("span.actions", {},
        h("button.link", { type: "button", onclick: () => look(q.queue) }, t("look")),
        h("button.link", { type: "button", disabled: !q.dead_letters, onclick: () => redrive(q.queue) }, t("redrive")))],
    ], s.queues));
  };
  const look = async (queue) => {
    const p = await api("GET", `/dead-letters/${queue}?limit=10`);
    peek.replaceChildren(section("dead_letters", table([["message_id", (m) => m.message_id], ["reason", (m) => m.reason || "—"],
      ["receive_count", (m) => String(m.receive_count)], ["body", (m) => h("pre", {}, JSON.stringify(m.body, null, 1).slice(0, 600))]], p.messages)));
  };
  const redrive = async (queue) => {
    msg.replaceChildren();
    try {
      const r = await api("POST", `/dead-letters/${queue}/redrive`, {});
      msg.replaceChildren(h("p.ok", {}, `${t("moved")}: ${r.moved}`));
    } catch (e) { msg.replaceChildren(errorBox(e)); }
    await refresh();
  };
  main.append(section("dead_letter_queues", msg, summary), peek);
  await refresh();
  ctx.every(10000, () => refresh().catch(() => {}));
}
