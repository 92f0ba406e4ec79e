// helpers.ts - a resolver that exercises the SDK's JSON helpers, for
// test.mjs. The incoming document is a command {"op": NAME, "arg": VALUE};
// the answer is a merge whose document reports what the helpers saw, or a
// defer produced on purpose.
import {
  Input, Output, Span, register, member, strEquals, readString, firstElement, nextElement,
  firstKey, nextKey, valueOf, count, isInt64, readInt64, isBool, readBool, typeOf, isNull,
  isPresent, parse, lastError, formatInt, spanOf, spanPtr, spanLen, NONE, INVALID, JsonType, log,
} from "../assembly/edgesync";
export * from "../assembly/abi";

// endName tells the end of an iteration (NONE) from an error (INVALID).
function endName(s: Span): string {
  return s == NONE ? "NONE" : s == INVALID ? "INVALID" : "more";
}

function resolve(input: Input, out: Output): void {
  let cmd = input.incoming;
  let op = member(cmd, "op");
  let arg = member(cmd, "arg");
  if (strEquals(op, "elements")) {
    // {"n":N,"items":[...],"end":"NONE"|"INVALID"}
    out.merge().rawText("{\"items\":[");
    let n = 0;
    let e = firstElement(arg);
    for (; isPresent(e); e = nextElement(arg, e)) {
      if (n > 0) out.rawText(",");
      out.raw(e);
      n++;
    }
    out.rawText("],\"n\":").int(n).rawText(",\"end\":").string(endName(e)).rawText("}");
  } else if (strEquals(op, "keys")) {
    // {"keys":[...],"values":[...],"end":...}
    out.merge().rawText("{\"keys\":[");
    let k = firstKey(arg);
    let first = true;
    for (; isPresent(k); k = nextKey(arg, k)) {
      if (!first) out.rawText(",");
      out.raw(k);
      first = false;
    }
    out.rawText("],\"values\":[");
    first = true;
    for (let j = firstKey(arg); isPresent(j); j = nextKey(arg, j)) {
      if (!first) out.rawText(",");
      out.raw(valueOf(arg, j));
      first = false;
    }
    out.rawText("],\"end\":").string(endName(k)).rawText("}");
  } else if (strEquals(op, "strEquals")) {
    let want = member(cmd, "want");
    let w = readString(want);
    out.merge().rawText("{\"equal\":").rawText(w !== null && strEquals(arg, w) ? "true" : "false")
      .rawText(",\"literal\":").rawText(strEquals(arg, "h\u00e9llo \ud83d\ude00") ? "true" : "false").rawText("}");
  } else if (strEquals(op, "readString")) {
    let s = readString(arg);
    if (s === null) {
      out.defer("not a string");
      return;
    }
    out.merge().rawText("{\"s\":").string(s).rawText(",\"units\":").int(s.length).rawText("}");
  } else if (strEquals(op, "without")) {
    out.merge().copyWithout(arg, "x");
  } else if (strEquals(op, "with")) {
    out.merge().copyWith(arg, "x", member(cmd, "value"));
  } else if (strEquals(op, "count")) {
    out.merge().rawText("{\"count\":").int(count(arg)).rawText("}");
  } else if (strEquals(op, "int")) {
    out.merge().rawText("{\"ok\":").rawText(isInt64(arg) ? "true" : "false").rawText(",\"value\":").int(readInt64(arg)).rawText("}");
  } else if (strEquals(op, "bool")) {
    out.merge().rawText("{\"ok\":").rawText(isBool(arg) ? "true" : "false").rawText(",\"value\":").rawText(readBool(arg) ? "true" : "false").rawText("}");
  } else if (strEquals(op, "type")) {
    out.merge().rawText("{\"type\":").int(<i64>typeOf(arg)).rawText(",\"null\":").rawText(isNull(arg) ? "true" : "false").rawText("}");
  } else if (strEquals(op, "parse")) {
    // parse the string arg's content as JSON text
    let s = readString(arg);
    if (s === null) {
      out.defer("not a string");
      return;
    }
    let bytes = String.UTF8.encode(s);
    let v = parse(spanOf(changetype<usize>(bytes), <usize>bytes.byteLength));
    if (v == INVALID) out.defer("invalid: ").reason(lastError());
    else out.merge().rawText("{\"value\":").raw(v).rawText("}");
  } else if (strEquals(op, "formatInt")) {
    let v = formatInt(readInt64(arg));
    out.merge().rawText("{\"text\":\"").raw(v).rawText("\",\"len\":").int(<i64>spanLen(v)).rawText("}");
  } else if (strEquals(op, "reason")) {
    // a reason of arg (a number) copies of "é" and then "!"
    let n = readInt64(arg);
    out.action("delete");
    for (let i: i64 = 0; i < n; i++) out.reason("\u00e9");
    out.reason("!");
  } else if (strEquals(op, "reasonBytes")) {
    // the bytes of arg's string body, as the reason
    out.action("existing").reasonBytes(spanOf(spanPtr(arg) + 1, spanLen(arg) - 2)).reasonInt(-9223372036854775807 - 1);
  } else if (strEquals(op, "reasonEscapes")) {
    out.action("incoming").reason("q\" b\\ n\n t\t c\u0001 \ud800 end");
  } else if (strEquals(op, "docBeforeAction")) {
    out.document();
  } else if (strEquals(op, "actionTwice")) {
    out.keepIncoming().keepExisting();
  } else if (strEquals(op, "badAction")) {
    out.action("win");
  } else if (strEquals(op, "mergeNoDoc")) {
    out.action("merge");
  } else if (strEquals(op, "docNotObject")) {
    out.merge().rawText("[1]");
  } else if (strEquals(op, "docInvalid")) {
    out.merge().rawText("{\"a\":}");
  } else if (strEquals(op, "nothing")) {
    // no action at all
  } else if (strEquals(op, "withNotObject")) {
    out.merge().copyWith(arg, "x", arg);
  } else if (strEquals(op, "log")) {
    log("log: " + (readString(arg) as string));
    out.keepExisting();
  } else if (strEquals(op, "abort")) {
    throw new Error("on purpose");
  } else if (strEquals(op, "alloc")) {
    // allocate (and leak, with the stub runtime) arg bytes
    let a = new Uint8Array(<i32>readInt64(arg));
    a[a.length - 1] = 1;
    out.keepExisting().reasonInt(a.length);
  } else if (strEquals(op, "input")) {
    // the input's members as the SDK read them
    out.merge().rawText("{\"kind\":").raw(isPresent(input.kind) ? input.kind : NULL)
      .rawText(",\"id\":").raw(isPresent(input.id) ? input.id : NULL)
      .rawText(",\"container\":").raw(isPresent(input.container) ? input.container : NULL)
      .rawText(",\"existing\":").raw(input.existing)
      .rawText(",\"base\":").raw(input.base)
      .rawText(",\"conflicting\":").raw(input.conflicting)
      .rawText(",\"isTombstone\":").rawText(input.isTombstone ? "true" : "false")
      .rawText(",\"hasBase\":").rawText(input.hasBase ? "true" : "false")
      .rawText(",\"existingDeleted\":").rawText(input.existingDeleted ? "true" : "false")
      .rawText("}");
  } else {
    out.defer("unknown op");
  }
}

const NULL: Span = spanOf(memory.data<u8>([0x6e, 0x75, 0x6c, 0x6c]), 4);

register(resolve);
