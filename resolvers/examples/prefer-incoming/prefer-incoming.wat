;; prefer-incoming: an edgesync conflict resolver written by hand in the
;; WebAssembly text format, to show ABI v1 (resolvers/ABI.md) with nothing in
;; the way. It confirms the incoming version of every conflict, whatever the
;; input says: its output is always {"action":"incoming"}.
;;
;; Build: wat2wasm prefer-incoming.wat -o prefer-incoming.wasm
;; (resolvers/build.sh writes testdata/resolvers/prefer-incoming.wasm)
(module
  ;; The linear memory, exported as "memory". Page 0 holds the answer, the
  ;; input buffer starts at page 1 (64 KiB). No maximum: the hub sets one.
  (memory (export "memory") 2)

  ;; The answer: 21 bytes at address 16.
  (data (i32.const 16) "{\"action\":\"incoming\"}")

  ;; The version marker. The hub looks for the export, never calls it.
  (func (export "edgesync_abi_v1"))

  ;; edgesync_input(len) returns the address of a buffer of at least len
  ;; bytes (the host writes the input there): 64 KiB, after growing the
  ;; memory to 1 + ceil(len / 64 KiB) pages if it is smaller. 0 means the
  ;; memory could not grow (the call fails with reason "memory").
  (func (export "edgesync_input") (param $len i32) (result i32)
    (local $missing i32)
    (local.set $missing
      (i32.sub
        (i32.add (i32.const 1)
          (i32.shr_u (i32.add (local.get $len) (i32.const 65535)) (i32.const 16)))
        (memory.size)))
    (if (i32.gt_s (local.get $missing) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (local.get $missing)) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))

  ;; edgesync_resolve(len) decides on the len bytes of input in the buffer
  ;; (this one does not read them) and returns where its output is: the
  ;; address in the high 32 bits, the length in the low 32 bits.
  (func (export "edgesync_resolve") (param $len i32) (result i64)
    (i64.const 0x10_0000_0015)))  ;; address 16, length 21
