// test.mjs - runs testdata/resolvers/counter-as.wasm (built by build.sh) in
// Node's WebAssembly through the edgesync ABI (resolvers/ABI.md) and checks
// its answers; then builds tests/helpers.ts (with build.sh, into a temporary
// directory) and checks the SDK's JSON helpers through it. Exits non-zero on
// a wrong answer.
//
//   node resolvers/sdk/assemblyscript/test.mjs [--bench] [--no-helpers] [path/to/counter.wasm]
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, resolve, join } from "node:path";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const bench = args.includes("--bench");
const helpers = !args.includes("--no-helpers");
const wasmPath = args.find((a) => !a.startsWith("--")) ?? resolve(here, "../../../testdata/resolvers/counter-as.wasm");

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });
const ABI_EXPORTS = ["memory", "edgesync_abi_v1", "edgesync_input", "edgesync_resolve", "_initialize"];

// ------------------------------------------------------------- the guest

// Guest loads a resolver module, checks it against the ABI's rules on imports
// and exports, and calls it through the ABI.
class Guest {
  constructor(path) {
    this.module = new WebAssembly.Module(readFileSync(path));
    const imports = WebAssembly.Module.imports(this.module);
    for (const imp of imports) {
      assert.equal(imp.module, "wasi_snapshot_preview1", `import ${imp.module}.${imp.name} is not WASI`);
      assert.equal(imp.kind, "function", `import ${imp.module}.${imp.name} is not a function`);
    }
    const exports = Object.fromEntries(WebAssembly.Module.exports(this.module).map((e) => [e.name, e.kind]));
    assert.equal(exports.memory, "memory", "no exported memory");
    for (const name of ["edgesync_abi_v1", "edgesync_input", "edgesync_resolve"]) {
      assert.equal(exports[name], "function", `missing export ${name}`);
    }
    for (const name of Object.keys(exports)) {
      assert.ok(ABI_EXPORTS.includes(name), `unexpected export ${name}`); // no _start, no edgesync_fuel*
    }
    // A WASI with nothing in it, like the hub's: fd_write to 1 and 2 is
    // kept, everything else fails with ENOSYS (52).
    this.log = "";
    const wasi = {
      fd_write: (fd, iovs, iovsLen, written) => {
        const view = new DataView(this.memory.buffer);
        let n = 0;
        for (let i = 0; i < iovsLen; i++) {
          const p = view.getUint32(iovs + 8 * i, true);
          const len = view.getUint32(iovs + 8 * i + 4, true);
          if (fd === 1 || fd === 2) this.log += new TextDecoder().decode(new Uint8Array(this.memory.buffer, p, len));
          n += len;
        }
        view.setUint32(written, n, true);
        return 0;
      },
    };
    this.importObject = { wasi_snapshot_preview1: {} };
    for (const imp of imports) this.importObject.wasi_snapshot_preview1[imp.name] = wasi[imp.name] ?? (() => 52);
    this.instantiate();
  }

  // instantiate makes a fresh instance (as the hub does after a failure).
  instantiate(init = true) {
    const instance = new WebAssembly.Instance(this.module, this.importObject);
    this.abi = instance.exports;
    this.memory = instance.exports.memory;
    if (init) this.abi._initialize?.();
  }

  // callBytes runs one input through the ABI and returns the output bytes.
  callBytes(bytes, lenOverride) {
    const ptr = this.abi.edgesync_input(bytes.length);
    if (ptr !== 0) new Uint8Array(this.memory.buffer, ptr, bytes.length).set(bytes);
    else assert.ok(this.allowNoInput, "edgesync_input returned 0");
    const r = BigInt.asUintN(64, this.abi.edgesync_resolve(lenOverride ?? bytes.length));
    const outPtr = Number(r >> 32n);
    const outLen = Number(r & 0xffffffffn);
    assert.ok(outPtr + outLen <= this.memory.buffer.byteLength, "output outside memory");
    return new Uint8Array(this.memory.buffer, outPtr, outLen);
  }

  // call runs one input (a string or bytes) and returns the output text.
  call(input, lenOverride) {
    return dec.decode(this.callBytes(typeof input === "string" ? enc.encode(input) : input, lenOverride));
  }
}

// checkDecision checks the output against the ABI's rules and returns it parsed.
function checkDecision(text) {
  const out = JSON.parse(text);
  assert.equal(typeof out, "object");
  for (const k of Object.keys(out)) assert.ok(["action", "document", "reason"].includes(k), `unknown field ${k}`);
  assert.ok(["incoming", "existing", "merge", "delete", "defer"].includes(out.action), `bad action ${out.action}`);
  if ("document" in out) {
    assert.equal(out.action, "merge", "document without merge");
    assert.ok(out.document !== null && typeof out.document === "object" && !Array.isArray(out.document));
  }
  if (out.action === "merge") assert.ok("document" in out, "merge without document");
  if ("reason" in out) {
    assert.equal(typeof out.reason, "string");
    assert.ok(enc.encode(out.reason).length <= 1024, "reason over 1 KiB");
  }
  return out;
}

let failed = 0;
let passed = 0;
const short = (s) => (s !== undefined && s.length > 400 ? `${s.slice(0, 200)}...(${s.length} chars)...${s.slice(-100)}` : s);

// test runs fn and reports it; fn throws on a wrong answer.
function test(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok    ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL  ${name}\n      ${short(String(e.message)).split("\n").join("\n      ")}`);
  }
}

// check runs one case {name, in, len?, want? | defer?} on guest g.
function check(g, c) {
  test(c.name, () => {
    const got = g.call(c.in, c.len);
    const out = checkDecision(got);
    if (c.want !== undefined) {
      assert.equal(got, c.want, `got ${short(got)}`);
    } else {
      assert.equal(out.action, "defer", `got ${short(got)}`);
      assert.match(out.reason, c.defer);
    }
  });
}

function input({ kind = "replace", incoming, existing, base, isTombstone }) {
  const doc = (d) => (d === undefined ? "null" : d);
  return `{"kind":${JSON.stringify(kind)},"container":"counters","id":"c1",` +
    `"incoming":${doc(incoming)},"existing":${doc(existing)},"base":${doc(base)},` +
    `"isTombstone":${isTombstone ?? (incoming === undefined || existing === undefined)},"conflicting":[]}`;
}

// ------------------------------------------------------- counter cases

const cases = [
  {
    name: "both increment",
    in: input({ base: `{"id":"c1","count":10}`, existing: `{"id":"c1","count":13}`, incoming: `{"id":"c1","count":11}` }),
    want: `{"action":"merge","document":{"id":"c1","count":14},"reason":"counter: base 10 + both deltas"}`,
  },
  {
    name: "both decrement",
    in: input({ base: `{"id":"c1","count":10}`, existing: `{"id":"c1","count":7}`, incoming: `{"id":"c1","count":9}` }),
    want: `{"action":"merge","document":{"id":"c1","count":6},"reason":"counter: base 10 + both deltas"}`,
  },
  {
    name: "one increments, the other decrements below zero",
    in: input({ base: `{"id":"c1","count":1}`, existing: `{"id":"c1","count":-4}`, incoming: `{"id":"c1","count":3}` }),
    want: `{"action":"merge","document":{"id":"c1","count":-2},"reason":"counter: base 1 + both deltas"}`,
  },
  {
    name: "insert conflict: no base, both counts add",
    in: input({ kind: "insert", existing: `{"id":"c1","count":3}`, incoming: `{"id":"c1","count":2}` }),
    want: `{"action":"merge","document":{"id":"c1","count":5},"reason":"counter: base 0 + both deltas"}`,
  },
  {
    name: "incoming delete wins",
    in: input({ kind: "delete", base: `{"id":"c1","count":10}`, existing: `{"id":"c1","count":13}` }),
    want: `{"action":"incoming"}`,
  },
  {
    name: "existing delete stays",
    in: input({ kind: "delete", base: `{"id":"c1","count":10}`, incoming: `{"id":"c1","count":11}` }),
    want: `{"action":"existing"}`,
  },
  {
    name: "other members of existing are kept, in order, with their text",
    in: input({
      base: `{"id":"c1","count":10}`,
      existing: `{ "id" : "c1", "owner":"ann", "count" : 13 , "tags":["a", "b"], "note":"h\\u00e9 \u00e9 \ud83d\ude00" }`,
      incoming: `{"count":11,"id":"c1","owner":"bob"}`,
    }),
    want: `{"action":"merge","document":{"id":"c1","owner":"ann","count":14,"tags":["a", "b"],"note":"h\\u00e9 \u00e9 \ud83d\ude00"},"reason":"counter: base 10 + both deltas"}`,
  },
  {
    name: "a missing or null count is 0, and count is appended to existing",
    in: input({ base: `{"id":"c1","count":null}`, existing: `{"id":"c1"}`, incoming: `{"id":"c1","count":4}` }),
    want: `{"action":"merge","document":{"id":"c1","count":4},"reason":"counter: base 0 + both deltas"}`,
  },
  {
    name: "an escaped key matches, and its later duplicate is dropped (the last one counts, as in encoding/json)",
    in: input({ base: `{"id":"c1","count":1}`, existing: `{"id":"c1","c\\u006funt":5,"x":1,"count":2}`, incoming: `{"id":"c1","count":1}` }),
    want: `{"action":"merge","document":{"id":"c1","c\\u006funt":2,"x":1},"reason":"counter: base 1 + both deltas"}`,
  },
  {
    name: "int64 limits",
    in: input({ base: `{"count":-9223372036854775808}`, existing: `{"count":-1}`, incoming: `{"count":9223372036854775807}` }),
    // 9223372036854775807 + (-1) - (-9223372036854775808) overflows
    want: `{"action":"defer","reason":"counter: the merged count overflows int64"}`,
  },
  {
    name: "int64 limits, exactly",
    in: input({ base: `{"count":9223372036854775807}`, existing: `{"count":9223372036854775807}`, incoming: `{"count":-9223372036854775808}` }),
    want: `{"action":"merge","document":{"count":-9223372036854775808},"reason":"counter: base 9223372036854775807 + both deltas"}`,
  },
  {
    name: "wrap-around in the middle of the sum is fine",
    in: input({ base: `{"count":9223372036854775000}`, existing: `{"count":9223372036854775800}`, incoming: `{"count":9223372036854775000}` }),
    want: `{"action":"merge","document":{"count":9223372036854775800},"reason":"counter: base 9223372036854775000 + both deltas"}`,
  },
  {
    name: "a count that is not an integer defers",
    in: input({ base: `{"count":1}`, existing: `{"count":2}`, incoming: `{"count":1.5}` }),
    want: `{"action":"defer","reason":"incoming: count is not an integer that fits in 64 bits"}`,
  },
  {
    name: "a count too large for int64 defers",
    in: input({ base: `{"count":1}`, existing: `{"count":9223372036854775808}`, incoming: `{"count":1}` }),
    want: `{"action":"defer","reason":"existing: count is not an integer that fits in 64 bits"}`,
  },
  {
    name: "a base that is not an object defers",
    in: input({ base: `[1]`, existing: `{"count":2}`, incoming: `{"count":1}` }),
    want: `{"action":"defer","reason":"base: not a JSON object"}`,
  },
  {
    name: "a string count defers",
    in: input({ base: `{"count":1}`, existing: `{"count":"2"}`, incoming: `{"count":1}` }),
    want: `{"action":"defer","reason":"existing: count is not an integer that fits in 64 bits"}`,
  },
  // Malformed inputs: the SDK answers defer before the resolver runs.
  { name: "malformed: truncated", in: `{"kind":"replace","incoming":{"count":1}`, defer: /^resolver failed: its input is not valid: unterminated object at byte 0$/ },
  { name: "malformed: bad token", in: `{"incoming":{"count":01}}`, defer: /^resolver failed: its input is not valid: expected , or \} in an object at byte 22$/ },
  { name: "malformed: trailing bytes", in: `{"incoming":null} x`, defer: /bytes after the JSON value at byte 18$/ },
  { name: "malformed: not an object", in: `[1,2]`, defer: /the input is not a JSON object at byte 0$/ },
  { name: "malformed: not JSON at all", in: `hello`, defer: /invalid character at byte 0$/ },
  { name: "malformed: empty", in: ``, defer: /the input is empty at byte 0$/ },
  { name: "malformed: bad escape", in: `{"id":"a\\x"}`, defer: /invalid escape in string at byte 8$/ },
  { name: "malformed: bad \\u escape", in: `{"id":"a\\u12g4"}`, defer: /invalid \\u escape in string at byte 8$/ },
  { name: "malformed: control character", in: `{"id":"a\u0001"}`, defer: /control character in string/ },
  { name: "malformed: a string cut in the middle of a 16-byte block", in: `{"id":"0123456789abcdefghijklmnopqrstuvwxyz`, defer: /unterminated string at byte 6$/ },
  { name: "malformed: a control character after 16 bytes", in: `{"id":"0123456789abcdefghij\u001f"}`, defer: /control character in string at byte 27$/ },
  { name: "malformed: bad literal", in: `{"incoming":nul}`, defer: /invalid literal/ },
  { name: "malformed: isTombstone", in: `{"isTombstone":"yes"}`, defer: /isTombstone must be a boolean/ },
  { name: "malformed: kind", in: `{"kind":1}`, defer: /kind, container and id must be strings/ },
  { name: "malformed: conflicting", in: `{"conflicting":{}}`, defer: /conflicting must be an array/ },
  { name: "malformed: too deep", in: `{"incoming":${"[".repeat(200)}${"]".repeat(200)}}`, defer: /nested too deeply/ },
  { name: "malformed: bad number", in: `{"incoming":{"count":-}}`, defer: /invalid number/ },
  { name: "malformed: bad exponent", in: `{"incoming":{"count":1e}}`, defer: /invalid number/ },
  { name: "malformed: a len beyond the buffer is no input", in: `{"incoming":null}`, len: 1 << 30, defer: /the input is empty/ },
  { name: "malformed: a negative len is no input", in: `{"incoming":null}`, len: -1, defer: /the input is empty/ },
  { name: "malformed: a shorter len is what counts", in: `{"incoming":null}`, len: 5, defer: /unterminated/ },
];

const counter = new Guest(wasmPath);
for (const c of cases) check(counter, c);

// A large input grows the input and output buffers; smaller ones after it
// reuse them, and the answers stay right.
{
  const big = "x".repeat(3 << 20);
  check(counter, {
    name: "a 3 MiB document",
    in: input({ base: `{"count":1,"pad":"${big}"}`, existing: `{"count":2,"pad":"${big}"}`, incoming: `{"count":3}` }),
    want: `{"action":"merge","document":{"count":4,"pad":"${big}"},"reason":"counter: base 1 + both deltas"}`,
  });
  check(counter, { ...cases[0], name: "a small input after it" });
}

test("invalid UTF-8 inside a string is copied as is (as encoding/json accepts it)", () => {
  const bytes = enc.encode(input({ base: `{"count":1}`, existing: `{"count":2,"s":"AB"}`, incoming: `{"count":1}` }));
  bytes[bytes.indexOf(0x41)] = 0xff; // "A"
  const out = counter.callBytes(bytes);
  assert.ok(out.includes(0xff), "the byte 0xff was not copied");
  assert.match(new TextDecoder().decode(out), /"count":2/);
});

test("edgesync_input returns 0 when it cannot allocate, and the next call works", () => {
  assert.equal(counter.abi.edgesync_input(-1), 0);
  assert.equal(counter.abi.edgesync_input(0x7fffffff), 0);
  assert.equal(counter.call(cases[1].in), cases[1].want);
});

test("deterministic, and memory does not grow over 10,000 calls", () => {
  const before = counter.memory.buffer.byteLength;
  const first = counter.call(cases[6].in);
  for (let i = 0; i < 10000; i++) counter.call(cases[i % cases.length].in, cases[i % cases.length].len);
  assert.equal(counter.call(cases[6].in), first);
  assert.equal(counter.memory.buffer.byteLength, before, "memory grew");
});

// Mutated inputs (a fixed pseudo-random sequence): the resolver never traps,
// always answers a valid decision, and calls an input malformed exactly
// when JSON.parse does.
test("5,000 mutated inputs: valid answers, and the SDK's JSON grammar agrees with JSON.parse", () => {
  let seed = 12345;
  const rand = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const alphabet = `{}[]:,"\\ 0123456789-+.eEtrufalsn\tx\u00e9`;
  const typeErrors = /^resolver failed: its input is not valid: (kind, container and id must be strings|isTombstone must be a boolean|conflicting must be an array|the input is not a JSON object)/;
  const seeds = cases.filter((c) => c.want !== undefined).map((c) => c.in);
  for (let i = 0; i < 5000; i++) {
    let t = seeds[rand(seeds.length)];
    for (let m = 1 + rand(3); m > 0; m--) {
      const at = rand(t.length + 1);
      const ch = alphabet[rand(alphabet.length)];
      const op = rand(3);
      t = op === 0 ? t.slice(0, at) + ch + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + ch + t.slice(at + 1);
    }
    let got;
    try {
      got = counter.call(t);
    } catch (e) {
      throw new Error(`input ${JSON.stringify(t)}: ${e.message}`);
    }
    const out = checkDecision(got);
    let valid = true;
    try {
      JSON.parse(t);
    } catch {
      valid = false;
    }
    const saysInvalid = out.action === "defer" && out.reason.startsWith("resolver failed: its input is not valid");
    if (!valid) assert.ok(saysInvalid, `JSON.parse refuses ${JSON.stringify(t)}, the SDK answered ${got}`);
    else if (saysInvalid) assert.match(out.reason, typeErrors, `JSON.parse accepts ${JSON.stringify(t)}, the SDK answered ${got}`);
  }
});

test("a fresh instance answers the same", () => {
  counter.instantiate();
  assert.equal(counter.call(cases[0].in), cases[0].want);
});

test("without _initialize, the answer is a defer that says so", () => {
  counter.instantiate(false);
  counter.allowNoInput = true;
  const out = checkDecision(counter.call(cases[0].in));
  assert.equal(out.action, "defer");
  assert.equal(out.reason, "resolver failed: _initialize was not called");
  assert.equal(counter.abi.edgesync_input(10), 0);
  counter.allowNoInput = false;
  counter.instantiate();
});

test("the counter wrote nothing to stdout or stderr", () => assert.equal(counter.log, ""));

// ------------------------------------------------------- SDK helpers

if (helpers) {
  const dir = mkdtempSync(join(tmpdir(), "edgesync-as-"));
  let g;
  test("tests/helpers.ts builds with build.sh", () => {
    const out = join(dir, "helpers.wasm");
    execFileSync("bash", [join(here, "build.sh"), join(here, "tests/helpers.ts"), out], { stdio: ["ignore", "ignore", "inherit"] });
    g = new Guest(out);
  });
  if (g !== undefined) {
    const run = (cmd) => input({ incoming: cmd, existing: `{"id":"e","count":1}`, base: `{"id":"b"}` });
    const merged = (doc) => `{"action":"merge","document":${doc}}`;
    const helperCases = [
      { name: "elements", in: run(`{"op":"elements","arg":[ 1 , "two", {"three":[3]}, null ,[]]}`), want: merged(`{"items":[1,"two",{"three":[3]},null,[]],"n":5,"end":"NONE"}`) },
      { name: "elements of an empty array", in: run(`{"op":"elements","arg":[ ]}`), want: merged(`{"items":[],"n":0,"end":"NONE"}`) },
      { name: "elements of an object", in: run(`{"op":"elements","arg":{}}`), want: merged(`{"items":[],"n":0,"end":"INVALID"}`) },
      { name: "keys", in: run(`{"op":"keys","arg":{ "a" : 1 , "b\\n":[2] ,"c":{}}}`), want: merged(`{"keys":["a","b\\n","c"],"values":[1,[2],{}],"end":"NONE"}`) },
      { name: "keys of an empty object", in: run(`{"op":"keys","arg":{}}`), want: merged(`{"keys":[],"values":[],"end":"NONE"}`) },
      { name: "keys of an array", in: run(`{"op":"keys","arg":[1]}`), want: merged(`{"keys":[],"values":[],"end":"INVALID"}`) },
      { name: "strEquals: escapes, UTF-8 and surrogate pairs", in: run(`{"op":"strEquals","arg":"h\\u00e9llo \\ud83d\\ude00","want":"h\u00e9llo \ud83d\ude00"}`), want: merged(`{"equal":true,"literal":true}`) },
      { name: "strEquals: raw UTF-8", in: run(`{"op":"strEquals","arg":"h\u00e9llo \ud83d\ude00","want":"h\\u00e9llo \\ud83d\\ude00"}`), want: merged(`{"equal":true,"literal":true}`) },
      { name: "strEquals: different", in: run(`{"op":"strEquals","arg":"h\u00e9llo \ud83d\ude01","want":"hello"}`), want: merged(`{"equal":false,"literal":false}`) },
      { name: "strEquals: a prefix is not equal", in: run(`{"op":"strEquals","arg":"h\u00e9llo","want":"h\u00e9llo!"}`), want: merged(`{"equal":false,"literal":false}`) },
      { name: "readString and string", in: run(`{"op":"readString","arg":"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001 \u00e9 \\ud83d\\ude00 \\udc00"}`), want: merged(`{"s":"a\\"b\\\\c/d\\u0008\\u000c\\n\\r\\t\\u0001 \u00e9 \ud83d\ude00 \ufffd","units":20}`) },
      { name: "copyWithout", in: run(`{"op":"without","arg":{"a":1,"x":2,"b":{"x":3},"x":4}}`), want: merged(`{"a":1,"b":{"x":3}}`) },
      { name: "copyWithout of the only member", in: run(`{"op":"without","arg":{"x":2}}`), want: merged(`{}`) },
      { name: "copyWith appends to an empty object", in: run(`{"op":"with","arg":{},"value":[1, 2]}`), want: merged(`{"x":[1, 2]}`) },
      { name: "copyWith replaces in place", in: run(`{"op":"with","arg":{"a":1,"x":2,"b":3},"value":"v"}`), want: merged(`{"a":1,"x":"v","b":3}`) },
      { name: "copyWith of something that is not an object", in: run(`{"op":"withNotObject","arg":[1]}`), defer: /^resolver failed: copyWith: not a JSON object$/ },
      { name: "copyWith without a value", in: run(`{"op":"with","arg":{}}`), defer: /^resolver failed: copyWith: no value$/ },
      { name: "count of an array", in: run(`{"op":"count","arg":[1,[2,3],{}]}`), want: merged(`{"count":3}`) },
      { name: "count of an object", in: run(`{"op":"count","arg":{"a":1}}`), want: merged(`{"count":1}`) },
      { name: "count of a number", in: run(`{"op":"count","arg":1}`), want: merged(`{"count":-1}`) },
      { name: "int", in: run(`{"op":"int","arg":-9223372036854775808}`), want: merged(`{"ok":true,"value":-9223372036854775808}`) },
      { name: "int: -0", in: run(`{"op":"int","arg":-0}`), want: merged(`{"ok":true,"value":0}`) },
      { name: "int: a fraction", in: run(`{"op":"int","arg":1.0}`), want: merged(`{"ok":false,"value":0}`) },
      { name: "int: an exponent", in: run(`{"op":"int","arg":1e3}`), want: merged(`{"ok":false,"value":0}`) },
      { name: "int: too large", in: run(`{"op":"int","arg":9223372036854775808}`), want: merged(`{"ok":false,"value":0}`) },
      { name: "int: a string", in: run(`{"op":"int","arg":"1"}`), want: merged(`{"ok":false,"value":0}`) },
      { name: "int: absent", in: run(`{"op":"int"}`), want: merged(`{"ok":false,"value":0}`) },
      { name: "bool", in: run(`{"op":"bool","arg":true}`), want: merged(`{"ok":true,"value":true}`) },
      { name: "bool: null", in: run(`{"op":"bool","arg":null}`), want: merged(`{"ok":false,"value":false}`) },
      { name: "typeOf object", in: run(`{"op":"type","arg":{}}`), want: merged(`{"type":7,"null":false}`) },
      { name: "typeOf null", in: run(`{"op":"type","arg":null}`), want: merged(`{"type":1,"null":true}`) },
      { name: "typeOf absent", in: run(`{"op":"type"}`), want: merged(`{"type":0,"null":true}`) },
      { name: "parse with whitespace", in: run(`{"op":"parse","arg":" \\t[1, {\\"a\\": true}]\\n "}`), want: merged(`{"value":[1, {"a": true}]}`) },
      { name: "parse: invalid", in: run(`{"op":"parse","arg":"[1,]"}`), want: `{"action":"defer","reason":"invalid: invalid character"}` },
      { name: "parse: empty", in: run(`{"op":"parse","arg":""}`), want: `{"action":"defer","reason":"invalid: unexpected end of JSON"}` },
      { name: "formatInt", in: run(`{"op":"formatInt","arg":-1234567890123}`), want: merged(`{"text":"-1234567890123","len":14}`) },
      { name: "reason: truncated at 1 KiB, at a character boundary", in: run(`{"op":"reason","arg":600}`), want: `{"action":"delete","reason":"${"\u00e9".repeat(512)}"}` },
      { name: "reason: the limit exactly", in: run(`{"op":"reason","arg":511}`), want: `{"action":"delete","reason":"${"\u00e9".repeat(511)}!"}` },
      { name: "reason: under the limit", in: run(`{"op":"reason","arg":3}`), want: `{"action":"delete","reason":"\u00e9\u00e9\u00e9!"}` },
      { name: "reasonBytes and reasonInt", in: run(`{"op":"reasonBytes","arg":"a\u00e9\ud83d\ude00\\n"}`), want: `{"action":"existing","reason":"a\u00e9\ud83d\ude00\\\\n-9223372036854775808"}` },
      { name: "reason escapes", in: run(`{"op":"reasonEscapes"}`), want: `{"action":"incoming","reason":"q\\" b\\\\ n\\n t\\t c\\u0001 \ufffd end"}` },
      { name: "document before the action", in: run(`{"op":"docBeforeAction"}`), defer: /^resolver failed: document must follow action\("merge"\), once$/ },
      { name: "action twice", in: run(`{"op":"actionTwice"}`), defer: /^resolver failed: action called twice$/ },
      { name: "unknown action", in: run(`{"op":"badAction"}`), defer: /^resolver failed: unknown action/ },
      { name: "merge without a document", in: run(`{"op":"mergeNoDoc"}`), defer: /^resolver failed: the action merge needs a document$/ },
      { name: "a document that is not an object", in: run(`{"op":"docNotObject"}`), defer: /^resolver failed: its document is not a JSON object$/ },
      { name: "a document that is not JSON", in: run(`{"op":"docInvalid"}`), defer: /^resolver failed: its document is not valid JSON: invalid character at byte 5$/ },
      { name: "no action", in: run(`{"op":"nothing"}`), defer: /^resolver failed: no action was set$/ },
      {
        name: "the input as the SDK reads it",
        in: `{"kind":"delete", "id":"i\\"d","container":null,"existing":{"a":1},"isTombstone":true,"conflicting":[{"a":0}],"extra":{"x":[1]},"incoming":{"op":"input"}}`,
        want: merged(`{"kind":"delete","id":"i\\"d","container":null,"existing":{"a":1},"base":null,"conflicting":[{"a":0}],"isTombstone":true,"hasBase":false,"existingDeleted":false}`),
      },
      {
        name: "the input: escaped keys, duplicates (the last wins), missing members",
        in: `{"\\u0069ncoming":{"op":"input"},"existing":null,"existing":{"b":2}}`,
        want: merged(`{"kind":null,"id":null,"container":null,"existing":{"b":2},"base":null,"conflicting":[],"isTombstone":false,"hasBase":false,"existingDeleted":false}`),
      },
    ];
    for (const c of helperCases) check(g, c);

    test("log writes to stderr", () => {
      g.log = "";
      assert.equal(g.call(run(`{"op":"log","arg":"h\u00e9llo"}`)), `{"action":"existing"}`);
      assert.equal(g.log, "log: h\u00e9llo\n");
    });
    test("abort writes the message to stderr and traps", () => {
      g.log = "";
      assert.throws(() => g.call(run(`{"op":"abort"}`)), WebAssembly.RuntimeError);
      assert.match(g.log, /^resolver aborted: on purpose \(resolvers\/sdk\/assemblyscript\/tests\/helpers\.ts:\d+:\d+\)\n$/);
      g.instantiate();
    });
    test("a resolver that allocates gets more memory", () => {
      assert.equal(g.call(run(`{"op":"alloc","arg":5000000}`)), `{"action":"existing","reason":"5000000"}`);
      assert.ok(g.memory.buffer.byteLength > 5000000);
    });
  }
  rmSync(dir, { recursive: true, force: true });
}

if (counter.log !== "") console.log(`the counter wrote: ${counter.log}`);
console.log(failed === 0 ? `PASS (${passed} checks)` : `${failed} FAILED, ${passed} passed`);

// ------------------------------------------------------------------ bench

if (bench && failed === 0) {
  counter.instantiate();
  const runs = 100_000;
  const small = cases[0].in;
  const pad = "y".repeat(900);
  const kib = input({
    base: `{"id":"c1","owner":"ann","note":"${pad}","count":10}`,
    existing: `{"id":"c1","owner":"ann","note":"${pad}","count":13}`,
    incoming: `{"id":"c1","owner":"ann","note":"${pad}","count":11}`,
  });
  for (const [label, text] of [[`${small.length} B input`, small], [`1 KiB documents (${kib.length} B input)`, kib]]) {
    const bytes = enc.encode(text);
    // Full round trip: write the input, resolve, decode the output.
    for (let i = 0; i < 10000; i++) counter.call(bytes);
    let t = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) counter.call(bytes);
    const full = Number(process.hrtime.bigint() - t) / runs;
    // edgesync_resolve alone, on the input already in the buffer.
    const ptr = counter.abi.edgesync_input(bytes.length);
    new Uint8Array(counter.memory.buffer, ptr, bytes.length).set(bytes);
    t = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) counter.abi.edgesync_resolve(bytes.length);
    const only = Number(process.hrtime.bigint() - t) / runs;
    console.log(`bench ${label}: ${(full / 1000).toFixed(2)} µs/call round trip, ${(only / 1000).toFixed(2)} µs/call edgesync_resolve alone (${runs} calls)`);
  }
}

process.exit(failed === 0 ? 0 : 1);
