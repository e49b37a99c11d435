;; A library module exporting `add`, imported by uses_lib.wasm as "lib.wasm".
(module
  (func (export "add") (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add))
