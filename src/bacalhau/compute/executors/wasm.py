"""The WASM executor: runs a WASI module with wasmtime, one Engine at a time per execution.

    run(request) ── params invalid / cancelled earlier ──────────────────────> ExecutionError
       │ register execution_id                       cancel(id) ──┐   timeout timer ──┐
       v                                                          v                   v
    run thread: pooled Engine (epoch_interruption) + Store   stop(reason): remember why, then
       │  epoch deadline 1, memory limit, WASI config        engine.increment_epoch() (thread-safe)
       │  (argv, env, stdout/stderr files, preopens)         and set `woken` (ends a WASI sleep)
       v                                                              │ traps the running code at
    load entry module: the engine's own, else ModuleCache         its next loop back-edge
       │  (hit: deserialize, miss: compile)                           │
       │  check the Entrypoint export                                 │ or function entry
       v                                                              │
    instantiate ImportModules and every module the entry imports <────┤
       │  (import module name X resolves as a path in the task)       │
       v                                                              │
    call Entrypoint ── returns ──────> RunOutcome(exit_code=0)        │
                    ── proc_exit(N) ─> RunOutcome(exit_code=N)        │
                    ── trap ─────────> ExecutionError: "execution timed out after Ns" /
                                       "execution cancelled" / "wasm trap: <cause>"

An Engine used by one execution at a time is what makes `cancel` precise: the epoch is per Engine, so
incrementing it interrupts that execution only. Engines are kept between executions with the modules
they compiled and a WASI linker (wasm_engines.py); an execution detaches its stop switch before its
engine goes back, so a late stop never reaches the next run. Compiled code is also shared across
engines through ModuleCache.
Epoch checks happen in wasm code only, so the one WASI call that can block for long, `poll_oneoff`
(sleep, nanosleep, poll), is wasm_poll's: it waits on the execution's `woken` Event and returns as soon
as `stop` sets it, and the epoch traps the guest right after.
"""

from __future__ import annotations

import posixpath
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import wasmtime

from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.compute.executors.stopping import RunningExecutions, Stop, stop_error
from bacalhau.compute.executors.wasm_cache import ModuleCache
from bacalhau.compute.executors.wasm_engines import EnginePool, PooledEngine
from bacalhau.compute.executors.wasm_fs import TaskFilesystem, guest_path
from bacalhau.compute.executors.wasm_link import ModuleLinker, summarize
from bacalhau.compute.executors.wasm_poll import SleepControl
from bacalhau.models.errors import ExecutionError, FieldError, ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig

T = TypeVar("T")
_PARAMS = "Engine.Params"


@dataclass(frozen=True)
class WasmParams:
    """The wasm engine params, decoded case-insensitively as Bacalhau does."""

    entry_module: str
    entrypoint: str
    parameters: list[str]
    import_modules: list[str]

    @classmethod
    def parse(cls, engine: SpecConfig) -> WasmParams:
        """Decode and check the params; raise ValidationFailed listing every problem."""
        errors: list[FieldError] = []
        entry = engine.param("EntryModule")
        if not isinstance(entry, str) or not entry.strip():
            got = "an object" if isinstance(entry, dict) else repr(entry)
            problem = f"must be the target path of the input holding the module; got {got}"
            errors.append(FieldError(f"{_PARAMS}.EntryModule", problem))
        entrypoint = engine.param("Entrypoint")
        if entrypoint is not None and not isinstance(entrypoint, str):
            errors.append(FieldError(f"{_PARAMS}.Entrypoint", "must be a function name (string)"))
        parameters = _string_list(engine.param("Parameters"), "Parameters", errors)
        imports = _string_list(engine.param("ImportModules"), "ImportModules", errors)
        paths = [("ImportModules", path) for path in imports]
        if isinstance(entry, str):
            paths.insert(0, ("EntryModule", entry))
        for where, path in paths:
            try:
                guest_path(path)
            except ValueError as exc:
                errors.append(FieldError(f"{_PARAMS}.{where}", str(exc)))
        if errors:
            raise ValidationFailed(errors, hint="see the wasm engine params in the job spec")
        assert isinstance(entry, str)
        return cls(entry.strip(), (entrypoint or "").strip() or "_start", parameters, imports)


def _string_list(value: Any, name: str, errors: list[FieldError]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.append(FieldError(f"{_PARAMS}.{name}", "must be a list of strings"))
        return []
    return list(value)


class _Execution:
    """One run's stop switch, shared by the worker thread, the timeout timer and `cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine: wasmtime.Engine | None = None
        self.stop_reason: Stop | None = None
        # Set once by a stop, never cleared: a sleep that starts after the stop returns at once.
        self.woken = threading.Event()

    def detach(self) -> None:
        """The run is over: later stops only record their reason (its engine goes to another run)."""
        with self._lock:
            self._engine = None

    def attach(self, engine: wasmtime.Engine) -> None:
        """Arm the switch. Call after `set_epoch_deadline`: an earlier increment would be absorbed."""
        with self._lock:
            self._engine = engine
            if self.stop_reason is not None:  # also a cancel that RunningExecutions recorded directly
                self.woken.set()
                engine.increment_epoch()

    def stop(self, reason: Stop) -> None:
        """Interrupt the running code; the first reason wins (a cancel after a timeout stays a timeout)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            # Epoch first: when the sleeper wakes and returns to wasm, the trap must already be armed.
            if self._engine is not None:
                self._engine.increment_epoch()
            self.woken.set()

    def error(self, timeout_s: float | None, details: dict[str, str]) -> ExecutionError:
        return stop_error(self.stop_reason, timeout_s, details)

    def raise_if_stopped(self, timeout_s: float | None, details: dict[str, str]) -> None:
        if self.stop_reason is not None:
            raise self.error(timeout_s, details)


class WasmExecutor:
    """Runs `wasm` engine tasks with wasmtime; compiled modules are cached in memory and in `cache_dir`."""

    def __init__(self, *, cache_dir: Path | None = None) -> None:
        self._cache = ModuleCache(cache_dir=cache_dir)
        self._engines = EnginePool()
        self._runs: RunningExecutions[_Execution] = RunningExecutions()

    def is_installed(self) -> bool:
        """Always true: wasmtime is a dependency of the package."""
        return True

    def validate(self, engine: SpecConfig, *, network: NetworkConfig | None = None) -> None:
        """Raise ValidationFailed with `Engine.Params.*` paths when the params are unusable."""
        WasmParams.parse(engine)

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run the module to completion in a worker thread; see the module docstring for the errors."""
        try:
            params = WasmParams.parse(request.engine)
        except ValidationFailed as exc:
            raise ExecutionError(f"invalid wasm engine params: {exc.message}", hint=exc.hint) from exc
        execution = _Execution()
        return await self._runs.run(
            request.execution_id,
            execution,
            lambda: self._run_sync(request, params, execution),
            timeout_s=request.timeout_s,
            name=f"wasm-{request.execution_id}",
        )

    async def cancel(self, execution_id: str) -> None:
        """Interrupt a running execution (its `run` raises "execution cancelled"), or pre-empt it."""
        await self._runs.stop(execution_id)

    def _run_sync(self, request: RunRequest, params: WasmParams, execution: _Execution) -> RunOutcome:
        with TaskFilesystem.build(request.inputs, request.outputs) as fs:
            return self._run_in(fs, request, params, execution)

    def _run_in(self, fs: TaskFilesystem, request: RunRequest, params: WasmParams, execution: _Execution) -> RunOutcome:
        entry_path = fs.find_module(params.entry_module)
        if entry_path is None:
            raise ExecutionError(
                f"EntryModule {params.entry_module} not found among the task inputs "
                f"(targets: {', '.join(fs.input_targets()) or 'none'})",
                hint="set EntryModule to the Target (or Alias) of the input that holds the .wasm module",
            )
        wasi = wasmtime.WasiConfig()
        # wasmtime's guest monotonic clock starts with the WasiConfig: read ours just after, never before.
        sleep = SleepControl(woken=execution.woken, monotonic_origin_ns=time.monotonic_ns())
        pooled = self._engines.acquire(sleep)
        try:
            return self._run_on(pooled, wasi, fs, entry_path, request, params, execution)
        finally:
            # Detached first: a stop arriving from now on must not interrupt the engine's next execution.
            execution.detach()
            self._engines.release(pooled)

    def _run_on(self, pooled: PooledEngine, wasi: wasmtime.WasiConfig, fs: TaskFilesystem, entry_path: Path,
                request: RunRequest, params: WasmParams, execution: _Execution) -> RunOutcome:
        store = wasmtime.Store(pooled.engine)
        store.set_epoch_deadline(1)
        if request.resources.memory > 0:
            # memory.grow beyond this returns -1: C's malloc returns NULL rather than trapping.
            store.set_limits(memory_size=request.resources.memory)
        try:
            store.set_wasi(_configure_wasi(wasi, request, params, fs))
        except wasmtime.WasmtimeError as exc:
            raise ExecutionError(f"could not set up WASI for the task: {summarize(exc)}") from exc
        execution.attach(pooled.engine)

        linker = ModuleLinker(pooled=pooled, store=store, fs=fs, cache=self._cache)
        label = f"EntryModule {params.entry_module}"
        entry = linker.load(entry_path, label)
        details = {"ModuleSHA256": entry.sha256, "CompileCache": "hit" if entry.cache_hit else "miss"}
        try:
            func = linker.prepare_entry(entry, label, params.entrypoint, params.import_modules)
            execution.raise_if_stopped(request.timeout_s, details)
            func(store)
            exit_code = 0
        except wasmtime.ExitTrap as exc:  # WASI proc_exit: a normal end with a code
            exit_code = exc.code
        except wasmtime.WasmtimeError as exc:  # a host-side failure, not a trap of the module
            raise ExecutionError(f"wasm execution failed: {summarize(exc)}", details=details) from exc
        except wasmtime.Trap as exc:
            if execution.stop_reason is not None:
                raise execution.error(request.timeout_s, details) from exc
            raise ExecutionError(
                f"wasm trap: {summarize(exc).removeprefix('wasm trap: ')}",
                hint="the module crashed; its stderr file may say more",
                details={**details, "Backtrace": str(exc)},
            ) from exc
        except ExecutionError as exc:
            exc.details = {**details, **exc.details}
            raise
        # A cancel that lost the race with a normal exit still cancels: the caller asked to discard it.
        execution.raise_if_stopped(request.timeout_s, details)
        return RunOutcome(exit_code=exit_code, details=details)


def _configure_wasi(
    wasi: wasmtime.WasiConfig, request: RunRequest, params: WasmParams, fs: TaskFilesystem
) -> wasmtime.WasiConfig:
    wasi.argv = [posixpath.basename(guest_path(params.entry_module)), *params.parameters]
    wasi.env = sorted(request.env.items())
    wasi.stdout_file = str(request.stdout_path)
    wasi.stderr_file = str(request.stderr_path)
    for preopen in fs.preopens:
        wasi.preopen_dir(str(preopen.host_path), preopen.guest_path, preopen.writable)
    return wasi
