;; echo.wat: a WASI program that prints its arguments (one per line) and then its environment
;; (NAME=value, one per line: the task Env plus the BACALHAU_* variables the node sets).
;; Export `greet` is a second entrypoint (Engine.Params.Entrypoint: greet).
;; Embedded (compiled, base64) in wasm.yaml, wasm-relative.yaml, type-names.yaml, lowercase-keys.yaml and
;; wasm.json.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  ;; Layout: 0 iovec, 8 bytes written, 16 count, 20 buffer size, 32 "\n", 48 greeting,
  ;; 1024 argv pointers, 2048 environ pointers, 4096 argv strings, 65536 environ strings.
  (memory (export "memory") 2)
  (data (i32.const 32) "\n")
  (data (i32.const 48) "greetings from the greet export\n")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  ;; print the strings ptrs[first..count), each followed by a newline
  (func $print_lines (param $count i32) (param $ptrs i32) (param $first i32) (local $i i32) (local $s i32)
    (local.set $i (local.get $first))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2)))))
        (call $print (local.get $s) (call $strlen (local.get $s)))
        (call $print (i32.const 32) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $print_lines (i32.load (i32.const 16)) (i32.const 1024) (i32.const 1)) ;; skip argv[0]
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 2048) (i32.const 65536)))
    (call $print_lines (i32.load (i32.const 16)) (i32.const 2048) (i32.const 0)))
  (func (export "greet")
    (call $print (i32.const 48) (i32.const 32))))
