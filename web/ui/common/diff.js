// JSON diff and highlighting, shared by the hub dashboard and the edge page.
//
// The pure functions (diff, threeWay, jsonLines, ...) run in node too
// (diff.test.mjs); renderJSON builds DOM and needs a document.
//
// Paths are arrays of keys (strings for object members, numbers for array
// indexes); pointer() turns one into a JSON pointer ("/items/0"), the key of
// the marks maps below.

/** System properties set by the replica (docs/architecture.md, Items). */
export const SYSTEM_KEYS = Object.freeze(["_ts", "_etag", "_lsn", "_crts", "_tentative"]);

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** pointer(["a", "b/c", 0]) -> "/a/b~1c/0"; the root is "". */
export function pointer(path) {
  return path.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

/** Deep equality of two JSON values (object member order does not matter). */
export function isEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => isEqual(v, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && isEqual(a[k], b[k]));
  }
  return false; // different primitives, or a primitive and a container
}

/**
 * diff(before, after, opts) lists what changed from before to after, depth
 * first, in document order: [{path, kind, before, after}] with kind "added",
 * "removed" or "changed". Objects are compared member by member and arrays
 * index by index, recursively; a value that changes type (or a primitive that
 * changes) is one "changed" entry. Equal values give [].
 *
 * opts.ignoreSystem: skip the top-level system properties (_ts, _etag, ...).
 * opts.ignore(key, path): skip a member (path is its parent's path).
 */
export function diff(before, after, opts = {}) {
  const out = [];
  const skip = (key, path) =>
    (opts.ignoreSystem && path.length === 0 && SYSTEM_KEYS.includes(key)) ||
    (opts.ignore ? opts.ignore(key, path) : false);
  const walk = (a, b, path) => {
    if (isObject(a) && isObject(b)) {
      for (const k of Object.keys(a)) {
        if (skip(k, path)) continue;
        if (Object.hasOwn(b, k)) walk(a[k], b[k], [...path, k]);
        else out.push({ path: [...path, k], kind: "removed", before: a[k], after: undefined });
      }
      for (const k of Object.keys(b)) {
        if (skip(k, path) || Object.hasOwn(a, k)) continue;
        out.push({ path: [...path, k], kind: "added", before: undefined, after: b[k] });
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      const n = Math.max(a.length, b.length);
      for (let i = 0; i < n; i++) {
        if (i >= b.length) out.push({ path: [...path, i], kind: "removed", before: a[i], after: undefined });
        else if (i >= a.length) out.push({ path: [...path, i], kind: "added", before: undefined, after: b[i] });
        else walk(a[i], b[i], [...path, i]);
      }
      return;
    }
    if (a === undefined && b !== undefined) out.push({ path, kind: "added", before: a, after: b });
    else if (b === undefined && a !== undefined) out.push({ path, kind: "removed", before: a, after: b });
    else if (!isEqual(a, b)) out.push({ path, kind: "changed", before: a, after: b });
  };
  walk(before, after, []);
  return out;
}

/**
 * marksFor(changes, side) is the Map pointer -> kind to highlight on one side
 * of a diff: "before" shows removed and changed paths, "after" added and
 * changed ones.
 */
export function marksFor(changes, side) {
  const m = new Map();
  for (const c of changes) {
    if (side === "before" && c.kind === "added") continue;
    if (side === "after" && c.kind === "removed") continue;
    m.set(pointer(c.path), c.kind);
  }
  return m;
}

/**
 * threeWay(base, existing, incoming, opts) compares both sides of a conflict
 * with their common ancestor. Without a base (null or undefined) each side
 * is compared with the other. Returns {existing, incoming, clashes}: the two
 * diffs from the base (or from the other side), and the pointers both sides
 * changed differently (where a three-way merge has to pick; none without a
 * base).
 */
export function threeWay(base, existing, incoming, opts = {}) {
  if (base === null || base === undefined) {
    const d = diff(existing, incoming, opts);
    const flipped = d.map((c) => ({
      path: c.path,
      kind: c.kind === "added" ? "removed" : c.kind === "removed" ? "added" : "changed",
      before: c.after,
      after: c.before,
    }));
    return { existing: flipped, incoming: d, clashes: new Set() };
  }
  const de = diff(base, existing, opts);
  const di = diff(base, incoming, opts);
  const related = (p, q) => p === q || p.startsWith(q + "/") || q.startsWith(p + "/");
  const pe = de.map((c) => pointer(c.path));
  const clashes = new Set();
  // A clash: both sides changed the same path, or one a path inside the
  // other's, and they do not agree on the result.
  for (const c of di) {
    const p = pointer(c.path);
    const hits = pe.filter((q) => related(p, q));
    if (hits.length === 0 || isEqual(valueAt(existing, c.path), valueAt(incoming, c.path))) continue;
    clashes.add(p);
    for (const q of hits) clashes.add(q);
  }
  return { existing: de, incoming: di, clashes };
}

/** valueAt(v, path) is the value at path in v, or undefined. */
export function valueAt(v, path) {
  for (const k of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/** The union of two marks maps; the first wins where both mark a path. */
export function mergeMarks(a, b) {
  const m = new Map(b);
  for (const [k, v] of a) m.set(k, v);
  return m;
}

/** A short text for one value in a change summary ("…" past max characters). */
export function shortJSON(v, max = 60) {
  if (v === undefined) return "—";
  const s = JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** A one-line description of a change: "changed /price: 19.99 → 24.99". */
export function describeChange(c) {
  const p = pointer(c.path) || "(whole document)";
  if (c.kind === "added") return `added ${p}: ${shortJSON(c.after)}`;
  if (c.kind === "removed") return `removed ${p} (was ${shortJSON(c.before)})`;
  return `changed ${p}: ${shortJSON(c.before)} → ${shortJSON(c.after)}`;
}

/**
 * jsonLines(value, marks, opts) pretty-prints a JSON value as lines, like
 * JSON.stringify(value, null, 2), each line with what it needs to be
 * rendered and highlighted:
 *
 *   {depth, key, parts: [[text, class]...], comma, mark, path}
 *
 * key is the member name (undefined for array elements and the root),
 * parts the value tokens (class "j-str", "j-num", "j-lit" or "j-punct"),
 * mark the kind from marks (a Map pointer -> kind) for this line: a marked
 * path marks its whole subtree. opts.clashes (a Set of pointers) adds
 * clash: true to the lines under a clash.
 */
export function jsonLines(value, marks = new Map(), opts = {}) {
  const lines = [];
  const clashes = opts.clashes || new Set();
  const emit = (v, key, path, depth, inherited, inClash, last) => {
    const p = pointer(path);
    const mark = marks.get(p) || inherited;
    const clash = inClash || clashes.has(p);
    const comma = !last;
    const line = (parts, c = comma) => lines.push({ depth, key, parts, comma: c, mark, clash, path });
    if (Array.isArray(v) || isObject(v)) {
      const arr = Array.isArray(v);
      const keys = arr ? v.map((_, i) => i) : Object.keys(v);
      const [open, close] = arr ? ["[", "]"] : ["{", "}"];
      if (keys.length === 0) {
        line([[open + close, "j-punct"]]);
        return;
      }
      line([[open, "j-punct"]], false);
      keys.forEach((k, i) =>
        emit(v[k], arr ? undefined : k, [...path, k], depth + 1, mark, clash, i === keys.length - 1));
      lines.push({ depth, key: undefined, parts: [[close, "j-punct"]], comma, mark, clash, path, close: true });
      return;
    }
    line([tokenOf(v)]);
  };
  emit(value, undefined, [], 0, undefined, false, true);
  return lines;
}

function tokenOf(v) {
  if (typeof v === "string") return [JSON.stringify(v), "j-str"];
  if (typeof v === "number") return [JSON.stringify(v), "j-num"];
  if (v === undefined) return ["undefined", "j-lit"];
  return [JSON.stringify(v), "j-lit"]; // true, false, null
}

/** The plain text of jsonLines (equal to JSON.stringify(value, null, 2)). */
export function linesText(lines) {
  return lines
    .map((l) => "  ".repeat(l.depth) + (l.key !== undefined ? JSON.stringify(l.key) + ": " : "") +
      l.parts.map((p) => p[0]).join("") + (l.comma ? "," : ""))
    .join("\n");
}

const MARK_LABEL = { added: "added", removed: "removed", changed: "changed" };

/**
 * renderJSON(value, marks, opts) returns a <pre class="json"> with the
 * pretty-printed value; marked lines are <mark class="d-added|d-removed|
 * d-changed"> (plus "d-clash" under opts.clashes). All text goes in through
 * textContent: a document can never inject markup. opts.doc: the document
 * to build with (default: the global one). A value of undefined renders as
 * opts.empty (default "(none)").
 */
export function renderJSON(value, marks = new Map(), opts = {}) {
  const doc = opts.doc || globalThis.document;
  const pre = doc.createElement("pre");
  pre.className = "json";
  if (value === undefined) {
    pre.classList.add("json-empty");
    pre.textContent = opts.empty ?? "(none)";
    return pre;
  }
  const span = (text, cls) => {
    const s = doc.createElement("span");
    if (cls) s.className = cls;
    s.textContent = text;
    return s;
  };
  for (const l of jsonLines(value, marks, opts)) {
    const el = doc.createElement(l.mark ? "mark" : "span");
    el.className = "jl" + (l.mark ? " d-" + l.mark : "") + (l.clash ? " d-clash" : "");
    if (l.mark) el.title = MARK_LABEL[l.mark] + (l.clash ? ", changed on both sides" : "") + ": " + (pointer(l.path) || "/");
    el.append("  ".repeat(l.depth));
    if (l.key !== undefined) el.append(span(JSON.stringify(l.key), "j-key"), ": ");
    for (const [text, cls] of l.parts) el.append(span(text, cls));
    if (l.comma) el.append(",");
    el.append("\n");
    pre.append(el);
  }
  return pre;
}
