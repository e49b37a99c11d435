;; adder.wat: a library module exporting add(a, b). Mounted at /modules/adder.wasm by wasm-imports.yaml.
(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
