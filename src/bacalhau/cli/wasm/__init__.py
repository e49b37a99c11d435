"""`bacalhau wasm ...`: run WebAssembly modules as jobs."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

wasm = BacalhauGroup(
    name="wasm",
    help="Run WebAssembly jobs.",
    lazy={"run": ("bacalhau.cli.wasm.run:run", "Run a WebAssembly module as a job.")},
)
