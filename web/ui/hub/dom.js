// Small DOM and formatting helpers. Data only ever reaches the page as text
// (textContent, attribute values): never as markup.

/**
 * h("button", {class: "primary", testid: "x", onclick: fn}, "Save") builds an
 * element. Attributes: class, text, testid (-> data-testid), dataset (an
 * object), on<event> (a function), hidden/disabled/... (booleans), anything
 * else through setAttribute. Children: nodes, strings (as text), arrays;
 * null, undefined and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "testid") el.dataset.testid = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else if (k in el && typeof el[k] === typeof v && k !== "list") el[k] = v;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** The element with data-testid=id under root (document by default). */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${CSS.escape(id)}"]`);
}

/** Replace el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** debounce(fn, ms): fn runs once, ms after the last call. */
export function debounce(fn, ms) {
  let t = 0;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

/**
 * throttle(fn, ms): fn runs ms after the first of a burst of calls, then
 * again after the next call: at most once per ms, and never starved by a
 * steady stream of calls (as a debounce would be).
 */
export function throttle(fn, ms) {
  let t = 0;
  return (...args) => {
    if (t) return;
    t = setTimeout(() => {
      t = 0;
      fn(...args);
    }, ms);
  };
}

let toastTimer = 0;
/** toast(message, "ok"|"error") shows one transient message (aria-live). */
export function toast(message, kind = "ok") {
  const el = byTestId("toast");
  if (!el) return;
  clearTimeout(toastTimer);
  el.classList.toggle("error", kind === "error");
  el.textContent = message;
  toastTimer = setTimeout(() => { el.textContent = ""; }, kind === "error" ? 9000 : 5000);
}

/** busy(button, true) disables a button while its request runs. */
export async function busy(button, fn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } finally {
    button.disabled = was;
    button.removeAttribute("aria-busy");
  }
}

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
export const fmtNum = (n) => (typeof n === "number" && Number.isFinite(n) ? nf.format(n) : "—");

/** Epoch seconds as a local date and time. */
export function fmtTime(sec) {
  if (!sec) return "—";
  return new Date(sec * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Epoch seconds as "12 s ago" relative to nowMs (the hub's clock when known). */
export function fmtAgo(sec, nowMs = Date.now()) {
  if (!sec) return "never";
  const d = Math.max(0, Math.round(nowMs / 1000 - sec));
  if (d < 5) return "just now";
  if (d < 60) return `${d} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (typeof n !== "number") return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${nf.format(n / 1024)} KiB`;
  return `${nf.format(n / (1 << 20))} MiB`;
}

export function fmtMicros(us) {
  if (typeof us !== "number") return "—";
  if (us < 1000) return `${nf.format(us)} µs`;
  return `${nf.format(us / 1000)} ms`;
}

/** A badge: <span class="badge kind">text</span>. */
export const badge = (text, kind = text, attrs = {}) => h("span", { class: `badge ${kind}`, ...attrs }, text);

/** Pretty JSON text for a textarea. */
export const pretty = (v) => JSON.stringify(v, null, 2);

/**
 * parseJSONObject(text, what) parses a JSON object typed by a person, or
 * throws an Error whose message says what is wrong (with the position).
 */
export function parseJSONObject(text, what = "The document") {
  let v;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${err.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Error(`${what} must be a JSON object ({...}), not ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}.`);
  }
  return v;
}

/** Remove the system properties (_ts, _etag, ...) from a document copy. */
export function withoutSystem(doc) {
  if (!doc || typeof doc !== "object") return doc;
  const out = {};
  for (const [k, v] of Object.entries(doc)) if (!["_ts", "_etag", "_lsn", "_crts", "_tentative"].includes(k)) out[k] = v;
  return out;
}

/** A table wrapped for sideways scrolling on narrow screens. */
export function table(attrs, headers, rows) {
  return h("div", { class: "table-wrap" },
    h("table", attrs,
      h("thead", {}, h("tr", {}, headers.map((th) =>
        typeof th === "string" ? h("th", { scope: "col" }, th) : h("th", { scope: "col", ...th.attrs }, th.text)))),
      h("tbody", {}, rows)));
}

/** An empty-state paragraph. */
export const empty = (text) => h("p", { class: "empty muted" }, text);
