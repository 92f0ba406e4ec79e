// Resolvers: upload a .wasm under a name (a new version each time the bytes
// change), and every version with its call statistics.

import { enc, errorText } from "/ui/api.js";
import { busy, byTestId, empty, fill, fmtBytes, fmtMicros, fmtNum, fmtTime, h, table, throttle, toast } from "/ui/dom.js";

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d]; // "\0asm"
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

let ctx;

function init(c) {
  ctx = c;
  ctx.bus.on("resolvers", render);
  ctx.bus.on("containers", render);
  // Calls happen when conflicts are decided: refresh the statistics then.
  const refresh = throttle(() => {
    if (ctx.state.view === "resolvers") ctx.loadResolvers();
  }, 1000);
  ctx.bus.on("change", refresh);
  ctx.bus.on("conflict", refresh);
  document.getElementById("resolver-form").addEventListener("submit", upload);
  byTestId("resolver-file").addEventListener("change", () => {
    const f = byTestId("resolver-file").files[0];
    const name = byTestId("resolver-name");
    byTestId("resolver-error").textContent = "";
    if (f && !name.value.trim()) {
      const guess = f.name.replace(/\.wasm$/i, "").replace(/[^A-Za-z0-9._-]/g, "-").replace(/^\.+/, "");
      if (guess) name.value = guess;
    }
  });
}

async function show() {
  render();
  await Promise.all([ctx.loadResolvers(), ctx.loadContainers()]);
}

/** isWasm(bytes): the module starts with the magic "\0asm". */
export function isWasm(bytes) {
  return bytes.length >= 4 && WASM_MAGIC.every((b, i) => bytes[i] === b);
}

function usedBy(r, newest) {
  return ctx.state.containers
    .filter((c) => c.conflictPolicy && c.conflictPolicy.mode === "custom" && c.conflictPolicy.resolver === r.name &&
      (c.conflictPolicy.resolverVersion ? c.conflictPolicy.resolverVersion === r.version : r.version === newest))
    .map((c) => c.name);
}

function failuresText(f) {
  const parts = Object.entries(f || {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}

function render() {
  const wrap = document.getElementById("resolvers-table-wrap");
  const rs = ctx.state.resolvers.slice().sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version);
  const newest = new Map();
  for (const r of rs) newest.set(r.name, Math.max(newest.get(r.name) || 0, r.version));
  const num = (text) => ({ text, attrs: { class: "num" } });
  const rows = rs.map((r) => {
    const s = r.stats || {};
    const used = usedBy(r, newest.get(r.name));
    const fails = failuresText(s.failures);
    return h("tr", { testid: `resolver-row-${r.name}-${r.version}` },
      h("td", {}, h("strong", {}, r.name)),
      h("td", { class: "num" }, `v${r.version}`, r.version === newest.get(r.name) ? h("span", { class: "hint" }, " newest") : null),
      h("td", { class: "num" }, fmtBytes(r.size)),
      h("td", { class: "mono", title: r.sha256 || "" }, (r.sha256 || "").slice(0, 12)),
      h("td", {}, fmtTime(r.uploadedAt)),
      h("td", { class: "num" }, fmtNum(s.calls ?? 0)),
      h("td", { class: fails === "none" ? "muted" : "warn-text" }, fails),
      h("td", { class: "num" }, s.calls ? fmtMicros(s.p50Micros) : "—"),
      h("td", { class: "num" }, s.calls ? fmtMicros(s.p99Micros) : "—"),
      h("td", {}, used.length ? used.join(", ") : h("span", { class: "muted" }, "—")));
  });
  fill(wrap,
    table({ testid: "resolvers-table", "aria-label": "Resolver versions" },
      ["Name", num("Version"), num("Size"), "SHA-256", "Uploaded", num("Calls"), "Failures", num("p50"), num("p99"), "Used by"], rows),
    rs.length ? null : empty("No resolvers yet: upload a .wasm module built with a resolver SDK."));
}

async function upload(e) {
  e.preventDefault();
  const errEl = byTestId("resolver-error");
  const nameEl = byTestId("resolver-name");
  const fileEl = byTestId("resolver-file");
  errEl.textContent = "";
  const name = nameEl.value.trim();
  if (!name || !NAME_RE.test(name)) {
    errEl.textContent = name ? `"${name}" is not a valid resolver name: use letters, digits, "-", "_" and "." (not first).` : "Give the resolver a name.";
    nameEl.focus();
    return;
  }
  const file = fileEl.files[0];
  if (!file) {
    errEl.textContent = "Choose a .wasm file.";
    fileEl.focus();
    return;
  }
  let bytes;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch (err) {
    errEl.textContent = `Cannot read ${file.name}: ${err.message}`;
    return;
  }
  if (!isWasm(bytes)) {
    errEl.textContent = `${file.name} is not a WebAssembly module: it does not start with the \\0asm magic bytes. Upload the compiled .wasm, not its source.`;
    fileEl.focus();
    return;
  }
  const button = byTestId("resolver-upload");
  await busy(button, async () => {
    button.textContent = "Uploading…";
    try {
      const { status, body: r } = await ctx.api(`/api/v1/resolvers/${enc(name)}`,
        { method: "PUT", body: bytes, contentType: "application/wasm", withStatus: true });
      const v = r && r.version ? `v${r.version}` : "";
      toast(status === 201 ? `Uploaded ${name} ${v}.` : `${name}: the same module as ${v || "before"}; nothing changed.`);
      fileEl.value = "";
      await ctx.loadResolvers();
    } catch (err) {
      errEl.textContent = err.handled ? "" : `${name}: ${errorText(err)}`;
    } finally {
      button.textContent = "Upload";
    }
  });
}

export default { init, show };
