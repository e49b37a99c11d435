;; The smallest WASI program: writes one line to stdout and returns (exit code 0).
;; examples/make_inline_job.py compiles this to wasm and embeds it in hello-wat.yaml as a data: URL.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The message lives at offset 16; the iovec {base, len} at offset 0; bytes written go to offset 8.
  (data (i32.const 16) "Hello from a Bacalhau WASM job!\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 32))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
