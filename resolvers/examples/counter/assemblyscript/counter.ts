// counter - an edgesync conflict resolver in AssemblyScript
// (resolvers/sdk/assemblyscript): the numeric field "count" of concurrent
// versions is merged as
//
//     base + (incoming - base) + (existing - base)
//
// so that offline increments on several edges add up exactly. The same rules
// as the Go and C builds (resolvers/examples/counter/go, .../c):
//
//   - a delete wins: an incoming delete is confirmed ("incoming"), an
//     existing delete stays ("existing");
//   - an insert conflict has no base: the base count is 0, both counts add;
//   - a missing or null "count" counts as 0;
//   - the result is the existing document with "count" replaced (its other
//     members and their order kept): action "merge";
//   - a count that is not an integer, a document that is not an object, or a
//     total outside int64 makes the resolver "defer" with the reason.
//
// Build: resolvers/sdk/assemblyscript/build.sh (testdata/resolvers/counter-as.wasm).

import {
  Input, Output, Span, register, member, isNull, isInt64, readInt64, INVALID,
} from "../../../sdk/assemblyscript/assembly/edgesync";
export * from "../../../sdk/assemblyscript/assembly/abi";

// The count read by countOf, or why it could not be read ("" when it could).
let value: i64 = 0;

// countOf reads the integer member "count" of doc into value (0 if absent or
// null), or returns a reason why it cannot.
function countOf(doc: Span): string {
  value = 0;
  let v = member(doc, "count");
  if (v == INVALID) return "not a JSON object";
  if (isNull(v)) return "";
  if (!isInt64(v)) return "count is not an integer that fits in 64 bits";
  value = readInt64(v);
  return "";
}

function resolve(input: Input, out: Output): void {
  if (input.incomingDeleted) {
    out.keepIncoming();
    return;
  }
  if (input.existingDeleted) {
    out.keepExisting();
    return;
  }

  let why = countOf(input.incoming);
  if (why.length != 0) {
    out.defer("incoming: ").reason(why);
    return;
  }
  let inc = value;
  why = countOf(input.existing);
  if (why.length != 0) {
    out.defer("existing: ").reason(why);
    return;
  }
  let ex = value;
  let base: i64 = 0;
  if (input.hasBase) {
    why = countOf(input.base);
    if (why.length != 0) {
      out.defer("base: ").reason(why);
      return;
    }
    base = value;
  }

  // inc + ex - base, with the wrap-arounds of both steps counted: the exact
  // total fits in an i64 only if they cancel out.
  let sum = inc + ex;
  let wraps = 0;
  if (inc > 0 && ex > 0 && sum < 0) wraps++;
  if (inc < 0 && ex < 0 && sum >= 0) wraps--;
  let total = sum - base;
  if (sum >= 0 && base < 0 && total < 0) wraps++;
  if (sum < 0 && base > 0 && total >= 0) wraps--;
  if (wraps != 0) {
    out.defer("counter: the merged count overflows int64");
    return;
  }

  out.merge()
    .copyWithInt(input.existing, "count", total)
    .reason("counter: base ").reasonInt(base).reason(" + both deltas");
}

register(resolve);
