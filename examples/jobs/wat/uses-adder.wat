;; uses-adder.wat: imports `add` from the module named "adder.wasm" (resolved in the task's filesystem,
;; here the input at /modules/adder.wasm listed in ImportModules) and prints "2+3=5".
(module
  (import "adder.wasm" "add" (func $add (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "2+3=?\n")
  (func (export "_start")
    ;; replace "?" by the digit add(2, 3) returns
    (i32.store8 (i32.const 20) (i32.add (i32.const 48) (call $add (i32.const 2) (i32.const 3))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
