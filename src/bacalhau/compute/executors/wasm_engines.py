"""Wasmtime engines kept between WASM executions, each with what it compiled and a WASI linker.

Every execution still has an Engine to itself while it runs, so that an epoch increment (a stop, a
timeout) interrupts that execution only. But making the Engine, deserializing the module into it and
defining WASI in a new Linker cost more than running a trivial module; so an engine that finished an
execution is kept (at most MAX_IDLE) with its modules and its linker for the next one::

    acquire() ── idle engine? ── yes: its modules (by sha256) and its WASI linker, as left
                     └── no: a new Engine (epoch interruption), an empty module memo, a WASI linker
    ... run: Store(engine) with an epoch deadline of 1 beyond the engine's epoch now ...
    release() ── the execution detached its stop switch first, so a late stop cannot touch the next run

The shared linker defines only WASI (with the interruptible poll_oneoff, which reads the SleepControl
of whichever execution holds the engine). A module that imports anything else, or a run with
ImportModules, links in a linker of its own, since those definitions belong to one run's Store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from bacalhau.compute.executors.wasm_poll import SleepControl, define_poll_oneoff

MAX_IDLE = 4
MAX_MODULES = 8  # per engine; the executor's ModuleCache keeps the serialized code of many more


@dataclass(frozen=True)
class CompiledModule:
    """A module compiled for one engine, with what each run asks of it read once."""

    module: wasmtime.Module
    sha256: str
    import_modules: frozenset[str]  # the module names its imports come from
    functions: dict[str, int]  # exported functions and their parameter counts, in export order


def describe(module: wasmtime.Module, sha256: str) -> CompiledModule:
    """Read a module's imports and exported functions (ctypes calls: done once per engine and module)."""
    functions = {e.name: len(e.type.params) for e in module.exports if isinstance(e.type, wasmtime.FuncType)}
    return CompiledModule(module, sha256, frozenset(i.module for i in module.imports), functions)


@dataclass(eq=False)
class PooledEngine:
    """An Engine with its compiled modules and its WASI linker; used by one execution at a time."""

    engine: wasmtime.Engine
    linker: wasmtime.Linker = field(init=False)
    modules: OrderedDict[str, CompiledModule] = field(default_factory=OrderedDict)
    sleep: SleepControl | None = None  # the execution holding the engine now

    def __post_init__(self) -> None:
        self.linker = new_wasi_linker(self.engine, self.current_sleep)

    def current_sleep(self) -> SleepControl:
        """The SleepControl of the execution holding the engine (what the shared poll_oneoff reads)."""
        assert self.sleep is not None, "poll_oneoff called outside an execution"
        return self.sleep

    def module(self, sha256: str) -> CompiledModule | None:
        """The module compiled for this engine earlier, if it still has it."""
        found = self.modules.get(sha256)
        if found is not None:
            self.modules.move_to_end(sha256)
        return found

    def keep(self, compiled: CompiledModule) -> None:
        """Remember a module compiled for this engine; the least recently used goes past MAX_MODULES."""
        self.modules[compiled.sha256] = compiled
        while len(self.modules) > MAX_MODULES:
            self.modules.popitem(last=False)


def new_wasi_linker(engine: wasmtime.Engine, sleep: SleepControl | Callable[[], SleepControl]) -> wasmtime.Linker:
    """A linker defining WASI, with the interruptible poll_oneoff of wasm_poll."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    define_poll_oneoff(linker, sleep)
    return linker


def new_engine() -> wasmtime.Engine:
    """An Engine with epoch interruption (how a stop or a timeout traps the guest)."""
    config = wasmtime.Config()  # consumed by Engine(): a fresh one every time
    config.epoch_interruption = True
    return wasmtime.Engine(config)


class EnginePool:
    """Idle engines, thread-safe (executions acquire and release them from their own threads)."""

    def __init__(self, *, max_idle: int = MAX_IDLE) -> None:
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[PooledEngine] = []
        self.created = 0

    def acquire(self, sleep: SleepControl) -> PooledEngine:
        """An idle engine (or a new one) for the execution whose SleepControl is `sleep`."""
        with self._lock:
            pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                self.created += 1
        if pooled is None:
            pooled = PooledEngine(new_engine())
        pooled.sleep = sleep
        return pooled

    def release(self, pooled: PooledEngine) -> None:
        """The execution is over (its stop switch detached): keep the engine if fewer than max_idle wait."""
        pooled.sleep = None
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(pooled)
