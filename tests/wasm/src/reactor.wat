;; A module with no `_start`: it only exports `hello`, for the missing-entrypoint error.
(module
  (func (export "hello") (result i32)
    i32.const 42))
