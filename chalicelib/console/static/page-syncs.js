// Sync jobs: start a full customer or group sync from WeCom and watch its progress (refreshed on its own).
import { t } from "./i18n.js";
import { api, errorBox, fmtTime, h, query, section, table } from "./ui.js";

export async function render(main, ctx) {
  const list = h("div");
  const msg = h("div");
  const refresh = async () => {
    const page = await api("GET", "/customer-syncs" + query({ limit: 20 }));
    if (!ctx.current()) return;
    list.replaceChildren(table([
      ["job_id", (j) => h("code", {}, j.job_id)], ["kind", (j) => j.kind], ["status", (j) => h("span", { "data-job-status": j.status, "data-job-kind": j.kind }, j.status)],
      ["progress", (j) => Object.entries(j.progress).map(([k, v]) => `${k} ${v}`).join(" · ")],
      ["started_at", (j) => fmtTime(j.started_at)], ["error", (j) => (j.error ? `${j.error.code}: ${j.error.message}` : "")],
      ["", (j) => j.status === "running" ? h("button.link", { type: "button", onclick: () => act("DELETE", `/customer-syncs/${j.job_id}`) }, t("cancel")) : ""],
    ], page.items, "no_syncs"));
  };
  const act = async (method, path) => {
    msg.replaceChildren();
    try { await api(method, path); } catch (e) { msg.replaceChildren(errorBox(e)); }
    await refresh();
  };
  main.append(section("syncs",
    h("div.actions", {}, h("button", { type: "button", onclick: () => act("POST", "/customer-syncs") }, t("start_customer_sync")),
      h("button", { type: "button", onclick: () => act("POST", "/group-syncs") }, t("start_group_sync"))), msg, list));
  await refresh();
  ctx.every(3000, () => refresh().catch(() => {}));
}
