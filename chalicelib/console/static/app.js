// The console's shell: sign-in (the API key stays in this tab's sessionStorage), navigation by
// the URL's hash, the language switch, sign-out.
import { PAGES } from "./pages.js";
import { getLang, setLang, t, translate } from "./i18n.js";
import { ApiError, api, form, h, session } from "./ui.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let timers = [];
let rendering = 0;

// Which kind of key, and its corp (its time zone: the console's dates are the corp's).
async function whoIs(key) {
  const me = await api("GET", "/me", undefined, key);
  session.corp = me.corp;
  return me.role;
}

function visiblePages() {
  return PAGES.filter((p) => p.role === session.role);
}

function signInPage() {
  nav.replaceChildren();
  document.getElementById("signout").hidden = true;
  delete main.dataset.page;
  document.getElementById("who").textContent = "";
  const f = form("signin", [{ name: "api_key", label: "api_key", type: "password", hint: "api_key_hint" }], "sign_in",
    async ({ api_key }) => {
      if (!api_key) throw new ApiError(400, { error: { code: "invalid", message: t("api_key_missing"), details: [{ field: "api_key", message: t("api_key_missing") }] } });
      let role;
      try {
        role = await whoIs(api_key);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) e.details = [{ field: "api_key", message: e.message }];
        throw e;
      }
      session.key = api_key;
      session.role = role;
      location.hash = "#/" + visiblePages()[0].path;
      route();
    });
  main.replaceChildren(h("section.card.signin", {}, h("h1", {}, t("sign_in_title")), h("p", {}, t("sign_in_intro")), f));
  f.inputs.api_key.focus();
}

function renderNav(current) {
  nav.replaceChildren(h("ul", {}, visiblePages().map((p) =>
    h("li", {}, h("a", { href: "#/" + p.path, "aria-current": p.path === current ? "page" : null }, t(p.title))))));
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = session.corp
    ? `${session.corp.name} · ${session.corp.time_zone}` : t(session.role === "admin" ? "role_admin" : "role_corp");
}

export async function route() {
  timers.forEach(clearInterval);
  timers = [];
  document.body.classList.remove("nav-open");
  if (!session.key) return signInPage();
  if (!session.role) {
    try {
      session.role = await whoIs(session.key);
    } catch {
      session.key = null;
      return signInPage();
    }
  }
  const [path, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = visiblePages().find((p) => p.path === path) || visiblePages()[0];
  renderNav(page.path);
  const mine = ++rendering;
  const started = performance.now();
  const mod = await import(page.module);
  if (mine !== rendering) return;
  main.replaceChildren(h("h1", {}, t(page.title)));
  document.title = `${t(page.title)} · SCRM`;
  const ctx = {
    arg: rest.map(decodeURIComponent).join("/"),
    every(ms, fn) {  // -> stop(): a page stops refreshing what can no longer change
      if (mine !== rendering) return () => {};
      const timer = setInterval(fn, ms);
      timers.push(timer);
      return () => clearInterval(timer);
    },
    current: () => mine === rendering,
    reload: route,
  };
  try {
    await mod.render(main, ctx);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { signOut(); return; }
    main.append(h("p.form-error", { role: "alert" }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e)));
  }
  main.dataset.loadedMs = Math.round(performance.now() - started);
  main.dataset.page = page.path;
}

function signOut() {
  session.key = null;
  session.role = null;
  session.corp = null;
  location.hash = "";
  route();
}

document.getElementById("signout").addEventListener("click", signOut);
document.getElementById("menu").addEventListener("click", (ev) => {
  const open = document.body.classList.toggle("nav-open");
  ev.currentTarget.setAttribute("aria-expanded", String(open));
});
const langSelect = document.getElementById("lang");
langSelect.value = getLang();
langSelect.addEventListener("change", () => { setLang(langSelect.value); translate(document); route(); });
translate(document);
window.addEventListener("hashchange", route);
route();
