"""Pooled wasmtime engines, through the real WasmExecutor and real wasmtime, plus EnginePool/PooledEngine
directly.

Keeping an Engine between executions (with its compiled modules and its WASI linker) must stay invisible
to the runs: a run on a reused engine behaves like one on a fresh engine, a stop meant for one run never
reaches the next run on the same engine, and import-module definitions of one run never leak into the
linker the next run uses. The pool itself must stay bounded (idle engines, modules per engine).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from bacalhau.compute.executors import wasm_engines
from bacalhau.compute.executors.base import MountedInput, RunRequest
from bacalhau.compute.executors.stopping import Stop
from bacalhau.compute.executors.wasm import WasmExecutor, _Execution
from bacalhau.compute.executors.wasm_cache import LoadedModule
from bacalhau.compute.executors.wasm_engines import (
    MAX_MODULES,
    EnginePool,
    PooledEngine,
    describe,
    new_engine,
)
from bacalhau.compute.executors.wasm_poll import SleepControl
from bacalhau.models.errors import ExecutionError

WaitUntil = Callable[..., Coroutine[Any, Any, None]]
BOUND_S = 10.0  # generous ceiling for "promptly"


@pytest.fixture
def executor() -> WasmExecutor:
    return WasmExecutor()


@dataclass
class Attachments:
    """Every (execution, engine) pair armed by `_Execution.attach`, in order: which engine each run used."""

    pairs: list[tuple[_Execution, wasmtime.Engine]] = field(default_factory=list)
    barrier: threading.Barrier | None = None  # when set, each run waits here right after arming

    def engines(self) -> list[wasmtime.Engine]:
        return [engine for _, engine in self.pairs]


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch) -> Attachments:
    """Records each run's stop switch and engine; the switch is what a late `cancel` would still hold."""
    record = Attachments()
    attach = _Execution.attach

    def recording_attach(self: _Execution, engine: wasmtime.Engine) -> None:
        attach(self, engine)
        record.pairs.append((self, engine))
        if record.barrier is not None:
            record.barrier.wait()

    monkeypatch.setattr(_Execution, "attach", recording_attach)
    return record


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def uses_lib(tasks: Any, *, import_modules: bool) -> RunRequest:
    """uses_lib.wasm, which imports `add` from module "lib.wasm": listed in ImportModules or found by name."""
    lib = MountedInput(tasks.modules["lib"], "/lib.wasm")
    request: RunRequest = tasks.request(
        "uses_lib", inputs=[lib], import_modules=["/lib.wasm"] if import_modules else None
    )
    return request


# -- reuse through the executor ----------------------------------------------------------------------------
async def test_sequential_runs_share_one_engine_and_its_compiled_module(
    executor: WasmExecutor, tasks: Any, attached: Attachments, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run of a module takes the idle engine and the module it compiled: no new Engine, and not
    even a deserialization from the executor's ModuleCache (whose hit would report "hit" just the same)."""
    cache_loads: list[str] = []
    load = executor._cache.load

    def counting_load(engine: wasmtime.Engine, wasm: bytes, *, digest: str = "") -> LoadedModule:
        cache_loads.append(digest)
        return load(engine, wasm, digest=digest)

    monkeypatch.setattr(executor._cache, "load", counting_load)
    digest = hashlib.sha256(tasks.modules["hello"].read_bytes()).hexdigest()
    first, second = tasks.request("hello"), tasks.request("hello")

    first_outcome = await executor.run(first)
    second_outcome = await executor.run(second)

    assert (first_outcome.exit_code, second_outcome.exit_code) == (0, 0)
    assert read(first.stdout_path) == read(second.stdout_path) == "hello from wasm\n"
    assert first_outcome.details == {"ModuleSHA256": digest, "CompileCache": "miss"}
    assert second_outcome.details == {"ModuleSHA256": digest, "CompileCache": "hit"}
    assert executor._engines.created == 1
    engine_a, engine_b = attached.engines()
    assert engine_a is engine_b
    assert cache_loads == [digest]  # the second run found the module on its engine


async def test_import_module_runs_do_not_pollute_the_pooled_wasi_linker(
    executor: WasmExecutor, tasks: Any, attached: Attachments
) -> None:
    """Import modules are defined in a linker of the run's own, with instances of that run's Store: were
    they defined in the engine's shared linker, the next import run would fail ("defined twice", or an
    instance of another store), and every plain run would link against a dead store's exports."""
    runs = [
        uses_lib(tasks, import_modules=True),
        tasks.request("hello"),
        uses_lib(tasks, import_modules=True),
        uses_lib(tasks, import_modules=False),  # resolved through the filesystem by its module name
        tasks.request("hello"),
    ]
    for request in runs:
        outcome = await executor.run(request)
        assert outcome.exit_code == 0, read(request.stderr_path)
    assert [read(r.stdout_path) for r in runs] == [
        "2+3=5\n",
        "hello from wasm\n",
        "2+3=5\n",
        "2+3=5\n",
        "hello from wasm\n",
    ]
    assert executor._engines.created == 1
    assert len(set(map(id, attached.engines()))) == 1


async def test_a_stop_that_arrives_after_its_run_ended_spares_the_next_run_on_the_engine(
    executor: WasmExecutor, tasks: Any, attached: Attachments, wait_until: WaitUntil
) -> None:
    """`cancel` takes a run's switch, then stops it from another thread: the run may end, and its engine
    go to the next run, in between. That late stop must only be recorded, never interrupt the new run."""
    await executor.run(tasks.request("hello"))
    ((finished, engine),) = attached.pairs

    sleeper = tasks.request("sleep", params=["1000"])
    running = asyncio.create_task(executor.run(sleeper))
    await wait_until(lambda: len(attached.pairs) == 2, timeout_s=BOUND_S)  # armed on the pooled engine
    assert attached.pairs[1][1] is engine
    assert not running.done()  # the stop below lands while the sleeper runs, or this test proves nothing
    finished.stop(Stop.CANCELLED)

    outcome = await asyncio.wait_for(running, BOUND_S)
    assert outcome.exit_code == 0
    assert read(sleeper.stdout_path) == "slept 1000 ms\n"
    assert finished.stop_reason is Stop.CANCELLED
    assert executor._engines.created == 1


@pytest.mark.parametrize(
    ("how", "message"),
    [("cancel", "execution cancelled"), ("timeout", "execution timed out after 0.3s")],
)
async def test_a_stopped_run_is_interrupted_promptly_and_its_engine_serves_the_next_run(
    executor: WasmExecutor, tasks: Any, attached: Attachments, wait_until: WaitUntil, how: str, message: str
) -> None:
    """A stop increments the engine's epoch; the engine then goes back to the pool, and the next run on it
    (deadline relative to the epoch now, its own sleep control) must run to its end, sleeps included."""
    looping = tasks.request("loop", timeout_s=0.3 if how == "timeout" else None)
    run = asyncio.create_task(executor.run(looping))
    await wait_until(lambda: "looping" in read(looping.stdout_path), timeout_s=BOUND_S)
    started = time.monotonic()
    if how == "cancel":
        await executor.cancel(looping.execution_id)
    with pytest.raises(ExecutionError) as caught:
        await asyncio.wait_for(run, BOUND_S)
    assert caught.value.message == message
    assert time.monotonic() - started < 5

    sleeper = tasks.request("sleep", params=["200"])
    outcome = await asyncio.wait_for(executor.run(sleeper), BOUND_S)
    assert outcome.exit_code == 0
    assert read(sleeper.stdout_path) == "slept 200 ms\n"
    assert executor._engines.created == 1
    first_engine, second_engine = attached.engines()
    assert first_engine is second_engine


async def test_concurrent_runs_use_separate_engines(executor: WasmExecutor, tasks: Any, attached: Attachments) -> None:
    """An engine serves one run at a time (its epoch is that run's stop switch): two runs in progress at
    once (held together by a barrier once armed) need two engines, and both engines are kept after."""
    attached.barrier = threading.Barrier(2, timeout=BOUND_S)  # broken, failing both runs, if they ran apart
    sleepers = [tasks.request("sleep", params=["100"]), tasks.request("sleep", params=["100"])]
    outcomes = await asyncio.wait_for(asyncio.gather(*(executor.run(r) for r in sleepers)), BOUND_S)
    assert [o.exit_code for o in outcomes] == [0, 0]
    assert [read(r.stdout_path) for r in sleepers] == ["slept 100 ms\n", "slept 100 ms\n"]
    engine_a, engine_b = attached.engines()
    assert engine_a is not engine_b
    assert executor._engines.created == 2

    attached.barrier = None
    for _ in range(2):  # both went back to the pool: sequential runs make no third engine
        assert (await executor.run(tasks.request("hello"))).exit_code == 0
    assert executor._engines.created == 2
    assert {id(e) for e in attached.engines()[2:]} <= {id(engine_a), id(engine_b)}


# -- EnginePool and PooledEngine directly ----------------------------------------------------------------
def sleep_control() -> SleepControl:
    return SleepControl(woken=threading.Event(), monotonic_origin_ns=time.monotonic_ns())


def test_release_keeps_at_most_max_idle_engines() -> None:
    """A burst of concurrent runs must not leave every one of its engines (and their code) in memory."""
    pool = EnginePool(max_idle=2)
    burst = [pool.acquire(sleep_control()) for _ in range(3)]
    assert pool.created == 3
    assert len({id(p) for p in burst}) == 3
    for pooled in burst:
        pool.release(pooled)

    again = [pool.acquire(sleep_control()) for _ in range(3)]
    assert pool.created == 4  # two came back from the pool, one had to be made
    assert sum(any(p is b for b in burst) for p in again) == 2


def test_an_engine_serves_the_sleep_control_of_whichever_run_holds_it() -> None:
    """The shared linker's poll_oneoff reads the holder's SleepControl: a released engine has none, and the
    next holder's replaces the previous one (else a stopped run's `woken` would cut the next run's sleeps)."""
    pool = EnginePool(max_idle=1)
    first_control, second_control = sleep_control(), sleep_control()
    pooled = pool.acquire(first_control)
    assert pooled.current_sleep() is first_control
    pool.release(pooled)
    assert pooled.sleep is None
    with pytest.raises(AssertionError, match="outside an execution"):
        pooled.current_sleep()
    assert pool.acquire(second_control) is pooled
    assert pooled.current_sleep() is second_control


def tiny_module(engine: wasmtime.Engine, n: int) -> wasm_engines.CompiledModule:
    """A distinct module per `n` (its export's name differs), keyed by the sha256 of its WAT text."""
    wat = f'(module (func (export "f{n}")))'
    return describe(wasmtime.Module(engine, wat), hashlib.sha256(wat.encode()).hexdigest())


def test_an_engine_keeps_at_most_max_modules_dropping_the_oldest() -> None:
    """Compiled code stays in memory as long as its engine: the memo per engine must be bounded."""
    pooled = PooledEngine(new_engine())
    modules = [tiny_module(pooled.engine, n) for n in range(MAX_MODULES + 1)]
    for compiled in modules:
        pooled.keep(compiled)
    assert len(pooled.modules) == MAX_MODULES
    assert pooled.module(modules[0].sha256) is None
    for compiled in modules[1:]:
        assert pooled.module(compiled.sha256) is compiled


def test_a_module_used_again_is_kept_over_one_unused_since() -> None:
    """`module()` counts as a use: a module every run needs is not evicted by a stream of one-off modules."""
    pooled = PooledEngine(new_engine())
    modules = [tiny_module(pooled.engine, n) for n in range(MAX_MODULES + 1)]
    for compiled in modules[:MAX_MODULES]:
        pooled.keep(compiled)
    assert pooled.module(modules[0].sha256) is modules[0]  # the oldest, used again
    pooled.keep(modules[MAX_MODULES])
    assert pooled.module(modules[0].sha256) is modules[0]
    assert pooled.module(modules[1].sha256) is None  # the least recently used went instead
    assert len(pooled.modules) == MAX_MODULES


def test_describe_reads_import_module_names_and_entrypoint_arities() -> None:
    """What picks the linker (imports beyond WASI) and checks the entrypoint (no parameters) comes from here."""
    engine = new_engine()
    wat = """(module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (import "lib.wasm" "add" (func (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start"))
      (func (export "takes_two") (param i32 i64)))"""
    compiled = describe(wasmtime.Module(engine, wat), "digest")
    assert compiled.import_modules == frozenset({"wasi_snapshot_preview1", "lib.wasm"})
    assert compiled.functions == {"_start": 0, "takes_two": 2}
    assert list(compiled.functions) == ["_start", "takes_two"]
    assert compiled.sha256 == "digest"
