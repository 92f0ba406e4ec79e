// Tests of diff.js: node web/ui/common/diff.test.mjs (exits 1 on a failure).
import assert from "node:assert/strict";
import {
  describeChange, diff, isEqual, jsonLines, linesText, marksFor, mergeMarks, pointer, threeWay, valueAt,
} from "./diff.js";

let failed = 0;
let passed = 0;
function test(name, fn) {
  try {
    fn();
    passed++;
  } catch (err) {
    failed++;
    console.error(`FAIL ${name}\n  ${String(err.stack || err).split("\n").join("\n  ")}`);
  }
}

const kinds = (changes) => changes.map((c) => `${c.kind} ${pointer(c.path)}`);

test("pointer escapes ~ and /", () => {
  assert.equal(pointer([]), "");
  assert.equal(pointer(["a", "b/c", "d~e", 0]), "/a/b~1c/d~0e/0");
});

test("isEqual ignores member order, not array order", () => {
  assert.ok(isEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 }));
  assert.ok(!isEqual([1, 2], [2, 1]));
  assert.ok(!isEqual({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!isEqual({}, []));
  assert.ok(!isEqual(null, {}));
  assert.ok(!isEqual(1, "1"));
  assert.ok(isEqual(null, null));
});

test("diff of equal values is empty", () => {
  assert.deepEqual(diff({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }), []);
  assert.deepEqual(diff("x", "x"), []);
  assert.deepEqual(diff(null, null), []);
});

test("diff finds top-level added, removed and changed members", () => {
  const d = diff({ id: "a", price: 1, note: "x" }, { id: "a", price: 2, tags: ["t"] });
  assert.deepEqual(kinds(d), ["changed /price", "removed /note", "added /tags"]);
  assert.equal(d[0].before, 1);
  assert.equal(d[0].after, 2);
  assert.equal(d[1].before, "x");
  assert.deepEqual(d[2].after, ["t"]);
});

test("diff recurses into nested objects and arrays", () => {
  const before = { a: { b: { c: 1, d: 2 } }, items: ["p1", "p2"] };
  const after = { a: { b: { c: 1, d: 3, e: 4 } }, items: ["p1", "p3", "p4"] };
  assert.deepEqual(kinds(diff(before, after)), ["changed /a/b/d", "added /a/b/e", "changed /items/1", "added /items/2"]);
  assert.deepEqual(kinds(diff({ items: [1, 2, 3] }, { items: [1] })), ["removed /items/1", "removed /items/2"]);
});

test("a change of type is one change", () => {
  assert.deepEqual(kinds(diff({ a: { b: 1 } }, { a: [1] })), ["changed /a"]);
  assert.deepEqual(kinds(diff({ a: null }, { a: {} })), ["changed /a"]);
  assert.deepEqual(kinds(diff({ a: 1 }, { a: "1" })), ["changed /a"]);
});

test("diff of whole documents: create, delete, replace", () => {
  assert.deepEqual(kinds(diff(undefined, { a: 1 })), ["added "]);
  assert.deepEqual(kinds(diff({ a: 1 }, undefined)), ["removed "]);
  assert.deepEqual(kinds(diff(null, { a: 1 })), ["changed "]);
  assert.equal(describeChange(diff(1, 2)[0]), "changed (whole document): 1 → 2");
});

test("diff can skip system properties and chosen members", () => {
  const a = { id: "x", n: 1, _ts: 1, _etag: "\"a\"", _lsn: 4, nested: { _ts: 1 } };
  const b = { id: "x", n: 1, _ts: 2, _etag: "\"b\"", _tentative: true, nested: { _ts: 2 } };
  assert.deepEqual(kinds(diff(a, b, { ignoreSystem: true })), ["changed /nested/_ts"]);
  assert.deepEqual(kinds(diff(a, b, { ignoreSystem: true, ignore: (k) => k === "nested" })), []);
});

test("marksFor shows each side's own changes", () => {
  const d = diff({ a: 1, b: 2 }, { a: 2, c: 3 });
  assert.deepEqual([...marksFor(d, "before")], [["/a", "changed"], ["/b", "removed"]]);
  assert.deepEqual([...marksFor(d, "after")], [["/a", "changed"], ["/c", "added"]]);
  assert.deepEqual([...mergeMarks(new Map([["/a", "added"]]), new Map([["/a", "changed"], ["/b", "removed"]]))],
    [["/a", "added"], ["/b", "removed"]]);
});

test("describeChange", () => {
  const [c, r, a] = diff({ price: 19.99, note: "n" }, { price: 24.99, tags: ["x"] });
  assert.equal(describeChange(c), "changed /price: 19.99 → 24.99");
  assert.equal(describeChange(r), "removed /note (was \"n\")");
  assert.equal(describeChange(a), "added /tags: [\"x\"]");
  const long = describeChange(diff({}, { s: "x".repeat(200) })[0]);
  assert.ok(long.length < 90 && long.endsWith("…"), long);
});

test("threeWay: changes from the base and the clashes", () => {
  const base = { id: "c", items: ["a"], note: "", qty: 1 };
  const existing = { id: "c", items: ["a", "b"], note: "x", qty: 1 };
  const incoming = { id: "c", items: ["a"], note: "y", qty: 2 };
  const t = threeWay(base, existing, incoming);
  assert.deepEqual(kinds(t.existing), ["added /items/1", "changed /note"]);
  assert.deepEqual(kinds(t.incoming), ["changed /note", "changed /qty"]);
  assert.deepEqual([...t.clashes], ["/note"]);
});

test("threeWay: the same change on both sides is no clash", () => {
  const t = threeWay({ a: 1, b: 1 }, { a: 2, b: 1 }, { a: 2, b: 3 });
  assert.deepEqual([...t.clashes], []);
});

test("threeWay: a change above the other side's is a clash", () => {
  const t = threeWay({ a: { b: 1, c: 1 } }, { a: "gone" }, { a: { b: 2, c: 1 } });
  assert.deepEqual([...t.clashes].sort(), ["/a", "/a/b"]);
});

test("threeWay without a base compares the two sides", () => {
  const t = threeWay(null, { id: "x", a: 1 }, { id: "x", b: 2 });
  assert.deepEqual(kinds(t.incoming), ["removed /a", "added /b"]);
  assert.deepEqual(kinds(t.existing), ["added /a", "removed /b"]);
  assert.equal(t.clashes.size, 0);
});

test("valueAt", () => {
  assert.equal(valueAt({ a: [{ b: 5 }] }, ["a", 0, "b"]), 5);
  assert.equal(valueAt({ a: 1 }, ["a", "b"]), undefined);
  assert.equal(valueAt(null, ["a"]), undefined);
});

test("jsonLines prints like JSON.stringify(v, null, 2)", () => {
  for (const v of [
    { id: "x", n: 1.5, ok: true, none: null, list: [1, "two", { three: 3 }], empty: {}, none2: [], nested: { a: { b: "c" } } },
    [],
    "plain",
    42,
    null,
    { "quote\"key": "line\nbreak", "": "" },
  ]) {
    assert.equal(linesText(jsonLines(v)), JSON.stringify(v, null, 2));
  }
});

test("jsonLines marks a path and its whole subtree", () => {
  const v = { id: "x", price: 2, tags: ["a", "b"], deep: { k: 1 } };
  const marks = new Map([["/price", "changed"], ["/tags", "added"], ["/deep/k", "changed"]]);
  const lines = jsonLines(v, marks, { clashes: new Set(["/price"]) });
  const marked = lines.map((l) => `${l.mark || "-"}${l.clash ? "!" : ""} ${pointer(l.path)}${l.close ? " close" : ""}`);
  assert.deepEqual(marked, [
    "- ",
    "- /id",
    "changed! /price",
    "added /tags",
    "added /tags/0",
    "added /tags/1",
    "added /tags close",
    "- /deep",
    "changed /deep/k",
    "- /deep close",
    "-  close",
  ]);
  assert.equal(lines[2].key, "price");
  assert.deepEqual(lines[2].parts, [["2", "j-num"]]);
  assert.equal(lines[4].key, undefined);
  assert.deepEqual(lines[4].parts, [["\"a\"", "j-str"]]);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
