// Edges: online or offline, last seen, lag, pending writes, clock skew (flagged
// beyond the hub's tolerance or once a _ts of the edge was clamped), scope; register
// (the token is shown once) and revoke. On a demo hub, each demo edge can be
// taken offline and brought back, and can write a document.

import { enc, errorText } from "/ui/api.js";
import { badge, busy, byTestId, fill, fmtAgo, fmtNum, fmtTime, h, parseJSONObject, pretty, table, empty, toast, withoutSystem } from "/ui/dom.js";

let ctx;
const rows = new Map(); // edge name -> {tr, state, seen, lag, pending, scope, toggle, write}
let edges = []; // the newest list
let hubNow = 0; // the hub's clock (ms) of the newest status
let writeTarget = "";
let tbody = null;

function init(c) {
  ctx = c;
  ctx.bus.on("status", (s) => {
    hubNow = s.time || Date.now();
    const before = new Map(edges.map((e) => [e.name, e.online]));
    edges = s.edges || [];
    if (ctx.state.demo && edges.some((e) => before.has(e.name) && before.get(e.name) !== e.online)) ctx.loadDemo();
    render();
  });
  ctx.bus.on("demo", render);
  ctx.bus.on("logout", () => {
    document.getElementById("edge-token-box").hidden = true;
    byTestId("edge-token").textContent = "";
    closeWrite();
  });
  document.getElementById("edge-register-form").addEventListener("submit", register);
  document.getElementById("edge-token-copy").addEventListener("click", copyToken);
  document.getElementById("edge-write-form").addEventListener("submit", writeDoc);
  document.getElementById("edge-write-close").addEventListener("click", closeWrite);
  document.getElementById("edge-write-load").addEventListener("click", loadHubVersion);
}

async function show(params, entered) {
  if (entered) {
    document.getElementById("edge-token-box").hidden = true;
    byTestId("edge-token").textContent = "";
  }
  await load();
}

async function load() {
  try {
    const r = await ctx.api("/api/v1/edges");
    edges = r.edges || [];
    if (!hubNow) hubNow = Date.now();
    render();
  } catch (err) {
    if (!err.handled) toast(`Edges: ${errorText(err)}`, "error");
  }
}

function demoEdge(name) {
  return ctx.state.demo && (ctx.state.demo.edges || []).find((e) => e.name === name);
}

/** The table, built once; rows are updated in place (focus stays put). */
function render() {
  const wrap = document.getElementById("edges-table-wrap");
  document.getElementById("edges-demo-note").hidden = !ctx.state.demo;
  if (!tbody || !wrap.contains(tbody)) {
    const t = table({ testid: "edges-table", "aria-label": "Edges" },
      ["Edge", "State", "Last seen", { text: "LSN lag", attrs: { class: "num" } }, { text: "Pending", attrs: { class: "num", title: "Tentative writes the edge reported when it connected" } },
        { text: "Clock", attrs: { title: "The edge's clock minus the hub's, as last measured, and how many of its _ts the hub clamped (a _ts ahead of the hub's clock by more than --max-clock-skew decides with the receipt time)" } }, "Scope", "Actions"], []);
    fill(wrap, t, h("div", { id: "edges-empty" }));
    tbody = t.querySelector("tbody");
    rows.clear();
  }
  const seen = new Set();
  for (const e of edges) {
    seen.add(e.name);
    let r = rows.get(e.name);
    if (!r) {
      r = makeRow(e.name);
      rows.set(e.name, r);
    }
    updateRow(r, e);
    tbody.append(r.tr); // keeps the hub's order
  }
  for (const [name, r] of rows) {
    if (!seen.has(name)) {
      r.tr.remove();
      rows.delete(name);
    }
  }
  fill(document.getElementById("edges-empty"), edges.length ? null : empty("No edges yet: register one below."));
}

function makeRow(name) {
  const r = {};
  r.name = h("td", {}, h("strong", {}, name));
  r.node = h("div", { class: "hint mono" });
  r.name.append(r.node);
  r.state = badge("…", "offline", { testid: `edge-state-${name}` });
  r.seen = h("td");
  r.lag = h("td", { class: "num", testid: `edge-lag-${name}` });
  r.pending = h("td", { class: "num" });
  r.clock = h("td", { testid: `edge-clock-${name}` });
  r.scope = h("td", { class: "scope" });
  r.toggle = h("button", { type: "button", testid: `edge-toggle-${name}`, onclick: () => toggle(name, r.toggle) });
  r.write = h("button", { type: "button", testid: `edge-write-${name}`, "aria-controls": "edge-write-form", onclick: () => openWrite(name) }, "Write…");
  const revoke = h("button", { type: "button", class: "danger", testid: `edge-revoke-${name}`, "aria-label": `Revoke ${name}`,
    title: "Revoke this edge's token: it can no longer sync", onclick: () => revokeEdge(name, revoke) }, "Revoke");
  r.actions = h("td", { class: "actions" }, h("div", { class: "row nowrap" }, r.toggle, r.write, revoke));
  r.tr = h("tr", { testid: `edge-row-${name}` }, r.name, h("td", {}, r.state), r.seen, r.lag, r.pending, r.clock, r.scope, r.actions);
  return r;
}

function updateRow(r, e) {
  const online = !!e.online;
  r.state.textContent = online ? "online" : "offline";
  r.state.className = `badge ${online ? "online" : "offline"}`;
  r.node.textContent = e.nodeId ? `node ${e.nodeId}` : "never connected";
  r.seen.textContent = online ? "now" : fmtAgo(e.lastSeen, hubNow);
  r.seen.title = e.lastSeen ? fmtTime(e.lastSeen) : "";
  r.lag.textContent = fmtNum(e.lag ?? 0);
  r.lag.classList.toggle("warn-text", (e.lag || 0) > 0);
  r.pending.textContent = fmtNum(e.pending ?? 0);
  updateClock(r.clock, e);
  r.scope.textContent = scopeText(e.scope);
  const demo = demoEdge(e.name);
  r.toggle.hidden = !demo;
  r.write.hidden = !demo;
  if (demo) {
    r.toggle.textContent = demo.online ? "Take offline" : "Bring online";
    r.toggle.setAttribute("aria-label", `${demo.online ? "Take offline" : "Bring online"}: ${e.name}`);
  }
}

/** The clock cell: the measured skew, a flag when it is suspect. */
function updateClock(td, e) {
  const parts = [];
  if (e.clockMeasuredAt) parts.push(fmtSkew(e.clockSkew || 0));
  else parts.push("not measured");
  if (e.clamped) parts.push(`${fmtNum(e.clamped)} clamped`);
  const text = parts.join(", ");
  if (e.clockSuspect) {
    fill(td, badge(`clock: ${text}`, "warn", { testid: `edge-clock-flag-${e.name}` }));
    td.title = "This edge's clock is off by more than the hub's tolerance, or the hub clamped a _ts of it: its _ts from the future decide with the hub's receipt time.";
  } else {
    fill(td, text);
    td.title = e.clockMeasuredAt ? `measured ${fmtTime(e.clockMeasuredAt)}` : "";
  }
}

/** fmtSkew(3600000) -> "+1h 0m", fmtSkew(-250) -> "-0.3 s" */
export function fmtSkew(ms) {
  const sign = ms < 0 ? "-" : "+";
  const a = Math.abs(ms);
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  if (a < 3_600_000) return `${sign}${Math.floor(a / 60_000)}m ${Math.round((a % 60_000) / 1000)}s`;
  return `${sign}${Math.floor(a / 3_600_000)}h ${Math.floor((a % 3_600_000) / 60_000)}m`;
}

/** "everything" | "orders: t7, t8; products" */
export function scopeText(scope) {
  if (!scope || scope.length === 0) return "everything";
  return scope.map((s) => (s.partitionKeys && s.partitionKeys.length ? `${s.container}: ${s.partitionKeys.join(", ")}` : s.container)).join("; ");
}

/**
 * parseScope("orders: t7, t8; products") -> [{container, partitionKeys}];
 * "" -> null (everything). Also accepts the JSON list, and "a, b" (two
 * containers) when no entry has a colon.
 */
export function parseScope(text) {
  const s = text.trim();
  if (!s) return null;
  if (s.startsWith("[")) {
    let v;
    try {
      v = JSON.parse(s);
    } catch (err) {
      throw new Error(`The scope is not valid JSON: ${err.message}`);
    }
    if (!Array.isArray(v) || v.some((e) => !e || typeof e.container !== "string")) {
      throw new Error('The scope must be a list of {"container": "...", "partitionKeys": [...]}.');
    }
    return v;
  }
  const out = [];
  for (const part of s.split(/[;\n]/)) {
    const entry = part.trim();
    if (!entry) continue;
    const colon = entry.indexOf(":");
    if (colon < 0) {
      for (const name of entry.split(",")) if (name.trim()) out.push({ container: name.trim() });
      continue;
    }
    const container = entry.slice(0, colon).trim();
    const pks = entry.slice(colon + 1).split(",").map((p) => p.trim()).filter(Boolean);
    if (!container) throw new Error(`"${entry}": a container name is missing before the colon.`);
    if (!pks.length) throw new Error(`"${entry}": list partition key values after the colon, or leave the colon out for the whole container.`);
    out.push({ container, partitionKeys: pks });
  }
  return out.length ? out : null;
}

async function register(e) {
  e.preventDefault();
  const nameEl = byTestId("edge-register-name");
  const scopeEl = byTestId("edge-register-scope");
  const errEl = byTestId("edge-register-error");
  errEl.textContent = "";
  const name = nameEl.value.trim();
  if (!name) {
    errEl.textContent = "Give the edge a name.";
    nameEl.focus();
    return;
  }
  let scope;
  try {
    scope = parseScope(scopeEl.value);
  } catch (err) {
    errEl.textContent = err.message;
    scopeEl.focus();
    return;
  }
  const body = { name };
  if (scope) body.scope = scope;
  await busy(byTestId("edge-register-submit"), async () => {
    try {
      const r = await ctx.api("/api/v1/edges", { method: "POST", json: body });
      document.getElementById("edge-token-name").textContent = r.name || name;
      byTestId("edge-token").textContent = r.token;
      document.getElementById("edge-token-cmd").textContent = `edgenode --hub ${location.origin} --token ${r.token}`;
      document.getElementById("edge-token-box").hidden = false;
      nameEl.value = "";
      scopeEl.value = "";
      toast(`Registered ${r.name || name}: copy its token now, it is not shown again.`);
      await load();
    } catch (err) {
      errEl.textContent = errorText(err);
    }
  });
}

async function copyToken() {
  const token = byTestId("edge-token").textContent;
  try {
    await navigator.clipboard.writeText(token);
    toast("Token copied.");
  } catch {
    const sel = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents(byTestId("edge-token"));
    sel.removeAllRanges();
    sel.addRange(range);
    toast("Copy the selected token (the clipboard is not available here).");
  }
}

async function revokeEdge(name, button) {
  await busy(button, async () => {
    try {
      await ctx.api(`/api/v1/edges/${enc(name)}`, { method: "DELETE" });
      toast(`Revoked ${name}: its token no longer syncs.`);
      if (writeTarget === name) closeWrite();
      await load();
    } catch (err) {
      if (!err.handled) toast(errorText(err), "error");
    }
  });
}

async function toggle(name, button) {
  const demo = demoEdge(name);
  if (!demo) return;
  const to = demo.online ? "offline" : "online";
  await busy(button, async () => {
    try {
      const res = await fetch(`/demo/edges/${enc(name)}/${to}`, { method: "POST", credentials: "same-origin" });
      if (!res.ok) throw new Error(await demoError(res));
      await ctx.loadDemo();
      toast(to === "offline" ? `${name} is offline: its writes queue until it comes back.` : `${name} is back online: it syncs now.`);
    } catch (err) {
      toast(`${name}: ${err.message}`, "error");
    }
  });
}

async function demoError(res) {
  const text = await res.text();
  try {
    return JSON.parse(text).message || text;
  } catch {
    return text.trim() || `HTTP ${res.status}`;
  }
}

function openWrite(name) {
  writeTarget = name;
  const form = document.getElementById("edge-write-form");
  document.getElementById("edge-write-target").textContent = name;
  byTestId("edge-write-submit").textContent = `Write on ${name}`;
  byTestId("edge-write-error").textContent = "";
  const cont = byTestId("edge-write-container");
  if (!cont.value && ctx.state.containers.length) cont.value = ctx.state.containers[0].name;
  form.hidden = false;
  form.scrollIntoView({ block: "nearest" });
  (cont.value ? byTestId("edge-write-id") : cont).focus();
}

function closeWrite() {
  writeTarget = "";
  document.getElementById("edge-write-form").hidden = true;
}

/** Fill the body with the hub's confirmed version of the document. */
async function loadHubVersion() {
  const c = byTestId("edge-write-container").value.trim();
  const id = byTestId("edge-write-id").value.trim();
  const errEl = byTestId("edge-write-error");
  errEl.textContent = "";
  if (!c || !id) {
    errEl.textContent = "Enter the container and the document id first.";
    return;
  }
  try {
    const doc = await ctx.api(`/api/v1/containers/${enc(c)}/docs/${enc(id)}`);
    byTestId("edge-write-body").value = pretty(withoutSystem(doc));
  } catch (err) {
    errEl.textContent = err.status === 404 ? `The hub has no ${c}/${id} yet: write a new document.` : errorText(err);
  }
}

async function writeDoc(e) {
  e.preventDefault();
  const errEl = byTestId("edge-write-error");
  errEl.textContent = "";
  const contEl = byTestId("edge-write-container");
  const idEl = byTestId("edge-write-id");
  const bodyEl = byTestId("edge-write-body");
  const c = contEl.value.trim();
  let doc;
  try {
    doc = parseJSONObject(bodyEl.value, "The document");
  } catch (err) {
    errEl.textContent = err.message;
    bodyEl.focus();
    return;
  }
  let id = idEl.value.trim();
  if (!id && typeof doc.id === "string") id = idEl.value = doc.id;
  if (!c || !id) {
    errEl.textContent = !c ? "Enter the container." : "Enter the document id.";
    (!c ? contEl : idEl).focus();
    return;
  }
  if (doc.id === undefined) doc = { id, ...doc }; // the id field names it
  const name = writeTarget;
  await busy(byTestId("edge-write-submit"), async () => {
    try {
      const res = await fetch(`/demo/edges/${enc(name)}/containers/${enc(c)}/docs/${enc(id)}`, {
        method: "PUT", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc),
      });
      if (!res.ok) throw new Error(await demoError(res));
      const demo = demoEdge(name);
      toast(`${name} wrote ${c}/${id} (tentative${demo && !demo.online ? ", queued while offline" : ""}).`);
    } catch (err) {
      errEl.textContent = `${name}: ${err.message}`;
    }
  });
}

export default { init, show };
