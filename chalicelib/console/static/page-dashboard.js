// Dashboard: contact stats (adds / lost / removed / net / welcomes) and group stats by day, or split
// by channel code, staff member or group code; the numbers behind each chart one click away.
import { chart } from "./chart.js";
import { t } from "./i18n.js";
import { api, form, h, query, section, table, today } from "./ui.js";

const CONTACT = ["adds", "lost", "removed", "net", "welcomes_sent"];
const GROUP = ["joins", "quits", "net", "groups_opened"];

// By day, every day of the range is drawn (the API lists only days that have numbers).
function days(from, to) {
  const out = [];
  for (let d = new Date(from + "T00:00:00Z"); d <= new Date(to + "T00:00:00Z"); d = new Date(d.getTime() + 86400000)) {
    out.push(d.toISOString().slice(0, 10));
  }
  return out;
}

function statsBlock(id, title, data, fields) {
  const byKey = Object.fromEntries(data.rows.map((r) => [r.key, r]));
  const labels = data.by === "day" ? days(data.from, data.to) : data.rows.map((r) => r.key);
  const series = fields.map((f) => ({ key: f, label: t("m_" + f), values: labels.map((k) => (byKey[k] || {})[f] || 0) }));
  const numbers = table([["key", (r) => r.key], ...fields.map((f) => ["m_" + f, (r) => String(r[f] || 0)])],
    [...data.rows, { ...data.total, key: t("total") }]);
  const details = h("details.numbers", {}, h("summary", {}, t("show_numbers")), numbers);
  const totals = h("ul.totals", { "data-stats": id }, fields.map((f) =>
    h("li", {}, h("span", {}, t("m_" + f)), h("strong", { "data-metric": f }, String(data.total[f] || 0)))));
  return section(title, totals, chart({ title: t(title), labels, series, kind: data.by === "day" ? "line" : "bar" }), details);
}

export async function render(main, ctx) {
  const out = h("div.dash");
  const load = async ({ from, to, by }) => {
    const contactBy = ["day", "channel", "staff"].includes(by) ? by : "day";
    const groupBy = by === "group_code" ? "code" : "day";
    const [contacts, groups] = await Promise.all([
      api("GET", "/stats/contacts" + query({ from, to, by: contactBy })),
      api("GET", "/stats/groups" + query({ from, to, by: groupBy })),
    ]);
    if (!ctx.current()) return;
    out.replaceChildren(statsBlock("contacts", "stats_contacts", contacts, CONTACT), statsBlock("groups", "stats_groups", groups, GROUP));
  };
  const f = form("stats-range", [
    { name: "from", label: "from", type: "date", value: today(-13) },
    { name: "to", label: "to", type: "date", value: today() },
    { name: "by", label: "split_by", type: "select", options: [["day", t("by_day")], ["channel", t("by_channel")], ["staff", t("by_staff")], ["group_code", t("by_group_code")]] },
  ], "show", load);
  f.classList.add("inline");
  main.append(f, out);
  const current = () => Object.fromEntries(Object.entries(f.inputs).map(([k, i]) => [k, i.value]));
  await load(current());
  ctx.every(15000, () => load(current()).catch(() => {}));  // the chart moves on its own
}
