// The console's pages: one line each (hash route, title, module, who may open it). A page module
// exports `render(main, ctx)`; ctx.every(ms, fn) refreshes while the page is shown (until the stop() it returns is called).
export const PAGES = [
  { path: "dashboard", title: "nav_dashboard", module: "./page-dashboard.js", role: "corp" },
  { path: "channel-codes", title: "nav_channel_codes", module: "./page-channel-codes.js", role: "corp" },
  { path: "group-codes", title: "nav_group_codes", module: "./page-group-codes.js", role: "corp" },
  { path: "customers", title: "nav_customers", module: "./page-customers.js", role: "corp" },
  { path: "groups", title: "nav_groups", module: "./page-groups.js", role: "corp" },
  { path: "segments", title: "nav_segments", module: "./page-segments.js", role: "corp" },
  { path: "broadcasts", title: "nav_broadcasts", module: "./page-broadcasts.js", role: "corp" },
  { path: "sop", title: "nav_sop", module: "./page-sop.js", role: "corp" },
  { path: "handovers", title: "nav_handovers", module: "./page-handovers.js", role: "corp" },
  { path: "churn", title: "nav_churn", module: "./page-churn.js", role: "corp" },
  { path: "syncs", title: "nav_syncs", module: "./page-syncs.js", role: "corp" },
  { path: "dead-letters", title: "nav_dead_letters", module: "./page-dead-letters.js", role: "admin" },
];
