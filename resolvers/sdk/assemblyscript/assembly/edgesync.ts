// edgesync.ts - AssemblyScript SDK for edgesync conflict resolvers
// (resolvers/ABI.md, version 1).
//
// A resolver is one function, registered at the top level of the entry file,
// which also re-exports the ABI:
//
//     import { Input, Output, register } from "<sdk>/assembly/edgesync";
//     export * from "<sdk>/assembly/abi";
//
//     function resolve(input: Input, out: Output): void {
//       if (input.incomingDeleted) { out.keepIncoming(); return; }
//       out.keepExisting();
//     }
//     register(resolve);
//
// Build it with resolvers/sdk/assemblyscript/build.sh (README.md has the asc
// flags). The SDK owns the ABI exports, a grow-only input buffer that is
// reused for every call, and the output buffer. It validates the whole input
// before calling the resolver (a malformed input is answered with a defer
// without calling it), and checks what the resolver wrote: a builder error,
// a missing action, or a merge document that is not a JSON object becomes
// {"action":"defer","reason":"resolver failed: ..."}.
//
// JSON is handled as spans over the input: a Span (a u64) holds the address
// of a JSON value in its high 32 bits and its length in the low 32 bits, the
// same packing as the return value of edgesync_resolve. Nothing is decoded
// into a tree, and nothing here allocates except readString and spanText:
// with the stub runtime (the default), which never frees, a resolver that
// allocates on every call makes its memory grow until the hub replaces the
// instance; with the minimal or incremental runtime the SDK collects after
// every call. Every function that walks JSON checks the grammar as it goes
// (RFC 8259, at most MAX_DEPTH levels of nesting) and never reads outside the
// span it was given, so it is safe on spans a resolver builds itself too.
// Like Go's encoding/json, bytes of 0x80 and above inside strings are not
// checked to be valid UTF-8 when validating.

// ------------------------------------------------------------------ spans

/** A run of bytes in linear memory: address << 32 | length. */
export type Span = u64;

/** "absent": a member that is not there, the end of an iteration. */
export const NONE: Span = 0;

/** "malformed": the JSON walked was not what was asked for, or is invalid. */
export const INVALID: Span = 1;

/** The deepest nesting of arrays and objects accepted. */
export const MAX_DEPTH: i32 = 128;

/** The longest reason the hub accepts, in bytes (the SDK truncates to it). */
export const MAX_REASON: usize = 1024;

/** spanOf returns the span of len bytes at ptr. */
// @ts-ignore: decorator
@inline export function spanOf(ptr: usize, len: usize): Span {
  return (<u64>ptr << 32) | <u64>(<u32>len);
}

/** spanPtr returns the address of the first byte of s (0 for NONE/INVALID). */
// @ts-ignore: decorator
@inline export function spanPtr(s: Span): usize {
  return <usize>(s >>> 32);
}

/** spanLen returns the length of s in bytes. */
// @ts-ignore: decorator
@inline export function spanLen(s: Span): usize {
  return spanPtr(s) == 0 ? 0 : <usize>(<u32>s);
}

/** isPresent reports whether s is a real span (neither NONE nor INVALID). */
// @ts-ignore: decorator
@inline export function isPresent(s: Span): bool {
  return spanPtr(s) != 0;
}

/** spanText copies the bytes of s into a new string, decoded as UTF-8 (allocates; for logs and tests). */
export function spanText(s: Span): string {
  return String.UTF8.decodeUnsafe(spanPtr(s), spanLen(s));
}

// ------------------------------------------------------- character codes

// @ts-ignore: decorator
@inline const QUOTE: u32 = 0x22;
// @ts-ignore: decorator
@inline const BACKSLASH: u32 = 0x5c;
// @ts-ignore: decorator
@inline const LBRACE: u32 = 0x7b;
// @ts-ignore: decorator
@inline const RBRACE: u32 = 0x7d;
// @ts-ignore: decorator
@inline const LBRACKET: u32 = 0x5b;
// @ts-ignore: decorator
@inline const RBRACKET: u32 = 0x5d;
// @ts-ignore: decorator
@inline const COMMA: u32 = 0x2c;
// @ts-ignore: decorator
@inline const COLON: u32 = 0x3a;
// @ts-ignore: decorator
@inline const MINUS: u32 = 0x2d;
// @ts-ignore: decorator
@inline const REPLACEMENT: u32 = 0xfffd;

// @ts-ignore: decorator
@inline function byteAt(p: usize): u32 {
  return <u32>load<u8>(p);
}

// @ts-ignore: decorator
@inline function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

// @ts-ignore: decorator
@inline function isSpace(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function hexValue(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  c |= 0x20; // lower case
  if (c - 0x61 < 6) return <i32>(c - 0x61 + 10);
  return -1;
}

function skipSpace(p: usize, end: usize): usize {
  while (p < end && isSpace(byteAt(p))) p++;
  return p;
}

// ------------------------------------------------------------ validation

// The last scan error: a static message and where it was found.
let errMsg: string = "";
let errAt: usize = 0;

/** lastError is the message of the last JSON error found by a helper ("" if none yet). */
export function lastError(): string {
  return errMsg;
}

/** lastErrorAt is the address of the byte where the last JSON error was found. */
export function lastErrorAt(): usize {
  return errAt;
}

// fail records an error and returns 0, the "failed" position of the scanners.
function fail(msg: string, at: usize): usize {
  errMsg = msg;
  errAt = at;
  return 0;
}

// The scanners take the position of the first byte of a value (no space
// before it) and the end of the span, and return the position just after
// the value, or 0 (with errMsg set) if it is not valid JSON. Spans are never
// at address 0, so 0 cannot be a real position.

// strPlain tells whether the last string scanString accepted is "plain":
// without escapes and without bytes of 0x80 and above, so that its body is
// its text, one byte a character.
let strPlain = false;

function scanString(p: usize, end: usize): usize {
  let start = p;
  let high: i32 = 0; // bytes of 0x80 and above were seen (in the high bit of a mask)
  let escaped = false;
  p++; // the opening quote
  while (true) {
    if (ASC_FEATURE_SIMD) {
      // 16 bytes at a time to the next quote, backslash or control character.
      while (end - p >= 16) {
        let v = v128.load(p);
        let m = i8x16.bitmask(v128.or(v128.or(i8x16.eq(v, i8x16.splat(0x22)), i8x16.eq(v, i8x16.splat(0x5c))), i8x16.lt_u(v, i8x16.splat(0x20))));
        let h = i8x16.bitmask(v);
        if (m != 0) {
          let k = ctz(m);
          high |= h & ((1 << k) - 1);
          p += <usize>k;
          break;
        }
        high |= h;
        p += 16;
      }
    }
    if (p >= end) return fail("unterminated string", start);
    let c = byteAt(p);
    if (c == QUOTE) {
      strPlain = high == 0 && !escaped;
      return p + 1;
    }
    if (c == BACKSLASH) {
      escaped = true;
      if (p + 1 >= end) return fail("unterminated string", start);
      let e = byteAt(p + 1);
      if (e == 0x75) { // \uXXXX
        if (end - p < 6) return fail("unterminated string", start);
        if ((hexValue(byteAt(p + 2)) | hexValue(byteAt(p + 3)) | hexValue(byteAt(p + 4)) | hexValue(byteAt(p + 5))) < 0) {
          return fail("invalid \\u escape in string", p);
        }
        p += 6;
      } else if (e == QUOTE || e == BACKSLASH || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
        p += 2;
      } else {
        return fail("invalid escape in string", p);
      }
    } else if (c < 0x20) {
      return fail("control character in string", p);
    } else {
      high |= <i32>(c >> 7);
      p++;
    }
  }
  return 0; // not reached
}

function scanDigits(p: usize, end: usize): usize {
  while (p < end && isDigit(byteAt(p))) p++;
  return p;
}

function scanNumber(p: usize, end: usize): usize {
  let start = p;
  if (byteAt(p) == MINUS) p++;
  if (p >= end || !isDigit(byteAt(p))) return fail("invalid number", start);
  if (byteAt(p) == 0x30) p++;
  else p = scanDigits(p, end);
  if (p < end && byteAt(p) == 0x2e) { // fraction
    p++;
    if (p >= end || !isDigit(byteAt(p))) return fail("invalid number", start);
    p = scanDigits(p, end);
  }
  if (p < end && (byteAt(p) | 0x20) == 0x65) { // exponent
    p++;
    if (p < end && (byteAt(p) == 0x2b || byteAt(p) == MINUS)) p++;
    if (p >= end || !isDigit(byteAt(p))) return fail("invalid number", start);
    p = scanDigits(p, end);
  }
  return p;
}

// scanWord checks the literal true, false or null (4 or 5 ASCII bytes packed little-endian in w).
function scanWord(p: usize, end: usize, w: u64, n: usize): usize {
  if (end - p < n) return fail("invalid literal", p);
  for (let i: usize = 0; i < n; i++) {
    if (byteAt(p + i) != <u32>((w >> (i << 3)) & 0xff)) return fail("invalid literal", p);
  }
  return p + n;
}

function scanObject(p: usize, end: usize, depth: i32): usize {
  if (depth >= MAX_DEPTH) return fail("nested too deeply", p);
  let start = p;
  p = skipSpace(p + 1, end);
  if (p < end && byteAt(p) == RBRACE) return p + 1;
  while (true) {
    if (p >= end) return fail("unterminated object", start);
    if (byteAt(p) != QUOTE) return fail("expected a string key", p);
    p = scanString(p, end);
    if (p == 0) return 0;
    p = skipSpace(p, end);
    if (p >= end) return fail("unterminated object", start);
    if (byteAt(p) != COLON) return fail("expected : after a key", p);
    p = skipSpace(p + 1, end);
    p = scanValue(p, end, depth + 1);
    if (p == 0) return 0;
    p = skipSpace(p, end);
    if (p >= end) return fail("unterminated object", start);
    let c = byteAt(p);
    if (c == RBRACE) return p + 1;
    if (c != COMMA) return fail("expected , or } in an object", p);
    p = skipSpace(p + 1, end);
  }
}

function scanArray(p: usize, end: usize, depth: i32): usize {
  if (depth >= MAX_DEPTH) return fail("nested too deeply", p);
  let start = p;
  p = skipSpace(p + 1, end);
  if (p < end && byteAt(p) == RBRACKET) return p + 1;
  while (true) {
    p = scanValue(p, end, depth + 1);
    if (p == 0) return 0;
    p = skipSpace(p, end);
    if (p >= end) return fail("unterminated array", start);
    let c = byteAt(p);
    if (c == RBRACKET) return p + 1;
    if (c != COMMA) return fail("expected , or ] in an array", p);
    p = skipSpace(p + 1, end);
  }
}

function scanValue(p: usize, end: usize, depth: i32): usize {
  if (p >= end) return fail("unexpected end of JSON", p);
  let c = byteAt(p);
  if (c == QUOTE) return scanString(p, end);
  if (c == LBRACE) return scanObject(p, end, depth);
  if (c == LBRACKET) return scanArray(p, end, depth);
  if (c == MINUS || isDigit(c)) return scanNumber(p, end);
  if (c == 0x74) return scanWord(p, end, 0x65757274, 4); // true
  if (c == 0x66) return scanWord(p, end, 0x65736c6166, 5); // false
  if (c == 0x6e) return scanWord(p, end, 0x6c6c756e, 4); // null
  return fail("invalid character", p);
}

/**
 * parse checks that text is exactly one JSON value, with optional whitespace
 * around it, and returns the span of the value without the whitespace, or
 * INVALID (see lastError).
 */
export function parse(text: Span): Span {
  let p = spanPtr(text);
  if (p == 0) {
    fail("no JSON", 0);
    return INVALID;
  }
  let end = p + spanLen(text);
  p = skipSpace(p, end);
  let v = p;
  p = scanValue(p, end, 0);
  if (p == 0) return INVALID;
  let e = p;
  p = skipSpace(p, end);
  if (p != end) {
    fail("bytes after the JSON value", p);
    return INVALID;
  }
  return spanOf(v, e - v);
}

/** isValid reports whether text is exactly one valid JSON value. */
export function isValid(text: Span): bool {
  return parse(text) != INVALID;
}

// ---------------------------------------------------------------- types

/** The type of a JSON value, judged by its first byte. */
export enum JsonType { Invalid = 0, Null, False, True, Number, String, Array, Object }

/** typeOf returns the type of the value v starts with (by its first non-space byte; v is not validated). */
export function typeOf(v: Span): JsonType {
  let p = spanPtr(v);
  if (p == 0) return JsonType.Invalid;
  let end = p + spanLen(v);
  p = skipSpace(p, end);
  if (p >= end) return JsonType.Invalid;
  let c = byteAt(p);
  if (c == QUOTE) return JsonType.String;
  if (c == LBRACE) return JsonType.Object;
  if (c == LBRACKET) return JsonType.Array;
  if (c == MINUS || isDigit(c)) return JsonType.Number;
  if (c == 0x74) return JsonType.True;
  if (c == 0x66) return JsonType.False;
  if (c == 0x6e) return JsonType.Null;
  return JsonType.Invalid;
}

/** isNull reports whether v is absent (NONE) or the JSON null. */
export function isNull(v: Span): bool {
  return v == NONE || typeOf(v) == JsonType.Null;
}

// ----------------------------------------------------- string decoding

// A JSON string body is decoded one code point at a time, the way
// encoding/json does: a \u escape of a surrogate pair gives the pair's code
// point, a lone surrogate gives U+FFFD, and so does invalid UTF-8.

// The position after the last decoded character.
let decPos: usize = 0;

// utf8Next decodes the UTF-8 sequence at p (p < end) and sets decPos after it.
function utf8Next(p: usize, end: usize): u32 {
  let c = byteAt(p);
  if (c < 0x80) {
    decPos = p + 1;
    return c;
  }
  let n: usize;
  let cp: u32;
  let min: u32;
  if (c - 0xc2 < 0x1e) { n = 2; cp = c & 0x1f; min = 0x80; }
  else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; min = 0x800; }
  else if (c - 0xf0 < 5) { n = 4; cp = c & 0x07; min = 0x10000; }
  else { decPos = p + 1; return REPLACEMENT; }
  if (end - p < n) { decPos = p + 1; return REPLACEMENT; }
  for (let i: usize = 1; i < n; i++) {
    let b = byteAt(p + i);
    if ((b & 0xc0) != 0x80) { decPos = p + 1; return REPLACEMENT; }
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp - 0xd800 < 0x800)) { decPos = p + 1; return REPLACEMENT; }
  decPos = p + n;
  return cp;
}

function hex4(p: usize): u32 {
  return <u32>((hexValue(byteAt(p)) << 12) | (hexValue(byteAt(p + 1)) << 8) | (hexValue(byteAt(p + 2)) << 4) | hexValue(byteAt(p + 3)));
}

// jsonNext decodes the next character of a string body at p (p < end, the
// body already validated by scanString) and sets decPos after it.
function jsonNext(p: usize, end: usize): u32 {
  let c = byteAt(p);
  if (c != BACKSLASH) return utf8Next(p, end);
  let e = byteAt(p + 1);
  decPos = p + 2;
  if (e == 0x62) return 0x08;
  if (e == 0x66) return 0x0c;
  if (e == 0x6e) return 0x0a;
  if (e == 0x72) return 0x0d;
  if (e == 0x74) return 0x09;
  if (e != 0x75) return e; // " \ /
  let u = hex4(p + 2);
  decPos = p + 6;
  if (u - 0xd800 >= 0x800) return u;
  if (u < 0xdc00 && end - decPos >= 6 && byteAt(decPos) == BACKSLASH && byteAt(decPos + 1) == 0x75) {
    let lo = hex4(decPos + 2);
    if (lo - 0xdc00 < 0x400) {
      decPos += 6;
      return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    }
  }
  return REPLACEMENT;
}

// strNext decodes the UTF-16 string at s from unit i (< len) and sets decPos (a unit index) after it.
function strNext(s: usize, i: usize, len: usize): u32 {
  let u = <u32>load<u16>(s + (i << 1));
  decPos = i + 1;
  if (u - 0xd800 >= 0x800) return u;
  if (u < 0xdc00 && i + 1 < len) {
    let lo = <u32>load<u16>(s + ((i + 1) << 1));
    if (lo - 0xdc00 < 0x400) {
      decPos = i + 2;
      return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    }
  }
  return REPLACEMENT;
}

// bodyEquals compares the string body [p, end) (validated, without its
// closing quote) with the string want, character by character.
// A plain body (see strPlain) is compared byte for unit.
function bodyEquals(p: usize, end: usize, want: string, plain: bool): bool {
  let s = changetype<usize>(want);
  let n = <usize>want.length;
  let i: usize = 0;
  if (plain) {
    if (end - p != n) return false;
    for (; i < n; i++) {
      if (<u32>load<u16>(s + (i << 1)) != byteAt(p + i)) return false;
    }
    return true;
  }
  // Fast path: ASCII bytes without escapes.
  while (p < end && i < n) {
    let c = byteAt(p);
    let u = <u32>load<u16>(s + (i << 1));
    if (c >= 0x80 || c == BACKSLASH || u >= 0x80) break;
    if (c != u) return false;
    p++;
    i++;
  }
  while (p < end && i < n) {
    let a = jsonNext(p, end);
    p = decPos;
    let b = strNext(s, i, n);
    i = decPos;
    if (a != b) return false;
  }
  return p == end && i == n;
}

/**
 * strEquals reports whether the JSON string s (with its quotes), decoded, is
 * exactly want. False if s is not a valid JSON string.
 */
export function strEquals(s: Span, want: string): bool {
  let p = spanPtr(s);
  let end = p + spanLen(s);
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != QUOTE) return false;
  let q = scanString(p, end);
  if (q == 0 || skipSpace(q, end) != end) return false;
  return bodyEquals(p + 1, q - 1, want, strPlain);
}

/**
 * readString decodes the JSON string s to a new string (this allocates), or
 * returns null if s is not a valid JSON string.
 */
export function readString(s: Span): string | null {
  let p = spanPtr(s);
  let end = p + spanLen(s);
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != QUOTE) return null;
  let q = scanString(p, end);
  if (q == 0 || skipSpace(q, end) != end) return null;
  let body = p + 1;
  let bodyEnd = q - 1;
  let units: usize = 0;
  for (let i = body; i < bodyEnd; i = decPos) units += jsonNext(i, bodyEnd) >= 0x10000 ? 2 : 1;
  let out = changetype<string>(__new(units << 1, idof<string>()));
  let o = changetype<usize>(out);
  for (let i = body; i < bodyEnd; i = decPos) {
    let cp = jsonNext(i, bodyEnd);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      store<u16>(o, <u16>(0xd800 + (cp >> 10)));
      store<u16>(o, <u16>(0xdc00 + (cp & 0x3ff)), 2);
      o += 4;
    } else {
      store<u16>(o, <u16>cp);
      o += 2;
    }
  }
  return out;
}

// -------------------------------------------------------- objects, arrays

/**
 * member finds the top-level member key of the object obj and returns the
 * span of its value: NONE if obj has no such member, INVALID if obj is not a
 * valid object. Keys are compared after decoding their escapes; when a key
 * appears more than once the last one wins (as in encoding/json).
 */
export function member(obj: Span, key: string): Span {
  let p = spanPtr(obj);
  if (p == 0) return INVALID;
  let end = p + spanLen(obj);
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != LBRACE) {
    fail("not a JSON object", p);
    return INVALID;
  }
  let found = NONE;
  let start = p;
  p = skipSpace(p + 1, end);
  if (p < end && byteAt(p) == RBRACE) return NONE;
  while (true) {
    if (p >= end) { fail("unterminated object", start); return INVALID; }
    if (byteAt(p) != QUOTE) { fail("expected a string key", p); return INVALID; }
    let k = p;
    p = scanString(p, end);
    if (p == 0) return INVALID;
    let match = bodyEquals(k + 1, p - 1, key, strPlain);
    p = skipSpace(p, end);
    if (p >= end || byteAt(p) != COLON) { fail("expected : after a key", p); return INVALID; }
    p = skipSpace(p + 1, end);
    let v = p;
    p = scanValue(p, end, 1);
    if (p == 0) return INVALID;
    if (match) found = spanOf(v, p - v);
    p = skipSpace(p, end);
    if (p >= end) { fail("unterminated object", start); return INVALID; }
    let c = byteAt(p);
    if (c == RBRACE) return found;
    if (c != COMMA) { fail("expected , or } in an object", p); return INVALID; }
    p = skipSpace(p + 1, end);
  }
}

// atClose tells, when firstItem or afterItem return 0, the end of the
// container (true) from an error (false).
let atClose = false;

// afterItem checks that prev lies inside container and returns the position
// of the next item after prev (after the comma), or 0 at the closing bracket
// close (atClose) or if the container is malformed there.
function afterItem(container: Span, prev: Span, close: u32): usize {
  let cp = spanPtr(container);
  let end = cp + spanLen(container);
  let p = spanPtr(prev) + spanLen(prev);
  atClose = false;
  if (cp == 0 || spanPtr(prev) <= cp || p > end) {
    fail("the previous item is not inside the container", spanPtr(prev));
    return 0;
  }
  p = skipSpace(p, end);
  if (p >= end) { fail("unterminated array or object", cp); return 0; }
  let c = byteAt(p);
  if (c == close) { atClose = true; return 0; }
  if (c != COMMA) { fail("expected a comma", p); return 0; }
  return skipSpace(p + 1, end);
}

// firstItem returns the position of the first item of the array or object
// container (opening bracket open), or 0 if it is empty (atClose) or is not
// one.
function firstItem(container: Span, open: u32): usize {
  let p = spanPtr(container);
  atClose = false;
  if (p == 0) { fail("no JSON", 0); return 0; }
  let end = p + spanLen(container);
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != open) {
    fail(open == LBRACKET ? "not a JSON array" : "not a JSON object", p);
    return 0;
  }
  p = skipSpace(p + 1, end);
  if (p < end && byteAt(p) == open + 2) { atClose = true; return 0; } // ] is [ + 2, } is { + 2
  return p;
}

function elementAt(arr: Span, p: usize): Span {
  if (p == 0) return atClose ? NONE : INVALID;
  let end = spanPtr(arr) + spanLen(arr);
  let e = scanValue(p, end, 1);
  return e == 0 ? INVALID : spanOf(p, e - p);
}

/**
 * firstElement returns the first element of the array arr: NONE if it is
 * empty, INVALID if arr is not an array or the element is malformed.
 * Iterate with nextElement:
 *
 *     for (let e = firstElement(a); isPresent(e); e = nextElement(a, e)) { ... }
 *
 * and tell the end (NONE) from an error (INVALID) by the last value.
 */
export function firstElement(arr: Span): Span {
  return elementAt(arr, firstItem(arr, LBRACKET));
}

/** nextElement returns the element of arr after prev: NONE at the end, INVALID if arr is malformed there. */
export function nextElement(arr: Span, prev: Span): Span {
  return elementAt(arr, afterItem(arr, prev, RBRACKET));
}

function keyAt(obj: Span, p: usize): Span {
  if (p == 0) return atClose ? NONE : INVALID;
  let end = spanPtr(obj) + spanLen(obj);
  if (p >= end) { fail("unterminated object", spanPtr(obj)); return INVALID; }
  if (byteAt(p) != QUOTE) { fail("expected a string key", p); return INVALID; }
  let e = scanString(p, end);
  return e == 0 ? INVALID : spanOf(p, e - p);
}

/**
 * firstKey returns the key of the first member of the object obj, as a JSON
 * string with its quotes (compare it with strEquals, read its value with
 * valueOf): NONE if obj is empty, INVALID if it is not an object. Iterate
 * with nextKey:
 *
 *     for (let k = firstKey(o); isPresent(k); k = nextKey(o, k)) { let v = valueOf(o, k); ... }
 */
export function firstKey(obj: Span): Span {
  return keyAt(obj, firstItem(obj, LBRACE));
}

/** valueOf returns the value of the member whose key span (from firstKey or nextKey) is key, or INVALID. */
export function valueOf(obj: Span, key: Span): Span {
  let end = spanPtr(obj) + spanLen(obj);
  let p = spanPtr(key) + spanLen(key);
  if (spanPtr(obj) == 0 || spanPtr(key) <= spanPtr(obj) || p > end) return INVALID;
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != COLON) { fail("expected : after a key", p); return INVALID; }
  p = skipSpace(p + 1, end);
  let e = scanValue(p, end, 1);
  return e == 0 ? INVALID : spanOf(p, e - p);
}

/** nextKey returns the key of the member of obj after the one whose key is prev: NONE at the end, INVALID if malformed. */
export function nextKey(obj: Span, prev: Span): Span {
  let v = valueOf(obj, prev);
  if (v == INVALID) return INVALID;
  return keyAfter(obj, v);
}

// keyAfter returns the key of the member after the one whose value is v.
function keyAfter(obj: Span, v: Span): Span {
  return keyAt(obj, afterItem(obj, v, RBRACE));
}

/** count returns the number of elements of an array or members of an object, or -1 if v is neither or is malformed. */
export function count(v: Span): i32 {
  let n = 0;
  let t = typeOf(v);
  if (t == JsonType.Array) {
    let e = firstElement(v);
    for (; isPresent(e); e = nextElement(v, e)) n++;
    return e == NONE ? n : -1;
  }
  if (t == JsonType.Object) {
    let k = firstKey(v);
    for (; isPresent(k); k = nextKey(v, k)) n++;
    return k == NONE ? n : -1;
  }
  return -1;
}

// ---------------------------------------------------------------- numbers

let intOk = false;

function parseInt64(v: Span): i64 {
  intOk = false;
  let p = spanPtr(v);
  if (p == 0) return 0;
  let end = p + spanLen(v);
  p = skipSpace(p, end);
  if (p >= end) return 0;
  let c = byteAt(p);
  if (c != MINUS && !isDigit(c)) return 0;
  let e = scanNumber(p, end);
  if (e == 0 || skipSpace(e, end) != end) return 0;
  let neg = c == MINUS;
  if (neg) p++;
  let limit: u64 = neg ? <u64>i64.MAX_VALUE + 1 : <u64>i64.MAX_VALUE;
  let m: u64 = 0;
  for (; p < e; p++) {
    let d = byteAt(p) - 0x30;
    if (d >= 10) return 0; // a fraction or an exponent
    if (m > (limit - d) / 10) return 0;
    m = m * 10 + d;
  }
  intOk = true;
  return neg ? <i64>(0 - m) : <i64>m;
}

/**
 * isInt64 reports whether v is a JSON number that is an integer fitting in
 * 64 bits, without a fraction or an exponent ("1.0" and "1e3" are not): the
 * rules of encoding/json for an int64.
 */
export function isInt64(v: Span): bool {
  parseInt64(v);
  return intOk;
}

/** readInt64 returns the integer v (see isInt64), or 0 if it is not one. */
export function readInt64(v: Span): i64 {
  return parseInt64(v);
}

/** isBool reports whether v is true or false. */
export function isBool(v: Span): bool {
  let t = typeOf(v);
  return (t == JsonType.True || t == JsonType.False) && isValid(v);
}

/** readBool reports whether v is the JSON true. */
export function readBool(v: Span): bool {
  return typeOf(v) == JsonType.True && isValid(v);
}

// formatI64 writes v in decimal at dst (room for 20 bytes) and returns the length.
function formatI64(dst: usize, v: i64): usize {
  let m: u64 = v < 0 ? <u64>0 - <u64>v : <u64>v;
  let tmp = intScratch + 24; // digits are written backwards at the end of the scratch
  let q = tmp;
  do {
    q--;
    store<u8>(q, <u8>(0x30 + <u32>(m % 10)));
    m /= 10;
  } while (m != 0);
  let n: usize = 0;
  if (v < 0) {
    store<u8>(dst, <u8>MINUS);
    n = 1;
  }
  let k = tmp - q;
  memory.copy(dst + n, q, k);
  return n + k;
}

const intScratch: usize = memory.data(24);
const intText: usize = memory.data(24);

/** formatInt returns v as JSON text, in a static buffer that the next formatInt call reuses. */
export function formatInt(v: i64): Span {
  return spanOf(intText, formatI64(intText, v));
}

// -------------------------------------------------------------- memory

// allocRaw returns size bytes of unmanaged memory, or 0 when the memory
// cannot grow, instead of the runtime's trap. With the stub runtime the
// heap's top is where the next block goes, so growing memory up to it and
// size more is enough. The other runtimes (minimal, incremental) only use
// memory they grew themselves, so there a failure to grow still traps.
function allocRaw(size: usize): usize {
  if (size > (1 << 29)) return 0;
  if (ASC_RUNTIME == 0) {
    let probe = heap.alloc(0);
    heap.free(probe); // the last block: the stub runtime takes it back
    let need = probe + size + 64;
    let have = <usize>memory.size() << 16;
    if (need > have) {
      let pages = <i32>((need - have + 0xffff) >>> 16);
      if (memory.grow(pages) < 0) return 0;
    }
  }
  return heap.alloc(size);
}

// ------------------------------------------------------------------ input

const NULL_TEXT: usize = memory.data<u8>([0x6e, 0x75, 0x6c, 0x6c]);
const EMPTY_ARRAY_TEXT: usize = memory.data<u8>([0x5b, 0x5d]);

/**
 * Input is one conflict (resolvers/ABI.md, "Input") as spans over the input
 * buffer, valid during the call. Every span is a valid JSON value.
 */
@final export class Input {
  /** the whole input */
  raw: Span = NONE;
  /** JSON string "insert", "replace" or "delete" (NONE if missing or null) */
  kind: Span = NONE;
  /** JSON string (NONE if missing or null) */
  container: Span = NONE;
  /** JSON string (NONE if missing or null) */
  id: Span = NONE;
  /** the incoming document, or null for a delete */
  incoming: Span = NONE;
  /** the existing document, or null for a delete */
  existing: Span = NONE;
  /** the common ancestor, or null when there is none */
  base: Span = NONE;
  /** JSON array of the confirmed versions between base and existing */
  conflicting: Span = NONE;
  /** incoming or existing is a delete */
  isTombstone: bool = false;
  /** incoming is null (a delete) */
  incomingDeleted: bool = false;
  /** existing is null (a delete) */
  existingDeleted: bool = false;
  /** base is not null */
  hasBase: bool = false;
}

// The members of the input that the SDK reads.
// @ts-ignore: decorator
@inline const K_OTHER = 0;
// @ts-ignore: decorator
@inline const K_INCOMING = 1;
// @ts-ignore: decorator
@inline const K_EXISTING = 2;
// @ts-ignore: decorator
@inline const K_BASE = 3;
// @ts-ignore: decorator
@inline const K_KIND = 4;
// @ts-ignore: decorator
@inline const K_CONTAINER = 5;
// @ts-ignore: decorator
@inline const K_ID = 6;
// @ts-ignore: decorator
@inline const K_TOMBSTONE = 7;
// @ts-ignore: decorator
@inline const K_CONFLICTING = 8;

// inputKey tells which member of the input the key body [p, end) names.
function inputKey(p: usize, end: usize, plain: bool): i32 {
  if (plain) {
    // A plain key is its bytes: tell the candidates apart by length and first byte.
    let n = end - p;
    if (n < 2) return K_OTHER;
    let c = byteAt(p);
    if (n == 8 && c == 0x69) return bodyEquals(p, end, "incoming", true) ? K_INCOMING : K_OTHER;
    if (n == 8 && c == 0x65) return bodyEquals(p, end, "existing", true) ? K_EXISTING : K_OTHER;
    if (n == 4 && c == 0x62) return bodyEquals(p, end, "base", true) ? K_BASE : K_OTHER;
    if (n == 4 && c == 0x6b) return bodyEquals(p, end, "kind", true) ? K_KIND : K_OTHER;
    if (n == 9 && c == 0x63) return bodyEquals(p, end, "container", true) ? K_CONTAINER : K_OTHER;
    if (n == 2 && c == 0x69) return bodyEquals(p, end, "id", true) ? K_ID : K_OTHER;
    if (n == 11 && c == 0x69) return bodyEquals(p, end, "isTombstone", true) ? K_TOMBSTONE : K_OTHER;
    if (n == 11 && c == 0x63) return bodyEquals(p, end, "conflicting", true) ? K_CONFLICTING : K_OTHER;
    return K_OTHER;
  }
  if (bodyEquals(p, end, "incoming", false)) return K_INCOMING;
  if (bodyEquals(p, end, "existing", false)) return K_EXISTING;
  if (bodyEquals(p, end, "base", false)) return K_BASE;
  if (bodyEquals(p, end, "kind", false)) return K_KIND;
  if (bodyEquals(p, end, "container", false)) return K_CONTAINER;
  if (bodyEquals(p, end, "id", false)) return K_ID;
  if (bodyEquals(p, end, "isTombstone", false)) return K_TOMBSTONE;
  if (bodyEquals(p, end, "conflicting", false)) return K_CONFLICTING;
  return K_OTHER;
}

// parseInput validates raw and fills in; false (with errMsg, errAt) if it is
// not a valid input. It validates and walks the input in one pass.
function parseInput(raw: Span, inp: Input): bool {
  let nul = spanOf(NULL_TEXT, 4);
  inp.raw = raw;
  inp.kind = NONE;
  inp.container = NONE;
  inp.id = NONE;
  inp.incoming = nul;
  inp.existing = nul;
  inp.base = nul;
  inp.conflicting = spanOf(EMPTY_ARRAY_TEXT, 2);
  inp.isTombstone = false;
  let p = spanPtr(raw);
  let end = p + spanLen(raw);
  if (p == end) {
    fail("the input is empty", p);
    return false;
  }
  p = skipSpace(p, end);
  if (p >= end || byteAt(p) != LBRACE) {
    // Say what is wrong with it if it is not JSON at all.
    if (parse(raw) != INVALID) fail("the input is not a JSON object", p);
    return false;
  }
  let start = p;
  p = skipSpace(p + 1, end);
  if (p < end && byteAt(p) == RBRACE) {
    p++;
  } else {
    while (true) {
      if (p >= end) { fail("unterminated object", start); return false; }
      if (byteAt(p) != QUOTE) { fail("expected a string key", p); return false; }
      let body = p + 1;
      p = scanString(p, end);
      if (p == 0) return false;
      let plain = strPlain;
      let bodyEnd = p - 1;
      p = skipSpace(p, end);
      if (p >= end || byteAt(p) != COLON) { fail("expected : after a key", p); return false; }
      p = skipSpace(p + 1, end);
      let vp = p;
      p = scanValue(p, end, 1);
      if (p == 0) return false;
      let v = spanOf(vp, p - vp);
      let c = byteAt(vp);
      let key = inputKey(body, bodyEnd, plain);
      if (key == K_INCOMING) {
        inp.incoming = v;
      } else if (key == K_EXISTING) {
        inp.existing = v;
      } else if (key == K_BASE) {
        inp.base = v;
      } else if (key == K_KIND || key == K_CONTAINER || key == K_ID) {
        if (c != QUOTE && c != 0x6e) {
          fail("kind, container and id must be strings", vp);
          return false;
        }
        let sv = c == QUOTE ? v : NONE;
        if (key == K_KIND) inp.kind = sv;
        else if (key == K_CONTAINER) inp.container = sv;
        else inp.id = sv;
      } else if (key == K_TOMBSTONE) {
        if (c == 0x74) inp.isTombstone = true;
        else if (c == 0x66 || c == 0x6e) inp.isTombstone = false;
        else {
          fail("isTombstone must be a boolean", vp);
          return false;
        }
      } else if (key == K_CONFLICTING) {
        if (c == LBRACKET) inp.conflicting = v;
        else if (c == 0x6e) inp.conflicting = spanOf(EMPTY_ARRAY_TEXT, 2);
        else {
          fail("conflicting must be an array", vp);
          return false;
        }
      }
      p = skipSpace(p, end);
      if (p >= end) { fail("unterminated object", start); return false; }
      c = byteAt(p);
      if (c == RBRACE) { p++; break; }
      if (c != COMMA) { fail("expected , or } in an object", p); return false; }
      p = skipSpace(p + 1, end);
    }
  }
  if (skipSpace(p, end) != end) {
    fail("bytes after the JSON value", skipSpace(p, end));
    return false;
  }
  inp.incomingDeleted = isNull(inp.incoming);
  inp.existingDeleted = isNull(inp.existing);
  inp.hasBase = !isNull(inp.base);
  return true;
}

// ----------------------------------------------------------------- output

// @ts-ignore: decorator
@inline const ST_EMPTY: i32 = 0; // nothing written yet
// @ts-ignore: decorator
@inline const ST_TOP: i32 = 1; // after the action
// @ts-ignore: decorator
@inline const ST_DOC: i32 = 2; // inside the document
// @ts-ignore: decorator
@inline const ST_REASON: i32 = 3; // inside the reason string

// The output's text when not even a defer fits in memory, or the runtime
// was not initialized.
const OOM_TEXT = "{\"action\":\"defer\",\"reason\":\"resolver failed: out of memory\"}";
const NO_INIT_TEXT = "{\"action\":\"defer\",\"reason\":\"resolver failed: _initialize was not called\"}";

// staticOutput copies the ASCII text to a static buffer and returns it.
function staticOutput(text: string): Span {
  let buf = memory.data(128);
  let n = <usize>min(text.length, 128);
  let p = changetype<usize>(text);
  for (let i: usize = 0; i < n; i++) store<u8>(buf + i, load<u8>(p + (i << 1)));
  return spanOf(buf, n);
}

/**
 * Output builds the decision, {"action":..., "document":..., "reason":...},
 * in that order:
 *
 *   1. action(A), A one of incoming, existing, merge, delete, defer - exactly
 *      once, first (or a shortcut: keepIncoming, keepExisting, deleteItem,
 *      defer, merge);
 *   2. with "merge" only: document(), then the document itself, written with
 *      raw / copyWith / copyWithInt / copyWithout / rawText / string / int;
 *   3. optionally reason / reasonInt / reasonBytes (each call appends).
 *
 * Errors are sticky: after the first, the other calls do nothing and the
 * call ends as "defer" with the error as reason. Every method returns this,
 * so calls can be chained. Nothing here allocates, except that the output
 * buffer grows (and is then reused by later calls).
 */
@final export class Output {
  private buf: usize = 0;
  private cap: usize = 0;
  private len: usize = 0;
  private state: i32 = ST_EMPTY;
  private isMerge: bool = false;
  private hasDoc: bool = false;
  private docStart: usize = 0;
  private docEnd: usize = 0;
  private reasonBytesUsed: usize = 0;
  private err: string = "";

  /** error is the first builder error of this call ("" if none). */
  get error(): string {
    return this.err;
  }

  private setErr(msg: string): Output {
    if (this.err.length == 0) this.err = msg;
    return this;
  }

  // reserve makes room for n more bytes; false (and the sticky error) if memory is exhausted.
  private reserve(n: usize): bool {
    if (this.cap - this.len >= n) return true;
    if (n > (1 << 29) || this.len + n > (1 << 29)) {
      this.setErr("the output is too large");
      return false;
    }
    let want = this.cap << 1;
    if (want < this.len + n) want = this.len + n;
    if (want < 1024) want = 1024;
    want = (want + 4095) & ~<usize>4095;
    let nb = allocRaw(want);
    if (nb == 0) {
      this.setErr("out of memory");
      return false;
    }
    if (this.buf != 0) {
      memory.copy(nb, this.buf, this.len);
      heap.free(this.buf);
    }
    this.buf = nb;
    this.cap = want;
    return true;
  }

  // put appends n bytes at p (no checks of state).
  private put(p: usize, n: usize): void {
    if (this.err.length != 0 || !this.reserve(n)) return;
    memory.copy(this.buf + this.len, p, n);
    this.len += n;
  }

  private putByte(c: u32): void {
    if (this.err.length != 0 || !this.reserve(1)) return;
    store<u8>(this.buf + this.len, <u8>c);
    this.len++;
  }

  // putAscii appends the ASCII string s as bytes (for the SDK's own constant texts).
  private putAscii(s: string): void {
    let n = <usize>s.length;
    if (this.err.length != 0 || !this.reserve(n)) return;
    let p = changetype<usize>(s);
    let o = this.buf + this.len;
    for (let i: usize = 0; i < n; i++) store<u8>(o + i, load<u8>(p + (i << 1)));
    this.len += n;
  }

  // putChar appends the code point cp inside a JSON string, escaped as needed.
  private putChar(cp: u32): void {
    if (this.err.length != 0 || !this.reserve(6)) return;
    let o = this.buf + this.len;
    let n: usize;
    if (cp == QUOTE || cp == BACKSLASH) {
      store<u8>(o, <u8>BACKSLASH);
      store<u8>(o, <u8>cp, 1);
      n = 2;
    } else if (cp < 0x20) {
      store<u8>(o, <u8>BACKSLASH);
      if (cp == 0x0a) { store<u8>(o, 0x6e, 1); n = 2; }
      else if (cp == 0x0d) { store<u8>(o, 0x72, 1); n = 2; }
      else if (cp == 0x09) { store<u8>(o, 0x74, 1); n = 2; }
      else {
        store<u8>(o, 0x75, 1);
        store<u8>(o, 0x30, 2);
        store<u8>(o, 0x30, 3);
        store<u8>(o, <u8>(0x30 + (cp >> 4)), 4);
        let d = cp & 15;
        store<u8>(o, <u8>(d < 10 ? 0x30 + d : 0x61 + d - 10), 5);
        n = 6;
      }
    } else {
      n = utf8Put(o, cp);
    }
    this.len += n;
  }

  // putReasonChar appends cp to the reason unless that would pass MAX_REASON bytes (decoded).
  private putReasonChar(cp: u32): bool {
    let n = utf8Len(cp);
    if (this.reasonBytesUsed + n > MAX_REASON) return false;
    this.reasonBytesUsed += n;
    this.putChar(cp);
    return true;
  }

  /** _reset starts a new output (the SDK calls it before each call). */
  _reset(): void {
    this.len = 0;
    this.state = ST_EMPTY;
    this.isMerge = false;
    this.hasDoc = false;
    this.docStart = 0;
    this.docEnd = 0;
    this.reasonBytesUsed = 0;
    this.err = "";
  }

  /** action starts the output with the action A (incoming, existing, merge, delete or defer). */
  action(a: string): Output {
    if (this.err.length != 0) return this;
    if (this.state != ST_EMPTY) return this.setErr("action called twice");
    if (a != "incoming" && a != "existing" && a != "merge" && a != "delete" && a != "defer") {
      return this.setErr("unknown action (want incoming, existing, merge, delete or defer)");
    }
    this.putAscii("{\"action\":\"");
    this.putAscii(a);
    this.putByte(QUOTE);
    this.isMerge = a == "merge";
    this.state = ST_TOP;
    return this;
  }

  /** keepIncoming is action("incoming"): the incoming version wins. */
  keepIncoming(): Output {
    return this.action("incoming");
  }

  /** keepExisting is action("existing"): the existing version stays. */
  keepExisting(): Output {
    return this.action("existing");
  }

  /** deleteItem is action("delete"): the item is deleted. */
  deleteItem(): Output {
    return this.action("delete");
  }

  /** defer is action("defer") with the reason: nothing is decided, the conflict waits in the feed. */
  defer(reason: string): Output {
    return this.action("defer").reason(reason);
  }

  /** merge is action("merge") then document(): write the document next. */
  merge(): Output {
    return this.action("merge").document();
  }

  /** document starts the merged document (after action("merge") only). */
  document(): Output {
    if (this.err.length != 0) return this;
    if (this.state != ST_TOP || !this.isMerge || this.hasDoc) {
      return this.setErr("document must follow action(\"merge\"), once");
    }
    this.putAscii(",\"document\":");
    this.hasDoc = true;
    this.state = ST_DOC;
    this.docStart = this.len;
    return this;
  }

  private inDoc(): bool {
    if (this.err.length != 0) return false;
    if (this.state != ST_DOC) {
      this.setErr("document text written outside the document");
      return false;
    }
    return true;
  }

  /** raw appends the bytes of v as they are (a JSON value, or part of one). */
  raw(v: Span): Output {
    if (this.inDoc()) this.put(spanPtr(v), spanLen(v));
    return this;
  }

  /** rawText appends text as it is, in UTF-8 (not as a JSON string): JSON syntax such as "[" or "{\"a\":". */
  rawText(text: string): Output {
    if (!this.inDoc()) return this;
    let p = changetype<usize>(text);
    let n = <usize>text.length;
    for (let i: usize = 0; i < n; i = decPos) {
      let cp = strNext(p, i, n);
      if (!this.reserve(4)) break;
      this.len += utf8Put(this.buf + this.len, cp);
    }
    return this;
  }

  /** string appends s as a JSON string. */
  string(s: string): Output {
    if (!this.inDoc()) return this;
    this.putByte(QUOTE);
    let p = changetype<usize>(s);
    let n = <usize>s.length;
    for (let i: usize = 0; i < n; i = decPos) this.putChar(strNext(p, i, n));
    this.putByte(QUOTE);
    return this;
  }

  /** int appends v as a JSON number. */
  int(v: i64): Output {
    if (this.inDoc() && this.reserve(20)) this.len += formatI64(this.buf + this.len, v);
    return this;
  }

  // edit copies the object obj, with member key set to value (or removed if value is NONE).
  private edit(obj: Span, key: string, value: Span, isInt: bool, n: i64): Output {
    if (!this.inDoc()) return this;
    if (value == INVALID) return this.setErr("copyWith: the value is INVALID");
    let p = spanPtr(obj);
    let end = p + spanLen(obj);
    p = skipSpace(p, end);
    if (p == 0 || p >= end || byteAt(p) != LBRACE) return this.setErr("copyWith: not a JSON object");
    let remove = value == NONE && !isInt;
    let done = false;
    let first = true;
    this.putByte(LBRACE);
    p = skipSpace(p + 1, end);
    if (p < end && byteAt(p) == RBRACE) p = 0; // empty
    while (p != 0) {
      if (p >= end) return this.setErr("copyWith: the object is not valid JSON: unterminated object");
      let kp = p;
      if (byteAt(p) != QUOTE) return this.setErr("copyWith: the object is not valid JSON: expected a string key");
      p = scanString(p, end);
      if (p == 0) return this.setErr("copyWith: the object is not valid JSON: bad key");
      let match = bodyEquals(kp + 1, p - 1, key, strPlain);
      let kn = p - kp;
      p = skipSpace(p, end);
      if (p >= end || byteAt(p) != COLON) return this.setErr("copyWith: the object is not valid JSON: expected :");
      p = skipSpace(p + 1, end);
      let vp = p;
      p = scanValue(p, end, 1);
      if (p == 0) return this.setErr("copyWith: the object is not valid JSON: bad value");
      let vn = p - vp;
      if (match) {
        if (!done && !remove) {
          if (!first) this.putByte(COMMA);
          this.put(kp, kn);
          this.putByte(COLON);
          if (isInt) this.int(n);
          else this.put(spanPtr(value), spanLen(value));
          first = false;
        }
        done = true; // a later duplicate, or a removal, is dropped
      } else {
        if (!first) this.putByte(COMMA);
        this.put(kp, kn);
        this.putByte(COLON);
        this.put(vp, vn);
        first = false;
      }
      p = skipSpace(p, end);
      if (p >= end) return this.setErr("copyWith: the object is not valid JSON: unterminated object");
      let c = byteAt(p);
      if (c == RBRACE) break;
      if (c != COMMA) return this.setErr("copyWith: the object is not valid JSON: expected , or }");
      p = skipSpace(p + 1, end);
    }
    if (!done && !remove) {
      if (!first) this.putByte(COMMA);
      this.string(key);
      this.putByte(COLON);
      if (isInt) this.int(n);
      else this.put(spanPtr(value), spanLen(value));
    }
    this.putByte(RBRACE);
    return this;
  }

  /**
   * copyWith appends a copy of the object obj with member key set to value
   * (raw JSON): the members keep their order and their text, the member key
   * keeps its place (its later duplicates are dropped), or is appended.
   */
  copyWith(obj: Span, key: string, value: Span): Output {
    if (value == NONE) return this.setErr("copyWith: no value");
    return this.edit(obj, key, value, false, 0);
  }

  /** copyWithInt is copyWith with the integer v as value. */
  copyWithInt(obj: Span, key: string, v: i64): Output {
    return this.edit(obj, key, NONE, true, v);
  }

  /** copyWithout appends a copy of the object obj without member key. */
  copyWithout(obj: Span, key: string): Output {
    return this.edit(obj, key, NONE, false, 0);
  }

  private startReason(): bool {
    if (this.err.length != 0) return false;
    if (this.state == ST_REASON) return true;
    if (this.state == ST_EMPTY) {
      this.setErr("reason written before the action");
      return false;
    }
    if (this.state == ST_DOC) this.docEnd = this.len;
    this.putAscii(",\"reason\":\"");
    this.state = ST_REASON;
    return true;
  }

  /** reason appends text to the reason (escaped; truncated at MAX_REASON bytes). */
  reason(text: string): Output {
    if (!this.startReason()) return this;
    let p = changetype<usize>(text);
    let n = <usize>text.length;
    let i: usize = 0;
    // Fast path: printable ASCII, which needs no escape, a byte a unit.
    let room = MAX_REASON - this.reasonBytesUsed;
    let lim = n < room ? n : room;
    if (this.reserve(lim)) {
      let o = this.buf + this.len;
      for (; i < lim; i++) {
        let u = <u32>load<u16>(p + (i << 1));
        if (u - 0x20 >= 0x60 || u == QUOTE || u == BACKSLASH) break; // not in 0x20..0x7f
        store<u8>(o + i, <u8>u);
      }
      this.len += i;
      this.reasonBytesUsed += i;
    }
    for (; i < n; i = decPos) {
      if (!this.putReasonChar(strNext(p, i, n))) break;
    }
    return this;
  }

  /** reasonInt appends v in decimal to the reason. */
  reasonInt(v: i64): Output {
    if (!this.startReason()) return this;
    let s = formatInt(v);
    let p = spanPtr(s);
    for (let i: usize = 0; i < spanLen(s); i++) {
      if (!this.putReasonChar(byteAt(p + i))) break;
    }
    return this;
  }

  /** reasonBytes appends the bytes of s, as UTF-8 text (invalid sequences become U+FFFD), to the reason. */
  reasonBytes(s: Span): Output {
    if (!this.startReason()) return this;
    let p = spanPtr(s);
    let end = p + spanLen(s);
    while (p < end) {
      if (!this.putReasonChar(utf8Next(p, end))) break;
      p = decPos;
    }
    return this;
  }

  // _failWith replaces the output by a defer with the reason a + b + c + n (n if >= 0).
  _failWith(a: string, b: string, c: string, n: i64): void {
    this._reset();
    this.defer(a).reason(b).reason(c);
    if (n >= 0) this.reasonInt(n);
  }

  /** _finish checks and closes the output (the SDK calls it after the resolver). */
  _finish(): void {
    if (this.err.length != 0) {
      this._failWith("resolver failed: ", this.err, "", -1);
    } else if (this.state == ST_EMPTY) {
      this._failWith("resolver failed: no action was set", "", "", -1);
    } else if (this.isMerge && !this.hasDoc) {
      this._failWith("resolver failed: the action merge needs a document", "", "", -1);
    } else if (this.hasDoc) {
      let end = this.state == ST_DOC ? this.len : this.docEnd;
      let doc = parse(spanOf(this.buf + this.docStart, end - this.docStart));
      if (doc == INVALID) {
        this._failWith("resolver failed: its document is not valid JSON: ", errMsg, " at byte ", <i64>(errAt - (this.buf + this.docStart)));
      } else if (typeOf(doc) != JsonType.Object) {
        this._failWith("resolver failed: its document is not a JSON object", "", "", -1);
      }
    }
    if (this.state == ST_REASON) this.putByte(QUOTE);
    this.putByte(RBRACE);
  }

  /** _result returns the finished output as a span (the SDK returns it to the host). */
  _result(): Span {
    if (this.err.length != 0) return staticOutput(OOM_TEXT);
    return spanOf(this.buf, this.len);
  }
}

function utf8Len(cp: u32): usize {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

function utf8Put(o: usize, cp: u32): usize {
  if (cp < 0x80) {
    store<u8>(o, <u8>cp);
    return 1;
  }
  if (cp < 0x800) {
    store<u8>(o, <u8>(0xc0 | (cp >> 6)));
    store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 1);
    return 2;
  }
  if (cp < 0x10000) {
    store<u8>(o, <u8>(0xe0 | (cp >> 12)));
    store<u8>(o, <u8>(0x80 | ((cp >> 6) & 0x3f)), 1);
    store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 2);
    return 3;
  }
  store<u8>(o, <u8>(0xf0 | (cp >> 18)));
  store<u8>(o, <u8>(0x80 | ((cp >> 12) & 0x3f)), 1);
  store<u8>(o, <u8>(0x80 | ((cp >> 6) & 0x3f)), 2);
  store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 3);
  return 4;
}

// ------------------------------------------------------------ registration

/** A resolver: reads the conflict from input, writes the decision to out. */
export type Resolver = (input: Input, out: Output) => void;

function noResolver(input: Input, out: Output): void {
  out.defer("resolver failed: no resolver was registered (call register at the top level)");
}

let handler: Resolver = noResolver;
const theInput = new Input();
const theOutput = new Output();

// initialized is set by the top level, which runs in _initialize. Without it
// the runtime's heap is not set up either: the SDK then refuses to work.
let initialized = false;
initialized = true;

/** register makes fn the resolver. Call it once, at the top level of the entry file. */
export function register(fn: Resolver): void {
  handler = fn;
}

// The input buffer: grow-only, reused for every call.
let inBuf: usize = 0;
let inCap: usize = 0;

/** inputBuffer is edgesync_input: the address of a buffer of at least len bytes, or 0. */
export function inputBuffer(len: i32): usize {
  if (len < 0 || !initialized) return 0;
  let n = <usize>len;
  if (n > inCap || inBuf == 0) {
    let cap = (n + 0xffff) & ~<usize>0xffff; // whole 64 KiB
    if (cap == 0) cap = 0x10000;
    if (inBuf != 0) heap.free(inBuf);
    inBuf = 0;
    inCap = 0;
    let b = allocRaw(cap);
    if (b == 0) return 0;
    inBuf = b;
    inCap = cap;
  }
  return inBuf;
}

/**
 * resolveInput is edgesync_resolve: it validates the len bytes in the input
 * buffer, calls the resolver and returns the output (valid until the next
 * call) as a span, which is the ABI's (address << 32 | length).
 */
export function resolveInput(len: i32): Span {
  if (!initialized) return staticOutput(NO_INIT_TEXT);
  let n: usize = len < 0 || <usize>len > inCap ? 0 : <usize>len;
  let inp = theInput;
  let out = theOutput;
  out._reset();
  if (!parseInput(spanOf(inBuf, n), inp)) {
    out._failWith("resolver failed: its input is not valid: ", errMsg, " at byte ", inBuf == 0 ? 0 : <i64>(errAt - inBuf));
    out._finish();
  } else {
    handler(inp, out);
    out._finish();
  }
  if (ASC_RUNTIME != 0) __collect(); // a runtime with a collector: free what the call allocated
  return out._result();
}

// ---------------------------------------------------------------- logging

export { log } from "./log";
