// Documents: browse a container (optionally one partition key), an item's
// version history (origin, outcome, the policy and resolver version that
// confirmed it) and the diff between two of its versions.

import { enc, errorText, qs } from "/ui/api.js";
import { badge, byTestId, debounce, empty, fill, fmtTime, h, throttle } from "/ui/dom.js";
import { describeChange, diff, marksFor, renderJSON } from "/ui/common/diff.js";

const PAGE = 50;

let ctx;
// What is on screen.
const cur = { c: "", pk: "", id: "", docs: [], continuation: null, versions: null, picked: [], pickedByUser: false, doc: undefined };
let listSeq = 0;
let histSeq = 0;

function init(c) {
  ctx = c;
  const sel = byTestId("docs-container");
  const pk = byTestId("docs-pk");
  sel.addEventListener("change", () => ctx.navigate("documents", { c: sel.value }));
  document.getElementById("docs-form").addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.navigate("documents", { c: sel.value, pk: pk.value.trim() });
  });
  const typed = debounce(() => {
    if (ctx.state.view === "documents" && pk.value.trim() !== cur.pk) ctx.navigate("documents", { c: sel.value, pk: pk.value.trim() }, { replace: true });
  }, 500);
  pk.addEventListener("input", typed);
  document.getElementById("docs-more").addEventListener("click", () => loadList(true));
  ctx.bus.on("containers", fillContainers);
  const reloadList = throttle(() => loadList(false, true), 300);
  const reloadHistory = throttle(() => loadHistory(true), 300);
  ctx.bus.on("change", (ch) => {
    if (ctx.state.view !== "documents" || ch.container !== cur.c) return;
    if (!cur.pk || ch.pk === cur.pk) reloadList();
    if (ch.id === cur.id) reloadHistory();
  });
  ctx.bus.on("conflict", (ev) => {
    // A lost version joins the item's history without a log record.
    if (ctx.state.view !== "documents" || !cur.id) return;
    if (!ev || !ev.container || ev.container === cur.c) reloadHistory();
  });
  ctx.bus.on("logout", () => Object.assign(cur, { c: "", pk: "", id: "", docs: [], versions: null }));
}

function fillContainers() {
  const sel = byTestId("docs-container");
  const want = cur.c || sel.value;
  fill(sel, ctx.state.containers.map((c) => h("option", { value: c.name }, c.name)));
  if (want) sel.value = want;
}

async function show(params, entered) {
  if (!ctx.state.containers.length) await ctx.loadContainers();
  fillContainers();
  const c = params.get("c") || cur.c || (ctx.state.containers[0] && ctx.state.containers[0].name) || "";
  const pk = params.get("pk") || "";
  const id = params.get("id") || "";
  byTestId("docs-container").value = c;
  const pkEl = byTestId("docs-pk");
  if (document.activeElement !== pkEl) pkEl.value = pk;
  const listChanged = c !== cur.c || pk !== cur.pk;
  const idChanged = id !== cur.id || listChanged;
  cur.c = c;
  cur.pk = pk;
  if (listChanged || entered || !cur.docs.length) await loadList(false, !listChanged);
  else markSelected(id);
  if (idChanged || entered || !cur.versions) {
    const same = id === cur.id && !listChanged;
    cur.id = id;
    if (!same) cur.pickedByUser = false;
    await loadHistory(same);
  }
}

/** Load the first page (or the next one with more; keep the count with keep). */
async function loadList(more = false, keep = false) {
  const listEl = byTestId("docs-list");
  const moreBtn = document.getElementById("docs-more");
  if (!cur.c) {
    fill(listEl, h("li", {}, empty("No containers yet.")));
    moreBtn.hidden = true;
    return;
  }
  const seq = ++listSeq;
  const limit = keep ? Math.min(1000, Math.max(PAGE, cur.docs.length)) : PAGE;
  try {
    const r = await ctx.api(`/api/v1/containers/${enc(cur.c)}/docs${qs({ pk: cur.pk, limit, continuation: more ? cur.continuation : "" })}`);
    if (seq !== listSeq) return;
    cur.docs = more ? cur.docs.concat(r.documents || []) : r.documents || [];
    cur.continuation = r.continuation || null;
  } catch (err) {
    if (seq !== listSeq || err.handled) return;
    cur.docs = [];
    cur.continuation = null;
    fill(listEl, h("li", { class: "error" }, errorText(err)));
    moreBtn.hidden = true;
    return;
  }
  const def = ctx.container(cur.c);
  const pkPath = def ? def.partitionKey : "";
  fill(listEl, cur.docs.length ? null : h("li", {}, empty(cur.pk ? `No items with partition key “${cur.pk}”.` : "This container has no items.")),
    cur.docs.map((d) => h("li", {},
      h("button", { type: "button", class: "pick", testid: `doc-${d.id}`, dataset: { id: d.id },
        onclick: () => ctx.navigate("documents", { c: cur.c, pk: cur.pk, id: d.id }) },
        h("span", { class: "pick-title" }, d.id),
        h("span", { class: "pick-meta" }, pkPath ? `${pkPath} = ${pkValue(d, pkPath)}` : "", d._lsn ? ` · LSN ${d._lsn}` : "")))));
  document.getElementById("docs-count").textContent = `(${cur.docs.length}${cur.continuation ? "+" : ""})`;
  moreBtn.hidden = !cur.continuation;
  markSelected(cur.id);
}

function pkValue(doc, path) {
  let v = doc;
  for (const k of path.split("/").slice(1)) v = v && typeof v === "object" ? v[k.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
  return v === undefined ? "(none)" : typeof v === "string" ? v : JSON.stringify(v);
}

function markSelected(id) {
  for (const b of byTestId("docs-list").querySelectorAll("button.pick")) {
    if (b.dataset.id === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

async function loadHistory(refresh) {
  const pane = document.getElementById("doc-detail");
  markSelected(cur.id);
  if (!cur.id) {
    cur.versions = null;
    fill(pane, h("div", { class: "card" }, h("p", { class: "muted" }, "Choose an item to see its versions.")));
    return;
  }
  const seq = ++histSeq;
  const base = `/api/v1/containers/${enc(cur.c)}/docs/${enc(cur.id)}`;
  let versions;
  let doc;
  try {
    const [vr, dr] = await Promise.allSettled([ctx.api(`${base}/versions`), ctx.api(base)]);
    if (seq !== histSeq) return;
    if (vr.status === "rejected") throw vr.reason;
    versions = vr.value.versions || [];
    doc = dr.status === "fulfilled" ? dr.value : undefined; // 404: deleted
  } catch (err) {
    if (seq !== histSeq || err.handled) return;
    cur.versions = null;
    fill(pane, h("div", { class: "card" }, h("h3", {}, cur.id), h("p", { class: "error" }, errorText(err))));
    return;
  }
  const prevPicked = cur.picked;
  cur.versions = versions;
  cur.doc = doc;
  const ids = versions.map((v) => v.version);
  if (refresh && cur.pickedByUser && prevPicked.every((p) => ids.includes(p))) cur.picked = prevPicked;
  else {
    cur.picked = ids.slice(-2);
    cur.pickedByUser = false;
  }
  renderDetail(refresh);
}

function renderDetail(refresh) {
  const pane = document.getElementById("doc-detail");
  // A live refresh keeps the documents the reader opened open.
  const open = new Set(refresh ? [...pane.querySelectorAll("details[open]")].map((d) => d.dataset.key) : []);
  const versions = cur.versions;
  const newestFirst = versions.slice().reverse();
  const history = h("ol", { class: "history", testid: "doc-history", "aria-label": `Versions of ${cur.id}, newest first` },
    newestFirst.map((v) => versionItem(v, open.has(v.version))));
  const current = cur.doc === undefined
    ? h("p", { class: "muted" }, "Deleted: the hub has a tombstone for this item.")
    : renderJSON(cur.doc);
  fill(pane,
    h("div", { class: "card" },
      h("h3", {}, cur.id, " ", h("span", { class: "hint" }, `in ${cur.c}`)),
      h("details", { class: "current", dataset: { key: "current" }, open: open.has("current") }, h("summary", {}, "Current confirmed document"), current)),
    h("div", { class: "card" },
      h("h3", { id: "h-doc-history" }, "Version history ", h("span", { class: "hint" }, `(${versions.length})`)),
      h("p", { class: "hint" }, "Tick two versions to compare them."),
      history),
    h("div", { class: "card", testid: "doc-diff", id: "doc-diff", "aria-live": "polite" }));
  renderDiff();
}

function versionItem(v, opened) {
  const picked = cur.picked.includes(v.version);
  const box = h("input", { type: "checkbox", checked: picked, "aria-label": `Compare version ${v.version}` });
  box.addEventListener("change", () => pick(v.version, box.checked));
  const status = v.confirmed ? badge("confirmed", "confirmed") : badge(v.outcome || "not confirmed", { rejected: "rejected", merged: "info" }[v.outcome] || "lost");
  const facts = [];
  if (v.confirmed) {
    facts.push(`LSN ${v.lsn}`, `confirmed ${fmtTime(v.crts)}`);
    if (v.policy) facts.push(`policy ${v.policy}`);
    if (v.resolver) facts.push(`resolver ${v.resolver}`);
  }
  return h("li", { class: "version" + (picked ? " picked" : ""), testid: `doc-version-${v.version}`, dataset: { version: v.version } },
    h("label", { class: "version-head" }, box,
      h("span", { class: "version-main" },
        h("span", { class: "row" }, status, h("code", {}, v.version), h("span", { class: "muted" }, v.op)),
        h("span", { class: "hint" }, `from ${who(v.origin)} · written ${fmtTime(v.ts)}${v.base ? ` · over ${v.base}` : ""}`),
        facts.length ? h("span", { class: "hint" }, facts.join(" · ")) : null,
        v.resolves ? h("span", { class: "hint" }, `settles the conflict of ${v.resolves}`) : null,
        v.reason ? h("span", { class: "reason" }, v.reason) : null)),
    h("details", { dataset: { key: v.version }, open: opened }, h("summary", {}, v.document ? "Document" : "Document (deleted)"),
      renderJSON(v.document ?? undefined, new Map(), { empty: "(deleted)" })));
}

function who(origin) {
  const name = ctx.originName(origin);
  return name === origin ? origin : `${name} (${origin})`;
}

function pick(version, on) {
  cur.pickedByUser = true;
  cur.picked = cur.picked.filter((p) => p !== version);
  if (on) {
    cur.picked.push(version);
    if (cur.picked.length > 2) cur.picked.shift();
  }
  for (const li of byTestId("doc-history").querySelectorAll("li.version")) {
    const sel = cur.picked.includes(li.dataset.version);
    li.classList.toggle("picked", sel);
    li.querySelector("input[type=checkbox]").checked = sel;
  }
  renderDiff();
}

function renderDiff() {
  const el = byTestId("doc-diff");
  const order = cur.versions.map((v) => v.version);
  const picked = cur.picked.slice().sort((a, b) => order.indexOf(a) - order.indexOf(b));
  if (picked.length < 2) {
    fill(el, h("h3", {}, "Differences"),
      h("p", { class: "muted" }, cur.versions.length < 2 ? "This item has one version: nothing to compare yet." : "Tick two versions to compare them."));
    return;
  }
  const [a, b] = picked.map((p) => cur.versions.find((v) => v.version === p));
  const da = a.document ?? undefined;
  const db = b.document ?? undefined;
  const changes = diff(da, db);
  fill(el,
    h("h3", {}, "Differences ", h("span", { class: "hint" }, `${a.version} → ${b.version}`)),
    changes.length
      ? h("ul", { class: "changes" }, changes.map((c) => h("li", { class: `ch-${c.kind}` }, describeChange(c))))
      : h("p", { class: "muted" }, "The two versions have the same content."),
    h("div", { class: "legend-diff", "aria-hidden": "true" },
      h("span", { class: "l-added" }, "added"), h("span", { class: "l-removed" }, "removed"), h("span", { class: "l-changed" }, "changed")),
    h("div", { class: "panes two" },
      h("div", { class: "pane" }, h("h4", {}, "Older ", h("code", {}, a.version)), renderJSON(da, marksFor(changes, "before"), { empty: "(deleted)" })),
      h("div", { class: "pane" }, h("h4", {}, "Newer ", h("code", {}, b.version)), renderJSON(db, marksFor(changes, "after"), { empty: "(deleted)" }))));
}

export default { init, show };
