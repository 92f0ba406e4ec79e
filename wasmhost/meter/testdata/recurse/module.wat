;; Runaway recursion without a loop: every call costs fuel at entry.
(module
  (func $down (export "down") (param $n i64) (result i64)
    (call $down (i64.add (local.get $n) (i64.const 1)))))
