;; An infinite loop: only fuel stops it.
(module
  (func (export "spin")
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $again))))
