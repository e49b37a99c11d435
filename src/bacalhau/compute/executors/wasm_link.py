"""Loading and linking the modules of one WASM execution.

Bacalhau resolves a module's imports by name: a module importing `add` from module `lib.wasm` gets the
exports of the module found at `lib.wasm` in the task's filesystem (an input whose target is
`/lib.wasm`, or the one input whose target ends in `lib.wasm`). Resolution is recursive, so an import
module may itself import others; WASI (`wasi_snapshot_preview1`) is built in. `ImportModules` are
instantiated first and shared with every module that imports them by any name resolving to the same
file. A library built as a WASI reactor gets its `_initialize` export called once, as WASI requires.
WASI's `poll_oneoff` is replaced by the interruptible one of wasm_poll, so a stop ends a long sleep.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import wasmtime

from bacalhau.compute.executors.wasm_cache import LoadedModule, ModuleCache
from bacalhau.compute.executors.wasm_engines import CompiledModule, PooledEngine, describe, new_wasi_linker
from bacalhau.compute.executors.wasm_fs import TaskFilesystem
from bacalhau.models.errors import ExecutionError

WASI_MODULES = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})
_WASM_MAGIC = b"\0asm"


def summarize(exc: Exception) -> str:
    """wasmtime's multi-line message as one line: the cause, without the wasm backtrace."""
    head, _, cause = str(exc).partition("Caused by:")
    lines = [line.strip() for line in head.strip().splitlines()]
    parts = [] if not lines or lines[0].startswith("error while executing at wasm backtrace") else [lines[0]]
    if cause:
        parts.append(" ".join(cause.split()))
    text = ": ".join(parts) or str(exc).strip()
    return re.sub(r",?\s*\]", "]", re.sub(r"\[\s+", "[", text))


class ModuleLinker:
    """Loads modules through the cache and links them into one Store; used by one worker thread.

    A module importing only WASI, run without ImportModules, links in the pooled engine's WASI linker;
    anything else in a linker of this run's own (its import modules are defined into it).
    """

    def __init__(
        self,
        *,
        pooled: PooledEngine,
        store: wasmtime.Store,
        fs: TaskFilesystem,
        cache: ModuleCache,
    ) -> None:
        self._pooled = pooled
        self._engine = pooled.engine
        self._store = store
        self._fs = fs
        self._cache = cache
        self._own: wasmtime.Linker | None = None
        self._instances: dict[Path, wasmtime.Instance] = {}
        self._in_progress: set[Path] = set()
        self._defined: set[str] = set()

    @property
    def _linker(self) -> wasmtime.Linker:
        if self._own is None:
            self._own = new_wasi_linker(self._engine, self._pooled.current_sleep)
        return self._own

    def load(self, path: Path, label: str) -> LoadedModule:
        """Read and compile (or fetch from the caches) the module at `path`; `label` names it in errors."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExecutionError(f"{label}: could not read {path}: {exc}") from exc
        if not data.startswith(_WASM_MAGIC):
            raise ExecutionError(
                f"{label} is not a valid WebAssembly module: it does not start with the \\0asm magic bytes",
                hint="point the engine at a compiled .wasm binary (e.g. clang --target=wasm32-wasi)",
            )
        digest = hashlib.sha256(data).hexdigest()
        compiled = self._pooled.module(digest)
        if compiled is not None:
            return LoadedModule(compiled.module, digest, cache_hit=True, compiled=compiled)
        try:
            loaded = self._cache.load(self._engine, data, digest=digest)
        except wasmtime.WasmtimeError as exc:
            raise ExecutionError(f"{label} is not a valid WebAssembly module: {summarize(exc)}") from exc
        compiled = describe(loaded.module, digest)
        self._pooled.keep(compiled)
        return LoadedModule(loaded.module, digest, cache_hit=loaded.cache_hit, compiled=compiled)

    def prepare_entry(
        self, entry: LoadedModule, label: str, entrypoint: str, import_modules: list[str]
    ) -> wasmtime.Func:
        """Instantiate the imports and the entry module; return its entrypoint, ready to call.

        Raises ExecutionError for a missing or unusable entrypoint, an unresolvable import or a failed
        instantiation; a trap in a start function propagates as wasmtime.Trap.
        """
        compiled = entry.compiled or describe(entry.module, entry.sha256)
        self._check_entrypoint(compiled, entrypoint)
        if not import_modules and compiled.import_modules <= WASI_MODULES:
            instance = self._instantiate(entry.module, label, self._pooled.linker)
        else:
            for target in import_modules:
                host = self._fs.find_module(target)
                if host is None:
                    raise ExecutionError(
                        f"ImportModules entry {target} not found among the task inputs "
                        f"(targets: {', '.join(self._fs.input_targets()) or 'none'})",
                        hint="add the module as an input whose Target is the ImportModules path",
                    )
                self._instantiate_import(host, target)
            self._link_imports(entry.module, label)
            instance = self._instantiate(entry.module, label, self._linker)
        func = instance.exports(self._store)[entrypoint]
        assert isinstance(func, wasmtime.Func)  # checked on the module's export types above
        return func

    def _check_entrypoint(self, compiled: CompiledModule, name: str) -> None:
        param_count = compiled.functions.get(name)
        if param_count is None:
            exported = ", ".join(compiled.functions) or "no functions"
            raise ExecutionError(
                f"module does not export function '{name}'; it exports: {exported}",
                hint="set Entrypoint to one of the exported functions",
            )
        if param_count:
            raise ExecutionError(
                f"entrypoint '{name}' takes {param_count} parameter(s); only a function without parameters "
                "can be an entrypoint",
                hint="pass inputs through Parameters (argv) or Env instead",
            )

    def _link_imports(self, module: wasmtime.Module, label: str) -> None:
        for item in module.imports:
            name = item.module
            if name in WASI_MODULES or name in self._defined:
                continue
            host = self._fs.find_module(name, match_basename=True)
            if host is None:
                raise ExecutionError(
                    f"{label} imports '{item.name}' from module '{name}', which is not in the task "
                    f"filesystem (input targets: {', '.join(self._fs.input_targets()) or 'none'})",
                    hint=f"add the module as an input with Target /{name.lstrip('/')} and list it in ImportModules",
                )
            instance = self._instantiate_import(host, f"import module {name}")
            self._define(name, instance)

    def _instantiate_import(self, host: Path, label: str) -> wasmtime.Instance:
        key = host.resolve()
        if key in self._instances:
            return self._instances[key]
        if key in self._in_progress:
            raise ExecutionError(f"{label} is part of an import cycle")
        self._in_progress.add(key)
        loaded = self.load(host, label)
        self._link_imports(loaded.module, label)
        instance = self._instantiate(loaded.module, label, self._linker)
        initialize = instance.exports(self._store).get("_initialize")
        if isinstance(initialize, wasmtime.Func):
            initialize(self._store)
        self._in_progress.discard(key)
        self._instances[key] = instance
        return instance

    def _define(self, name: str, instance: wasmtime.Instance) -> None:
        try:
            self._linker.define_instance(self._store, name, instance)
        except wasmtime.WasmtimeError as exc:
            raise ExecutionError(f"could not link import module {name}: {summarize(exc)}") from exc
        self._defined.add(name)

    def _instantiate(self, module: wasmtime.Module, label: str, linker: wasmtime.Linker) -> wasmtime.Instance:
        try:
            instance = linker.instantiate(self._store, module)
        except (wasmtime.Trap, wasmtime.ExitTrap):
            raise  # a start function trapped or exited: the caller reports it like the entrypoint's
        except wasmtime.WasmtimeError as exc:
            message = summarize(exc)
            hint = (
                "raise the task's Resources.Memory"
                if "memory" in message and "limit" in message
                else "check that every import of the module is provided"
            )
            raise ExecutionError(f"could not instantiate {label}: {message}", hint=hint) from exc
        return instance
