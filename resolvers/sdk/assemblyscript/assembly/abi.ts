// abi.ts - the exports of resolvers/ABI.md (version 1), implemented by the
// SDK in edgesync.ts. A resolver's entry file re-exports them:
//
//     export * from "<sdk>/assembly/abi";
//
// and asc must export the start function as _initialize (--exportStart
// _initialize), which runs the entry file's top level, where the resolver
// calls register.

import { inputBuffer, resolveInput } from "./edgesync";

/** The ABI version marker; the host never calls it. */
export function edgesync_abi_v1(): void {}

/** Returns the address of the SDK's input buffer, of at least len bytes (0: out of memory). */
export function edgesync_input(len: i32): i32 {
  return <i32>inputBuffer(len);
}

/** Resolves the len bytes in the input buffer: (output address << 32) | output length. */
export function edgesync_resolve(len: i32): i64 {
  return <i64>resolveInput(len);
}
