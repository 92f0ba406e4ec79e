// log.ts - logging to stderr and the abort handler of the AssemblyScript SDK
// for edgesync resolvers. It has no globals of its own, because the abort
// handler is compiled (and may run) before the globals of the other files
// are initialized.

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, iovsLen: i32, written: usize): i32;

// The line buffer: iovec (8 bytes), written (4), padding (4), text (512).
// @ts-ignore: decorator
@inline const TEXT: usize = 16;
// @ts-ignore: decorator
@inline const CAP: usize = 512;

// lineBuf returns the address of the line buffer. It is a function, not a
// global, and not @inline: each inlined copy would get its own buffer.
function lineBuf(): usize {
  return memory.data(16 + 512); // TEXT + CAP
}

// put appends the string s to the line of n bytes and returns the new length
// (the text is cut at CAP bytes; lone surrogates become U+FFFD).
function put(n: usize, s: string | null): usize {
  if (s === null) return n;
  let b = lineBuf() + TEXT;
  let p = changetype<usize>(s);
  let len = <usize>s.length;
  let i: usize = 0;
  while (i < len) {
    let cp = <u32>load<u16>(p + (i << 1));
    i++;
    if (cp - 0xd800 < 0x800) {
      let lo: u32 = i < len ? <u32>load<u16>(p + (i << 1)) : 0;
      if (cp < 0xdc00 && lo - 0xdc00 < 0x400) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else {
        cp = 0xfffd;
      }
    }
    if (n + 4 > CAP) return n;
    let o = b + n;
    if (cp < 0x80) {
      store<u8>(o, <u8>cp);
      n += 1;
    } else if (cp < 0x800) {
      store<u8>(o, <u8>(0xc0 | (cp >> 6)));
      store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 1);
      n += 2;
    } else if (cp < 0x10000) {
      store<u8>(o, <u8>(0xe0 | (cp >> 12)));
      store<u8>(o, <u8>(0x80 | ((cp >> 6) & 0x3f)), 1);
      store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 2);
      n += 3;
    } else {
      store<u8>(o, <u8>(0xf0 | (cp >> 18)));
      store<u8>(o, <u8>(0x80 | ((cp >> 12) & 0x3f)), 1);
      store<u8>(o, <u8>(0x80 | ((cp >> 6) & 0x3f)), 2);
      store<u8>(o, <u8>(0x80 | (cp & 0x3f)), 3);
      n += 4;
    }
  }
  return n;
}

// putUint appends v in decimal.
function putUint(n: usize, v: u32): usize {
  let b = lineBuf() + TEXT;
  let digits: usize = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  if (n + digits > CAP) return n;
  for (let i = digits; i > 0; i--) {
    store<u8>(b + n + i - 1, <u8>(0x30 + v % 10));
    v /= 10;
  }
  return n + digits;
}

// flush writes the line of n bytes to the file descriptor fd.
function flush(fd: i32, n: usize): void {
  let b = lineBuf();
  store<u32>(b, <u32>(b + TEXT));
  store<u32>(b, <u32>n, 4);
  fd_write(fd, b, 1, b + 8);
}

/**
 * log writes text and a newline to stderr (at most 512 bytes a line), which
 * `cloudhub resolver test` shows and the hub discards. It does not allocate.
 */
export function log(text: string): void {
  flush(2, put(put(0, text), "\n"));
}

/**
 * abortResolver replaces AssemblyScript's abort (asc --use
 * abort=abortResolver; it is a global, so the name works from any directory): it writes
 * the message to stderr and traps, so that the call fails with the reason
 * "trap" instead of the module importing env.abort, which the hub refuses.
 */
// @ts-ignore: decorator
@global export function abortResolver(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let n = put(put(0, "resolver aborted: "), message);
  if (fileName !== null) {
    n = put(n, " (");
    n = put(n, fileName);
    n = put(n, ":");
    n = putUint(n, line);
    n = put(n, ":");
    n = putUint(n, column);
    n = put(n, ")");
  }
  flush(2, put(n, "\n"));
  unreachable();
}
