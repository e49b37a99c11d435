"""Execution engines (docker, wasm, noop) behind the Executor protocol."""
