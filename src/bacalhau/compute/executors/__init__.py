"""Execution engines (wasm, noop; docker later) behind the Executor protocol."""
