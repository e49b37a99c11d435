;; spin.wat: never returns. wasm-timeout.yaml runs it to show Timeouts.ExecutionTimeout failing a job.
(module
  (func (export "_start")
    (loop $forever (br $forever))))
