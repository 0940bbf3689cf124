// The chat toolbar page: WeCom OAuth code -> session, wx.agentConfig, the current customer or group.
// It holds no key: the session token (sessionStorage) is the only credential, bound to one staff member.
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const corpId = meta("scrm-corp");
const root = location.pathname.replace(/\/toolbar\/[^/]+$/, "");
const api = (path) => `${root}/toolbar/${encodeURIComponent(corpId)}${path}`;
const view = document.getElementById("view");
const KEY = `toolbar-session:${corpId}`;

// The page's words, one line per key in both languages (as the console's i18n.js): Chinese unless
// `?lang=en` or a WeCom client set to English (the staff mostly use WeCom in Chinese).
const WORDS = {
  add_tag: ["+ 标签", "+ tag"],
  add: ["添加", "Add"],
  remove: ["移除", "Remove"],
  added_via: ["添加方式：", "Added through: "],
  tags: ["标签", "Tags"],
  groups: ["所在客户群", "Groups"],
  broadcasts: ["收到的群发", "Broadcasts received"],
  history: ["流失与转接记录", "Churn and handover history"],
  timeline: ["客户动态", "Timeline"],
  members: ["群成员", "Members"],
  group_codes: ["群活码", "Group codes"],
  fill: ["人数：", "Members / capacity: "],
  none: ["无", "none"],
  no_channel: ["非渠道活码添加", "not through a channel code"],
  k_added: ["添加好友", "added"],
  k_half_added: ["单向添加", "half added"],
  k_lost: ["被客户删除", "deleted by the customer"],
  k_removed: ["删除客户", "removed by the staff member"],
  k_transferred: ["转接给其他成员", "handed over"],
  k_transfer_failed: ["转接失败", "handover failed"],
  k_edited: ["编辑客户", "edited"],
  k_tags_changed: ["标签变更", "tags changed"],
  k_welcome_sent: ["已发欢迎语", "welcome sent"],
  k_welcome_missed: ["未发欢迎语", "welcome missed"],
  handed_over_from: ["转接自", "handed over from"],
};
const LANG = (new URLSearchParams(location.search).get("lang") || navigator.language || "zh").toLowerCase().startsWith("en") ? 1 : 0;
document.documentElement.lang = LANG ? "en" : "zh-CN";
const t = (key) => (WORDS[key] ? WORDS[key][LANG] : key);
const kind = (k) => (WORDS["k_" + k] ? t("k_" + k) : k);  // a kind the page does not know: as the API names it

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => (k === "onclick" ? (node.onclick = v) : node.setAttribute(k, v)));
  children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c ?? ""))));
  return node;
}

function show(...nodes) { view.replaceChildren(...nodes.flat().filter(Boolean)); }  // parts: [title, body] or null

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(api(path), { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await resp.json().catch(() => ({ error: { code: `http_${resp.status}`, message: resp.statusText } }));
  if (!resp.ok) throw Object.assign(new Error(data.error.message), { code: data.error.code, status: resp.status });
  return data;
}

async function session() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (code) {
    params.delete("code"); params.delete("state");
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
    const s = await call("POST", "/session", { code });
    sessionStorage.setItem(KEY, s.token);
    return;
  }
  if (sessionStorage.getItem(KEY)) return;
  const target = new URL(`${meta("scrm-oauth")}/connect/oauth2/authorize`);
  Object.entries({ appid: corpId, redirect_uri: location.href, response_type: "code", scope: "snsapi_base",
    state: "toolbar", agentid: meta("scrm-agent") }).forEach(([k, v]) => target.searchParams.set(k, v));
  location.replace(`${target}#wechat_redirect`);
  throw Object.assign(new Error("redirecting to WeCom"), { code: "redirect" });
}

function agentConfig() {
  return call("GET", `/config?url=${encodeURIComponent(location.href)}`).then((cfg) => new Promise((resolve, reject) => {
    wx.agentConfig({ corpid: cfg.corp_id, agentid: cfg.agent_id, timestamp: cfg.timestamp, nonceStr: cfg.agent_nonce_str,
      signature: cfg.agent_signature, jsApiList: ["getContext", "getCurExternalContact", "getCurExternalChat"],
      success: resolve, fail: (res) => reject(Object.assign(new Error(res.errMsg || "agentConfig failed"), { code: "jssdk" })) });
  }));
}

const invoke = (name) => new Promise((resolve, reject) => wx.invoke(name, {}, (res) =>
  (res.err_msg === `${name}:ok` ? resolve(res) : reject(Object.assign(new Error(res.err_msg), { code: "jssdk" })))));

const when = (at, date = false) => new Date(at * 1000)[date ? "toLocaleDateString" : "toLocaleString"](LANG ? "en" : "zh-CN");

function timeline(id, entries) {
  return el("ol", { class: "timeline", id }, entries.map((e) => el("li", { "data-kind": e.kind },
    [when(e.at), kind(e.kind), e.staff_id, e.details?.handed_over_from && `${t("handed_over_from")} ${e.details.handed_over_from}`]
      .filter(Boolean).join(" · "))));
}

// A titled part of the page; `empty`: shown only when it has something (null otherwise).
const part = (key, body, empty = false) => (empty ? null : [el("h2", { id: `${key}-title` }, t(key)), body]);

async function showCustomer(customerId) {
  const c = await call("GET", `/customers/${encodeURIComponent(customerId)}`);
  const own = new Set(c.tags.map((tag) => tag.tag_id));
  const input = el("select", { id: "new-tag", "aria-label": t("add_tag") }, el("option", { value: "" }, t("add_tag")),
    c.tag_library.map((g) => el("optgroup", { label: g.group_name },
      g.tags.filter((tag) => !own.has(tag.tag_id)).map((tag) => el("option", { value: tag.tag_id }, tag.name)))));
  const change = (body) => call("POST", `/customers/${encodeURIComponent(customerId)}/tags`, body)
    .then(() => showCustomer(customerId)).catch(fail);
  show(
    el("h1", { id: "customer-name" }, c.name || c.customer_id),
    el("p", { id: "added" }, `${t("added_via")}${c.added.channel_name || c.added.channel || t("no_channel")} · ${c.added.staff_id}`,
      c.added.added_at ? ` · ${when(c.added.added_at, true)}` : ""),
    part("tags", el("div", { class: "tags", id: "tags" }, c.tags.map((tag) => el("span", { "data-tag": tag.tag_id },
      tag.name || tag.tag_id, el("button", { "aria-label": `${t("remove")} ${tag.name || tag.tag_id}`,
        onclick: () => change({ remove: [tag.tag_id] }) }, "×"))))),
    el("p", {}, input, el("button", { id: "add-tag", "aria-label": t("add"), onclick: () => input.value && change({ add: [input.value] }) }, "+")),
    part("history", timeline("history", c.history), !c.history.length),
    part("groups", el("ul", { id: "groups" }, c.groups.map((g) => el("li", { "data-group": g.group_id },
      `${g.name || g.group_id} · ${g.member_count ?? "?"} · ${g.owner || "—"}`)))),
    part("broadcasts", el("ul", { id: "broadcasts" }, c.broadcasts.map((b) =>
      el("li", { "data-broadcast": b.broadcast_id, "data-status": b.status },
        `${b.day} · ${b.name} · ${b.sender} · ${b.status}`, el("div", { class: "muted" }, (b.text || "").slice(0, 80)))))),
    part("timeline", timeline("timeline", c.timeline)),
  );
}

async function showGroup(chatId) {
  const g = await call("GET", `/groups/${encodeURIComponent(chatId)}`);
  show(el("h1", {}, g.name || g.group_id), el("p", { id: "fill" }, `${t("fill")}${g.member_count ?? "?"} / ${g.capacity}`),
    part("group_codes", el("p", { id: "codes" }, g.codes.join(", ") || t("none"))),
    part("members", el("ol", { id: "members" }, g.members.map((m) => el("li", {}, m.member_id)))));
}

function fail(err) {
  if (err.code === "redirect") return;
  if (err.code === "session_invalid") sessionStorage.removeItem(KEY);
  show(el("p", { class: "error", id: "error", "data-code": err.code || "" }, err.message));
}

async function main() {
  await session();
  await agentConfig();
  const context = await invoke("getContext");
  if (context.entry === "group_chat_tools") return showGroup((await invoke("getCurExternalChat")).chatId);
  return showCustomer((await invoke("getCurExternalContact")).userId);
}

main().catch(fail);
