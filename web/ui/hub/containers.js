// Containers: partition key, conflict policy, resolver version, item and
// unresolved conflict counts; change a container's policy.

import { enc, errorText } from "/ui/api.js";
import { badge, busy, byTestId, empty, fill, fmtNum, h, table, toast } from "/ui/dom.js";

const MODES = [
  ["lww", "lww — highest value at a path wins"],
  ["merge", "merge — built-in three-way merge"],
  ["custom", "custom — a wasm resolver decides"],
  ["manual", "manual — a person decides"],
];

let ctx;
let tbody = null;
const rows = new Map(); // name -> {tr, ...}
let editing = ""; // the container whose policy editor is open
let editor = null; // {tr, mode, path, resolver, version, save}

function init(c) {
  ctx = c;
  ctx.bus.on("containers", render);
  ctx.bus.on("resolvers", () => {
    render();
    if (editor) fillResolvers();
  });
  ctx.bus.on("logout", () => { editing = ""; editor = null; tbody = null; });
}

async function show() {
  byTestId("container-error").textContent = "";
  render();
  await Promise.all([ctx.loadContainers(), ctx.loadResolvers()]);
}

/** "lww on /price", "custom: cart-merge", ... */
export function policyText(p) {
  if (!p) return "lww";
  switch (p.mode) {
    case "lww": return `lww on ${p.path || "/_ts"}`;
    case "custom": return `custom: ${p.resolver || "?"}`;
    case "merge": return "merge (three-way)";
    default: return p.mode || "lww";
  }
}

/** What the badge does not say: "on /price", "cart-merge", ... */
function policyDetail(p) {
  switch (p.mode) {
    case "lww": return `on ${p.path || "/_ts"}`;
    case "custom": return p.resolver || "?";
    case "merge": return "three-way";
    case "manual": return "a person decides";
    default: return "";
  }
}

function resolverVersionText(p) {
  if (!p || p.mode !== "custom") return "—";
  if (p.resolverVersion) return `v${p.resolverVersion} (pinned)`;
  const vs = ctx.state.resolvers.filter((r) => r.name === p.resolver).map((r) => r.version);
  return vs.length ? `newest (v${Math.max(...vs)})` : "newest (none uploaded)";
}

function render() {
  const wrap = document.getElementById("containers-table-wrap");
  const list = ctx.state.containers;
  if (!tbody || !wrap.contains(tbody)) {
    const t = table({ testid: "containers-table", "aria-label": "Containers" },
      ["Container", "Partition key", "Conflict policy", "Resolver version", { text: "Items", attrs: { class: "num" } },
        { text: "Unresolved", attrs: { class: "num" } }, "Actions"], []);
    fill(wrap, t, h("div", { id: "containers-empty" }));
    tbody = t.querySelector("tbody");
    rows.clear();
  }
  const seen = new Set();
  for (const c of list) {
    seen.add(c.name);
    let r = rows.get(c.name);
    if (!r) {
      r = makeRow(c.name);
      rows.set(c.name, r);
    }
    updateRow(r, c);
    tbody.append(r.tr);
    if (editing === c.name && editor) tbody.append(editor.tr);
  }
  for (const [name, r] of rows) {
    if (!seen.has(name)) {
      r.tr.remove();
      rows.delete(name);
      if (editing === name) closeEditor();
    }
  }
  fill(document.getElementById("containers-empty"),
    list.length ? null : empty("No containers yet: define one with PUT /api/v1/containers/{name}."));
}

function makeRow(name) {
  const r = {};
  r.pk = h("td", { class: "mono" });
  r.policy = h("span", { testid: `container-policy-${name}` });
  r.version = h("td");
  r.items = h("a", { href: `#/documents?c=${encodeURIComponent(name)}` });
  r.unresolved = h("a", { href: `#/conflicts?c=${encodeURIComponent(name)}` });
  r.edit = h("button", { type: "button", testid: `container-policy-edit-${name}`, "aria-expanded": "false",
    "aria-label": `Change the conflict policy of ${name}`, onclick: () => (editing === name ? closeEditor() : openEditor(name)) }, "Change policy");
  r.tr = h("tr", { testid: `container-row-${name}` },
    h("td", {}, h("a", { href: `#/documents?c=${encodeURIComponent(name)}` }, h("strong", {}, name))),
    r.pk, h("td", {}, r.policy), r.version,
    h("td", { class: "num" }, r.items), h("td", { class: "num" }, r.unresolved), h("td", {}, r.edit));
  return r;
}

function updateRow(r, c) {
  r.pk.textContent = c.partitionKey;
  const p = c.conflictPolicy || {};
  fill(r.policy, badge(p.mode || "lww", "info"), " ", policyDetail(p));
  r.version.textContent = resolverVersionText(p);
  r.items.textContent = fmtNum(c.itemCount);
  r.unresolved.textContent = fmtNum(c.unresolvedConflicts);
  r.unresolved.className = c.unresolvedConflicts > 0 ? "badge unresolved" : "";
}

function openEditor(name) {
  closeEditor();
  const c = ctx.container(name);
  if (!c) return;
  editing = name;
  const p = c.conflictPolicy || {};
  const id = (s) => `policy-${s}`;
  const mode = h("select", { id: id("mode"), testid: `container-policy-mode-${name}` },
    MODES.map(([v, label]) => h("option", { value: v, selected: v === (p.mode || "lww") }, label)));
  const path = h("input", { id: id("path"), testid: `container-policy-path-${name}`, value: p.path || "", placeholder: "/_ts",
    spellcheck: "false", autocomplete: "off" });
  const resolver = h("select", { id: id("resolver"), testid: `container-policy-resolver-${name}` });
  const version = h("select", { id: id("version"), testid: `container-policy-version-${name}` });
  const save = h("button", { type: "submit", class: "primary", testid: `container-policy-save-${name}` }, "Save policy");
  const pathField = h("div", { class: "field" }, h("label", { for: id("path") }, "Numeric path (highest wins)"), path);
  const resolverField = h("div", { class: "field" }, h("label", { for: id("resolver") }, "Resolver"), resolver);
  const versionField = h("div", { class: "field" }, h("label", { for: id("version") }, "Resolver version"), version);
  const form = h("form", { class: "policy-form", novalidate: true, "aria-label": `Conflict policy of ${name}` },
    h("div", { class: "fields" },
      h("div", { class: "field" }, h("label", { for: id("mode") }, "Conflict policy"), mode),
      pathField, resolverField, versionField),
    h("p", { class: "hint" }, "New conflicts use the new policy; versions already confirmed keep the policy that produced them."),
    h("div", { class: "row" }, save, h("button", { type: "button", onclick: () => { closeEditor(); rows.get(name)?.edit.focus(); } }, "Cancel")));
  editor = { tr: h("tr", { class: "editor-row" }, h("td", { colspan: "7" }, form)), mode, path, resolver, version, save, p,
    pathField, resolverField, versionField };
  const sync = () => {
    pathField.hidden = mode.value !== "lww";
    resolverField.hidden = versionField.hidden = mode.value !== "custom";
  };
  mode.addEventListener("change", sync);
  resolver.addEventListener("change", fillVersions);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    savePolicy(name);
  });
  fillResolvers();
  sync();
  const r = rows.get(name);
  r.edit.setAttribute("aria-expanded", "true");
  r.tr.after(editor.tr);
  mode.focus();
}

function fillResolvers() {
  const { resolver, p } = editor;
  const current = resolver.value || p.resolver || "";
  const names = [...new Set(ctx.state.resolvers.map((r) => r.name))];
  if (current && !names.includes(current)) names.push(current);
  fill(resolver, names.length ? null : h("option", { value: "" }, "(no resolvers uploaded)"),
    names.map((n) => h("option", { value: n, selected: n === current }, n)));
  fillVersions();
}

function fillVersions() {
  const { resolver, version, p } = editor;
  const current = version.value || (p.resolver === resolver.value && p.resolverVersion ? String(p.resolverVersion) : "0");
  const vs = ctx.state.resolvers.filter((r) => r.name === resolver.value).map((r) => r.version).sort((a, b) => b - a);
  fill(version, h("option", { value: "0", selected: current === "0" }, "newest (follows uploads)"),
    vs.map((v) => h("option", { value: String(v), selected: String(v) === current }, `v${v} (pinned)`)));
}

function closeEditor() {
  if (editor) editor.tr.remove();
  const r = rows.get(editing);
  if (r) r.edit.setAttribute("aria-expanded", "false");
  editor = null;
  editing = "";
}

async function savePolicy(name) {
  const errEl = byTestId("container-error");
  errEl.textContent = "";
  const c = ctx.container(name);
  const { mode, path, resolver, version, save } = editor;
  const policy = { mode: mode.value };
  if (mode.value === "lww" && path.value.trim()) {
    policy.path = path.value.trim();
    if (!policy.path.startsWith("/") || policy.path.length < 2) {
      errEl.textContent = `${name}: the path must start with "/" and name a property, like /price.`;
      path.focus();
      return;
    }
  }
  if (mode.value === "custom") {
    if (!resolver.value) {
      errEl.textContent = `${name}: a custom policy needs a resolver: upload one first (Resolvers).`;
      resolver.focus();
      return;
    }
    policy.resolver = resolver.value;
    if (version.value !== "0") policy.resolverVersion = Number(version.value);
  }
  await busy(save, async () => {
    try {
      await ctx.api(`/api/v1/containers/${enc(name)}`, { method: "PUT", json: { partitionKey: c.partitionKey, conflictPolicy: policy } });
      closeEditor();
      toast(`${name}: conflict policy is now ${policyText(policy)}.`);
      await ctx.loadContainers();
      rows.get(name)?.edit.focus();
    } catch (err) {
      errEl.textContent = err.handled ? "" : `${name}: ${errorText(err)}`;
    }
  });
}

export default { init, show };
