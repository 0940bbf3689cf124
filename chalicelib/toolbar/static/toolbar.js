// The chat toolbar page: WeCom OAuth code -> session, wx.agentConfig, the current customer or group.
// It holds no key: the session token (sessionStorage) is the only credential, bound to one staff member.
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const corpId = meta("scrm-corp");
const root = location.pathname.replace(/\/toolbar\/[^/]+$/, "");
const api = (path) => `${root}/toolbar/${encodeURIComponent(corpId)}${path}`;
const view = document.getElementById("view");
const KEY = `toolbar-session:${corpId}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => (k === "onclick" ? (node.onclick = v) : node.setAttribute(k, v)));
  children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c ?? ""))));
  return node;
}

function show(...nodes) { view.replaceChildren(...nodes); }

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

function timeline(entries) {
  return el("ol", { class: "timeline" }, entries.map((e) =>
    el("li", {}, `${new Date(e.at * 1000).toLocaleString()} · ${e.kind}${e.staff_id ? ` · ${e.staff_id}` : ""}`)));
}

async function showCustomer(customerId) {
  const c = await call("GET", `/customers/${encodeURIComponent(customerId)}`);
  const own = new Set(c.tags.map((t) => t.tag_id));
  const input = el("select", { id: "new-tag" }, el("option", { value: "" }, "+ 标签"),
    c.tag_library.map((g) => el("optgroup", { label: g.group_name },
      g.tags.filter((t) => !own.has(t.tag_id)).map((t) => el("option", { value: t.tag_id }, t.name)))));
  const change = (body) => call("POST", `/customers/${encodeURIComponent(customerId)}/tags`, body)
    .then(() => showCustomer(customerId)).catch(fail);
  show(
    el("h1", { id: "customer-name" }, c.name || c.customer_id),
    el("p", { id: "added" }, `${c.added.channel_name || c.added.channel || "—"} · ${c.added.staff_id}`,
      c.added.added_at ? ` · ${new Date(c.added.added_at * 1000).toLocaleDateString()}` : ""),
    el("div", { class: "tags", id: "tags" }, c.tags.map((t) =>
      el("span", { "data-tag": t.tag_id }, t.name || t.tag_id, el("button", { onclick: () => change({ remove: [t.tag_id] }) }, "×")))),
    el("p", {}, input, el("button", { id: "add-tag", onclick: () => input.value && change({ add: [input.value] }) }, "+")),
    el("h2", {}, "Groups"), el("ul", { id: "groups" }, c.groups.map((g) => el("li", { "data-group": g.group_id },
      `${g.name || g.group_id} · ${g.member_count ?? "?"} · ${g.owner || "—"}`))),
    el("h2", {}, "Broadcasts"), el("ul", { id: "broadcasts" }, c.broadcasts.map((b) =>
      el("li", { "data-broadcast": b.broadcast_id, "data-status": b.status },
        `${b.day} · ${b.name} · ${b.sender} · ${b.status}`, el("div", { class: "muted" }, (b.text || "").slice(0, 80))))),
    el("h2", {}, "Timeline"), timeline(c.timeline),
  );
}

async function showGroup(chatId) {
  const g = await call("GET", `/groups/${encodeURIComponent(chatId)}`);
  show(el("h1", {}, g.name || g.group_id), el("p", { id: "fill" }, `${g.member_count ?? "?"} / ${g.capacity}`),
    el("p", {}, g.codes.join(", ") || "—"), el("ol", {}, g.members.map((m) => el("li", {}, m.member_id))));
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
