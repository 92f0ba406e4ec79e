;; Tight compute loops for BenchmarkMeteredLoop: `rounds` times over the
;; first 64 KiB of memory, a checksum of its i32 words (sum*31 + word, bound
;; by the multiplication's latency) and a plain sum (one add per word).
(module
  (memory (export "memory") 1)
  (func (export "checksum") (param $rounds i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 0))
        (loop $word
          (local.set $sum
            (i32.add
              (i32.mul (local.get $sum) (i32.const 31))
              (i32.load (local.get $i))))
          (br_if $word
            (i32.lt_u
              (local.tee $i (i32.add (local.get $i) (i32.const 4)))
              (i32.const 65536))))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $sum))
  (func (export "sum") (param $rounds i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 0))
        (loop $word
          (local.set $sum (i32.add (local.get $sum) (i32.load (local.get $i))))
          (br_if $word
            (i32.lt_u
              (local.tee $i (i32.add (local.get $i) (i32.const 4)))
              (i32.const 65536))))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $sum))
  (func (export "fill") (param $seed i32)
    (local $i i32)
    (loop $next
      (i32.store (local.get $i)
        (local.tee $seed
          (i32.add (i32.mul (local.get $seed) (i32.const 1103515245)) (i32.const 12345))))
      (br_if $next
        (i32.lt_u
          (local.tee $i (i32.add (local.get $i) (i32.const 4)))
          (i32.const 65536))))))
