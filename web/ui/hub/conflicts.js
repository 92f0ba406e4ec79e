// Conflicts: unresolved first; base, existing and incoming side by side with
// their differences highlighted; keep existing, keep incoming or save a
// merged document; try a resolver on the conflict without applying it.

import { enc, errorText, qs } from "/ui/api.js";
import { badge, busy, byTestId, empty, fill, fmtMicros, fmtTime, h, parseJSONObject, pretty, throttle, toast } from "/ui/dom.js";
import { describeChange, diff, isEqual, marksFor, mergeMarks, renderJSON, threeWay } from "/ui/common/diff.js";

const RESOLVED_SHOWN = 25; // newest resolved conflicts listed per container
const PAGE = 500;
const MAX_PAGES = 20;

let ctx;
let list = []; // conflicts on screen, unresolved first
let filter = ""; // container, or "" for all
let sel = null; // {container, cid} selected
let shown = null; // the conflict whose detail is rendered (status kept to notice changes)
let loadSeq = 0;

function init(c) {
  ctx = c;
  const fsel = document.getElementById("conflicts-container");
  fsel.addEventListener("change", () => ctx.navigate("conflicts", { c: fsel.value }));
  ctx.bus.on("containers", fillFilter);
  const refresh = throttle(() => {
    if (ctx.state.view === "conflicts") load();
  }, 500);
  ctx.bus.on("conflict", refresh);
  ctx.bus.on("change", refresh); // lww conflicts are recorded already resolved
  ctx.bus.on("resolvers", () => {
    if (shown) fillTry(shown);
  });
  ctx.bus.on("logout", () => {
    cache.clear();
    list = [];
    sel = shown = null;
  });
}

function fillFilter() {
  const fsel = document.getElementById("conflicts-container");
  fill(fsel, h("option", { value: "" }, "All containers"),
    ctx.state.containers.map((c) => h("option", { value: c.name }, `${c.name}${c.unresolvedConflicts ? ` (${c.unresolvedConflicts} unresolved)` : ""}`)));
  fsel.value = filter;
}

async function show(params, entered) {
  filter = params.get("c") || "";
  const dc = params.get("dc") || params.get("c") || "";
  const cid = Number(params.get("cid")) || 0;
  const selChanged = !sel || sel.container !== dc || sel.cid !== cid;
  sel = dc && cid ? { container: dc, cid } : null;
  if (!ctx.state.containers.length) await ctx.loadContainers();
  fillFilter();
  if (selChanged) shown = null;
  await load(entered || selChanged);
}

/** Fetch the pages of one container's conflicts with a status after a cid (bounded). */
async function fetchAll(container, status, after = 0) {
  const out = [];
  let cont = after ? String(after) : "";
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await ctx.api(`/api/v1/containers/${enc(container)}/conflicts${qs({ status, limit: PAGE, continuation: cont })}`);
    const page = r.conflicts || [];
    for (const c of page) out.push({ ...c, container: c.container || container });
    if (page.length < PAGE || !r.continuation) break;
    cont = r.continuation;
  }
  return out;
}

/** One conflict by id: the page right after cid - 1. */
async function fetchOne(container, cid) {
  const r = await ctx.api(`/api/v1/containers/${enc(container)}/conflicts${qs({ limit: 1, continuation: cid - 1 })}`);
  const c = (r.conflicts || [])[0];
  return c && c.id === cid ? { ...c, container: c.container || container } : null;
}

// The feed lists conflicts by ascending id, and a resolved conflict never
// changes again: per container, keep the newest resolved ones and read only
// what came after them. A conflict that leaves the unresolved list was
// resolved meanwhile: read it alone.
const cache = new Map(); // container -> {after, resolved: [...], unresolved: Set(cid)}

async function loadContainer(name) {
  const cc = cache.get(name) || { after: 0, resolved: [], unresolved: new Set() };
  const [unresolved, fresh] = await Promise.all([fetchAll(name, "unresolved"), fetchAll(name, "resolved", cc.after)]);
  const now = new Set(unresolved.map((c) => c.id));
  const gone = [...cc.unresolved].filter((id) => !now.has(id) && !fresh.some((c) => c.id === id));
  const settled = (await Promise.all(gone.map((id) => fetchOne(name, id)))).filter((c) => c && c.status !== "unresolved");
  const byId = new Map();
  for (const c of [...cc.resolved, ...fresh, ...settled]) byId.set(c.id, c);
  const resolved = [...byId.values()].sort((a, b) => a.id - b.id).slice(-RESOLVED_SHOWN);
  const after = Math.max(cc.after, ...fresh.map((c) => c.id));
  cache.set(name, { after, resolved, unresolved: now });
  return [...unresolved, ...resolved];
}

async function load(force = false) {
  const seq = ++loadSeq;
  const names = filter ? [filter] : ctx.state.containers.map((c) => c.name);
  let all;
  try {
    all = (await Promise.all(names.map(loadContainer))).flat();
  } catch (err) {
    if (seq !== loadSeq || err.handled) return;
    fill(byTestId("conflicts-list"), h("li", { class: "error" }, errorText(err)));
    return;
  }
  if (seq !== loadSeq) return;
  const rank = (c) => (c.status === "unresolved" ? 0 : 1);
  all.sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt || b.id - a.id);
  list = all;
  renderList();
  await renderSelected(force);
}

function key(c) {
  return `${c.container}-${c.id}`;
}

function renderList() {
  const ul = byTestId("conflicts-list");
  const focused = document.activeElement && ul.contains(document.activeElement) ? document.activeElement.dataset.testid : "";
  const unresolved = list.filter((c) => c.status === "unresolved").length;
  document.getElementById("conflicts-count").textContent = `(${unresolved} unresolved)`;
  fill(ul, list.length ? null : h("li", {}, empty("No conflicts. Concurrent writes to the same item from different edges make them.")),
    list.map((c) => {
      const selected = sel && sel.container === c.container && sel.cid === c.id;
      return h("li", {},
        h("button", {
          type: "button", class: "pick", testid: `conflict-${key(c)}`, dataset: { status: c.status },
          "aria-current": selected ? "true" : false,
          onclick: () => ctx.navigate("conflicts", filter ? { c: filter, cid: c.id } : { dc: c.container, cid: c.id }),
        },
        h("span", { class: "pick-title" }, badge(c.status, c.status), " ", `${c.container} / ${c.docId}`),
        h("span", { class: "pick-meta" }, `#${c.id} · ${c.kind} · ${c.policy}${c.resolver ? ` (${c.resolver})` : ""} · ${fmtTime(c.createdAt)}`),
        c.reason ? h("span", { class: "pick-meta reason" }, c.reason) : null));
    }));
  if (focused) byTestId(focused, ul)?.focus();
}

async function renderSelected(force) {
  const pane = document.getElementById("conflict-detail");
  if (!sel) {
    shown = null;
    fill(pane, h("div", { class: "card" }, h("p", { class: "muted" }, "Choose a conflict to compare its versions and resolve it.")));
    return;
  }
  let c = list.find((x) => x.container === sel.container && x.id === sel.cid);
  if (!c) {
    try {
      c = await fetchOne(sel.container, sel.cid);
    } catch (err) {
      if (!err.handled) fill(pane, h("div", { class: "card" }, h("p", { class: "error" }, errorText(err))));
      return;
    }
  }
  if (!c) {
    shown = null;
    fill(pane, h("div", { class: "card" }, h("p", { class: "error" }, `No conflict ${sel.cid} in ${sel.container}.`)));
    return;
  }
  // Keep the detail (and the editor's text) unless the conflict changed.
  if (!force && shown && key(shown) === key(c) && shown.status === c.status) return;
  const resolvedMeanwhile = shown && key(shown) === key(c) && shown.status !== c.status;
  shown = c;
  renderDetail(c, resolvedMeanwhile);
}

function who(origin) {
  const name = ctx.originName(origin);
  return name === origin ? origin : `${name} (${origin})`;
}

function side(v) {
  if (!v) return undefined;
  return v.deleted ? undefined : v.document ?? undefined;
}

function renderDetail(c, resolvedMeanwhile) {
  const pane = document.getElementById("conflict-detail");
  const base = side(c.base);
  const existing = side(c.existing);
  const incoming = side(c.incoming);
  const t = threeWay(c.base ? base : null, existing, incoming);
  const baseMarks = c.base ? mergeMarks(marksFor(t.existing, "before"), marksFor(t.incoming, "before")) : new Map();
  const paneOf = (name, title, v, doc, marks, note) => h("div", { class: "pane", testid: `conflict-${name}` },
    h("h4", {}, title),
    v ? h("p", { class: "hint" }, h("code", {}, v.version), ` from ${who(v.origin)} · ${fmtTime(v.ts)}`) : null,
    note ? h("p", { class: "hint" }, note) : null,
    renderJSON(doc, marks, { clashes: t.clashes, empty: !v ? "(no common ancestor)" : "(deleted)" }));
  const open = c.status === "unresolved";
  const facts = [
    ["Kind", c.kind],
    ["Partition key", c.pk],
    ["Policy", `${c.policy}${c.resolver ? ` (${c.resolver})` : ""}`],
    ["Recorded", fmtTime(c.createdAt)],
    c.winnerLsn ? ["Winner", `LSN ${c.winnerLsn}`] : null,
    c.reason ? ["Reason", c.reason] : null,
  ].filter(Boolean);
  const clashList = [...t.clashes].filter((p) => ![...t.clashes].some((q) => q !== p && p.startsWith(q + "/")));
  fill(pane,
    h("div", { class: "card" },
      h("h3", { id: "h-conflict", tabindex: "-1" }, `Conflict #${c.id} `, h("span", { class: "hint" }, `${c.container} / `),
        h("a", { href: `#/documents?c=${encodeURIComponent(c.container)}&id=${encodeURIComponent(c.docId)}` }, c.docId), " ", badge(c.status, c.status)),
      resolvedMeanwhile && c.status === "resolved" ? h("p", { class: "notice", role: "status" }, "This conflict has just been resolved.") : null,
      h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
      h("div", { class: "legend-diff", "aria-hidden": "true" },
        h("span", { class: "l-added" }, "added"), h("span", { class: "l-removed" }, "removed"), h("span", { class: "l-changed" }, "changed"),
        h("span", { class: "l-clash" }, "changed on both sides")),
      h("p", { class: "hint" }, c.base
        ? "Existing and incoming are highlighted against the base, their common ancestor; the base shows what either side changed."
        : "The hub has no common ancestor: existing and incoming are highlighted against each other."),
      clashList.length ? h("p", { class: "clashes" }, "Both sides changed: ", clashList.map((p, i) => [i ? ", " : "", h("code", {}, p || "/")])) : null,
      h("div", { class: "panes three" },
        paneOf("base", "Base", c.base, base, baseMarks),
        paneOf("existing", open ? "Existing (current)" : "Existing", c.existing, existing, marksFor(t.existing, "after")),
        paneOf("incoming", open ? "Incoming (not applied)" : "Incoming", c.incoming, incoming, marksFor(t.incoming, "after")))),
    c.status === "unresolved" ? resolveCard(c, existing, incoming) : resolvedCard(c),
    tryCard(c));
  fillTry(c);
}

function resolvedCard(c) {
  const docLink = (text) => h("a", { href: `#/documents?c=${encodeURIComponent(c.container)}&id=${encodeURIComponent(c.docId)}` }, text);
  const outcome = h("p", {}, c.winnerLsn ? ["Decided at LSN ", docLink(String(c.winnerLsn)), "."] : "Decided.");
  const winner = h("div", { class: "winner" });
  const card = h("div", { class: "card" }, h("h3", {}, "Resolved"), outcome, winner);
  if (c.winnerLsn) showWinner(c, outcome, winner);
  return card;
}

/** The confirmed version at the conflict's winner LSN, against existing. */
async function showWinner(c, outcome, el) {
  let versions;
  try {
    versions = (await ctx.api(`/api/v1/containers/${enc(c.container)}/docs/${enc(c.docId)}/versions`)).versions || [];
  } catch {
    return; // the outcome line stays
  }
  const w = versions.find((v) => v.confirmed && v.lsn === c.winnerLsn);
  if (!w) return;
  const same = (v) => v && (w.version === v.version || (!v.deleted && w.document && isEqual(w.document, v.document)));
  const how = w.op === "delete" ? "The item was deleted."
    : same(c.existing) ? "The existing version was kept."
    : same(c.incoming) ? "The incoming version won."
    : "A new version was written (merged or edited).";
  outcome.append(" ", how);
  if (same(c.existing) || same(c.incoming) || !w.document) return;
  const changes = diff(side(c.existing), w.document);
  fill(el, h("h4", {}, "The result, against the existing version ", h("code", {}, w.version)),
    renderJSON(w.document, marksFor(changes, "after")));
}

function resolveCard(c, existing, incoming) {
  const prefill = existing ?? incoming ?? { id: c.docId };
  const editor = h("textarea", { id: "resolve-editor", testid: "resolve-editor", rows: "12", spellcheck: "false",
    "aria-describedby": "resolve-help resolve-error" });
  editor.value = pretty(prefill);
  const errEl = h("p", { class: "error", id: "resolve-error", testid: "resolve-error", role: "alert" });
  const keepExisting = h("button", { type: "button", testid: "resolve-keep-existing", onclick: () => resolve(c, { keep: "existing" }, keepExisting) },
    "Keep existing");
  const keepIncoming = h("button", { type: "button", testid: "resolve-keep-incoming", onclick: () => resolve(c, { keep: "incoming" }, keepIncoming) },
    "Keep incoming");
  const submit = h("button", { type: "submit", class: "primary", testid: "resolve-submit-document" }, "Save merged document");
  const form = h("form", { class: "resolve-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "resolve-editor" }, "Merged document"), editor),
    h("p", { class: "hint", id: "resolve-help" }, `Prefilled with the existing document. Keep the id "${c.docId}" and its partition key.`),
    h("div", { class: "row" }, submit,
      h("button", { type: "button", onclick: () => { editor.value = pretty(prefill); errEl.textContent = ""; } }, "Reset")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    errEl.textContent = "";
    let doc;
    try {
      doc = parseJSONObject(editor.value, "The merged document");
    } catch (err) {
      errEl.textContent = err.message;
      editor.focus();
      return;
    }
    if (doc.id !== undefined && doc.id !== c.docId) {
      errEl.textContent = `The merged document's id must stay "${c.docId}" (it is ${JSON.stringify(doc.id)}).`;
      editor.focus();
      return;
    }
    if (doc.id === undefined) doc = { id: c.docId, ...doc };
    resolve(c, { document: doc }, submit);
  });
  return h("div", { class: "card resolve-card", "aria-labelledby": "h-resolve" },
    h("h3", { id: "h-resolve" }, "Resolve"),
    h("div", { class: "row" }, keepExisting, keepIncoming),
    errEl,
    h("h4", {}, "Or save a merged document"),
    form);
}

async function resolve(c, body, button) {
  const errEl = byTestId("resolve-error");
  errEl.textContent = "";
  await busy(button, async () => {
    try {
      const r = await ctx.api(`/api/v1/containers/${enc(c.container)}/conflicts/${c.id}/resolve`, { method: "POST", json: body });
      const how = body.keep ? `kept ${body.keep}` : "merged document saved";
      toast(`Conflict #${c.id} on ${c.container}/${c.docId} resolved: ${how}${r && r.lsn ? ` (LSN ${r.lsn})` : ""}.`);
      shown = null;
      await load(true);
      document.getElementById("h-conflict")?.focus();
    } catch (err) {
      if (err.handled) return;
      if (err.status === 409) {
        toast(`Conflict #${c.id} was already resolved: ${errorText(err)}`, "error");
        shown = null;
        await load(true);
        return;
      }
      errEl.textContent = errorText(err);
    }
  });
}

function tryCard(c) {
  const selEl = h("select", { id: "try-resolver", testid: "try-resolver" });
  const run = h("button", { type: "button", testid: "try-run", onclick: () => tryRun(c, selEl, run) }, "Try");
  return h("div", { class: "card", "aria-labelledby": "h-try" },
    h("h3", { id: "h-try" }, "Try a resolver on this conflict"),
    h("p", { class: "hint" }, "Runs the resolver on this conflict's recorded versions in the sandbox and shows its decision. Nothing is applied."),
    h("div", { class: "fields" }, h("div", { class: "field" }, h("label", { for: "try-resolver" }, "Resolver"), selEl), run),
    h("div", { class: "try-output", testid: "try-output", id: "try-output", "aria-live": "polite" }));
}

function fillTry(c) {
  const selEl = byTestId("try-resolver");
  if (!selEl) return;
  const prev = selEl.value;
  const rs = ctx.state.resolvers;
  const names = [...new Set(rs.map((r) => r.name))];
  const def = ctx.container(c.container);
  const preferred = def && def.conflictPolicy && def.conflictPolicy.mode === "custom" ? def.conflictPolicy.resolver : "";
  fill(selEl, names.map((n) => h("optgroup", { label: n },
    h("option", { value: `${n}@0` }, `${n} (newest)`),
    rs.filter((r) => r.name === n).sort((a, b) => b.version - a.version).map((r) => h("option", { value: `${n}@${r.version}` }, `${n} v${r.version}`)))));
  if (!names.length) selEl.append(h("option", { value: "" }, "(no resolvers uploaded)"));
  selEl.value = prev && [...selEl.options].some((o) => o.value === prev) ? prev : preferred && names.includes(preferred) ? `${preferred}@0` : selEl.options[0]?.value || "";
  byTestId("try-run").disabled = !names.length;
}

async function tryRun(c, selEl, button) {
  const out = byTestId("try-output");
  const [name, version] = selEl.value.split("@");
  if (!name) return;
  const body = { container: c.container, conflict: c.id };
  if (Number(version)) body.version = Number(version);
  fill(out, h("p", { class: "muted" }, "Running…"));
  await busy(button, async () => {
    try {
      const r = await ctx.api(`/api/v1/resolvers/${enc(name)}/try`, { method: "POST", json: body });
      renderTry(c, r, out);
    } catch (err) {
      if (!err.handled) fill(out, h("p", { class: "error" }, errorText(err)));
    }
  });
}

function renderTry(c, r, out) {
  const stats = [r.resolver ? `resolver ${r.resolver}` : null, typeof r.timeMicros === "number" ? `took ${fmtMicros(r.timeMicros)}` : null,
    typeof r.fuelUsed === "number" ? `fuel ${r.fuelUsed}` : null].filter(Boolean).join(" · ");
  if (r.error) {
    fill(out, h("p", {}, badge("failed", "error"), " ", r.error.reason ? h("strong", {}, `${r.error.reason}: `) : null, r.error.message || ""),
      stats ? h("p", { class: "hint" }, stats) : null,
      h("p", { class: "hint" }, "On the hub this would leave the conflict unresolved, with this reason."));
    return;
  }
  const d = r.decision || {};
  const parts = [h("p", {}, "Decision: ", badge(d.action || "none", "info"), d.reason ? ` — ${d.reason}` : "")];
  if (d.action === "merge" && d.document) {
    const existing = side(c.existing);
    const changes = diff(existing, d.document);
    parts.push(h("p", { class: "hint" }, "The merged document, highlighted against the existing one:"),
      changes.length ? h("ul", { class: "changes" }, changes.map((ch) => h("li", { class: `ch-${ch.kind}` }, describeChange(ch)))) : null,
      renderJSON(d.document, marksFor(changes, "after")));
    const editor = byTestId("resolve-editor");
    if (editor && c.status === "unresolved") {
      parts.push(h("button", { type: "button", onclick: () => {
        editor.value = pretty(d.document);
        editor.focus();
        toast("The resolver's document is in the editor: review it, then save it.");
      } }, "Put this document in the editor"));
    }
  }
  if (stats) parts.push(h("p", { class: "hint" }, stats));
  fill(out, parts);
}

export default { init, show };
