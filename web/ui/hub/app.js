// The hub dashboard: login, hash navigation, the live event stream and the
// state the views share. Each view lives in its own module and gets a ctx
// (below) with the API, the shared state and the event bus.

import { api, setUnauthorized, errorText } from "/ui/api.js";
import { byTestId, h, throttle, toast } from "/ui/dom.js";
import overview from "/ui/overview.js";
import edges from "/ui/edges.js";
import containers from "/ui/containers.js";
import documents from "/ui/documents.js";
import conflicts from "/ui/conflicts.js";
import resolvers from "/ui/resolvers.js";
import feed from "/ui/feed.js";

const EXPIRED = "Your session has expired or the token was changed: log in again.";
const VIEWS = { overview, edges, containers, documents, conflicts, resolvers, feed };
const TITLES = {
  overview: "Overview", edges: "Edges", containers: "Containers", documents: "Documents",
  conflicts: "Conflicts", resolvers: "Resolvers", feed: "Change feed",
};

/** A tiny event bus: on(name, fn) / emit(name, data). */
const listeners = new Map();
const bus = {
  on(name, fn) {
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name).add(fn);
  },
  emit(name, data) {
    for (const fn of listeners.get(name) || []) {
      try {
        fn(data);
      } catch (err) {
        console.error(`${name} handler`, err);
      }
    }
  },
};

const state = {
  authed: false,
  view: "",
  status: null, // the newest "status" event
  containers: [], // GET /api/v1/containers
  resolvers: [], // GET /api/v1/resolvers
  demo: null, // GET /demo/edges when this is a demo hub: {edges: [...]}
};

/** navigate("documents", {c: "carts"}) changes the hash (a linkable view). */
function navigate(view, params = {}, opts = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const hash = `#/${view}${q.toString() ? "?" + q : ""}`;
  if (location.hash === hash) {
    route();
  } else if (opts.replace) {
    history.replaceState(null, "", hash);
    route();
  } else {
    location.hash = hash; // route() runs on hashchange
  }
}

function parseHash() {
  const m = /^#\/([a-z]+)(?:\?(.*))?$/.exec(location.hash);
  if (!m || !VIEWS[m[1]]) return { view: "overview", params: new URLSearchParams() };
  return { view: m[1], params: new URLSearchParams(m[2] || "") };
}

let focusHeading = false;
function route() {
  if (!state.authed) return;
  const { view, params } = parseHash();
  const changed = state.view !== view;
  state.view = view;
  for (const name of Object.keys(VIEWS)) {
    document.getElementById(`view-${name}`).hidden = name !== view;
    const link = byTestId(`nav-${name}`);
    if (name === view) {
      link.setAttribute("aria-current", "page");
      if (changed) link.scrollIntoView({ block: "nearest", inline: "nearest" }); // the phone's scrolling nav
    }
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[view]} — edgesync hub`;
  if (changed && focusHeading) document.getElementById(`h-${view}`).focus();
  focusHeading = false;
  VIEWS[view].show(params, changed);
}

// --- shared data -----------------------------------------------------------

async function loadContainers() {
  try {
    const r = await api("/api/v1/containers");
    state.containers = r.containers || [];
    const dl = document.getElementById("container-names");
    dl.replaceChildren(...state.containers.map((c) => h("option", { value: c.name })));
    bus.emit("containers", state.containers);
  } catch (err) {
    if (!err.handled) toast(`Containers: ${errorText(err)}`, "error");
  }
  return state.containers;
}

async function loadResolvers() {
  try {
    const r = await api("/api/v1/resolvers");
    state.resolvers = r.resolvers || [];
    bus.emit("resolvers", state.resolvers);
  } catch (err) {
    if (!err.handled) toast(`Resolvers: ${errorText(err)}`, "error");
  }
  return state.resolvers;
}

/** The demo routes answer only on `cloudhub demo`; elsewhere demo is null. */
async function loadDemo() {
  try {
    const res = await fetch("/demo/edges", { credentials: "same-origin", headers: { Accept: "application/json" } });
    state.demo = res.status === 200 ? await res.json() : null;
  } catch {
    state.demo = null;
  }
  bus.emit("demo", state.demo);
  return state.demo;
}

const refreshContainers = throttle(loadContainers, 500);

const ctx = {
  api, bus, state, navigate, loadContainers, loadResolvers, loadDemo,
  refreshContainers,
  /** "edge-2" for an edge's node id, "hub" for the hub's, else the id. */
  originName(origin) {
    const s = state.status;
    if (!s || !origin) return origin;
    if (origin === s.hubId) return "hub";
    const e = (s.edges || []).find((x) => x.nodeId === origin);
    return e ? e.name : origin;
  },
  /** The container definition by name (or undefined). */
  container: (name) => state.containers.find((c) => c.name === name),
};

// --- live events -----------------------------------------------------------

let es = null;
let retryTimer = 0;
let retryDelay = 1000;

function setLive(s) {
  const el = document.getElementById("live");
  el.dataset.state = s;
  el.textContent = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…" }[s] || s;
}

function connectEvents() {
  closeEvents();
  setLive("connecting");
  es = new EventSource("/api/v1/events");
  es.addEventListener("open", () => {
    setLive("live");
    retryDelay = 1000;
    bus.emit("connected");
  });
  es.addEventListener("error", () => {
    setLive("reconnecting");
    if (es && es.readyState === EventSource.CLOSED) {
      // The browser gave up (an answer other than a stream: a 401, a proxy
      // error). Check the session, then open a new stream.
      closeEvents();
      clearTimeout(retryTimer);
      retryTimer = setTimeout(async () => {
        try {
          await api("/api/v1/status");
          if (state.authed) connectEvents();
        } catch (err) {
          if (!err.handled && state.authed) {
            setLive("reconnecting");
            retryDelay = Math.min(retryDelay * 2, 15000);
            connectEvents();
          }
        }
      }, retryDelay);
    }
  });
  const on = (name) => es.addEventListener(name, (e) => {
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    if (name === "status") {
      if (typeof data.time === "number" && data.time < 1e12) data.time *= 1000; // the hub's clock, in ms
      state.status = data;
    }
    bus.emit(name, data);
  });
  on("status");
  on("change");
  on("conflict");
}

function closeEvents() {
  if (es) {
    es.close();
    es = null;
  }
}

// Anything that changes items or conflicts changes the containers' counts.
bus.on("change", () => refreshContainers());
bus.on("conflict", () => refreshContainers());
bus.on("status", (s) => {
  document.getElementById("hub-id").textContent = s.hubId || "";
  const n = s.unresolvedConflicts || 0;
  const badge = document.getElementById("nav-conflict-count");
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.setAttribute("aria-label", `${n} unresolved`);
});

// --- session ---------------------------------------------------------------

function showLogin(message) {
  const wasAuthed = state.authed;
  state.authed = false;
  closeEvents();
  clearTimeout(retryTimer);
  state.view = "";
  document.getElementById("app").hidden = true;
  document.getElementById("login-view").hidden = false;
  document.getElementById("login-error").textContent = message || "";
  document.title = "Log in — edgesync hub";
  const input = byTestId("login-token");
  input.value = "";
  input.focus();
  if (wasAuthed) bus.emit("logout");
}

async function loggedIn() {
  state.authed = true;
  document.getElementById("login-view").hidden = true;
  document.getElementById("app").hidden = false;
  connectEvents();
  await Promise.all([loadContainers(), loadResolvers(), loadDemo()]);
  if (state.authed) route();
}

setUnauthorized(() => showLogin(state.authed ? EXPIRED : document.getElementById("login-error").textContent));

async function login(e) {
  e.preventDefault();
  const input = byTestId("login-token");
  const errEl = document.getElementById("login-error");
  const button = byTestId("login-submit");
  const token = input.value.trim();
  if (!token) {
    errEl.textContent = "Enter the admin token.";
    input.focus();
    return;
  }
  button.disabled = true;
  errEl.textContent = "";
  try {
    await api("/api/v1/session", { method: "POST", json: { token }, auth: false });
    input.value = "";
    focusHeading = true;
    await loggedIn();
  } catch (err) {
    errEl.textContent = err.status === 401 ? "That token was not accepted: check it and try again." : errorText(err);
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api("/api/v1/session", { method: "DELETE", auth: false });
  } catch (err) {
    toast(errorText(err), "error");
  }
  showLogin("");
  toast("Logged out.");
}

async function start() {
  for (const v of Object.values(VIEWS)) v.init(ctx);
  document.getElementById("login-form").addEventListener("submit", login);
  byTestId("logout").addEventListener("click", logout);
  document.getElementById("skip").addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById(`h-${state.view || "overview"}`).focus();
  });
  document.querySelector(".nav").addEventListener("click", (e) => {
    if (e.target.closest("a")) focusHeading = true;
  });
  window.addEventListener("hashchange", route);
  try {
    await api("/api/v1/status", { auth: false });
    await loggedIn();
  } catch (err) {
    showLogin(err.status === 401 ? "" : errorText(err));
  }
}

// Errors of background refreshes that nothing caught go to the toast.
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.name === "ApiError") {
    e.preventDefault();
    if (!e.reason.handled) toast(errorText(e.reason), "error");
  }
});

start();
