"""WASI sleeps through the WasmExecutor and real wasmtime: long ones end on cancel and timeout, short ones
still sleep their full time on the clock the guest reads.

The WAT probe calls poll_oneoff with subscriptions built here byte by byte, then writes what came back
(errno, nevents, the guest's monotonic elapsed time, the events) to stdout for the test to decode. The C
sleeper goes through wasi-libc's sleep / usleep / clock_nanosleep, as a user's program would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from bacalhau.compute.executors.base import MountedInput, RunRequest
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.executors.wasm_poll import ClockId, EventType, sleep_until
from bacalhau.models.errors import ErrorCode, ExecutionError

WaitUntil = Callable[..., Coroutine[Any, Any, None]]
MS_NS = 1_000_000
LONG_NS = 1000 * 1_000_000_000  # the 1000 s sleep no test may wait out
BOUND_S = 10.0  # generous ceiling for "promptly"; the sleeps it guards are 100x longer
BUILD_PY = Path(__file__).resolve().parents[2] / "wasm" / "build.py"
SLEEPING = b"sleeping\n"

# Memory map of the probe: subscriptions at 0, scratch timestamp at 256, the banner's iovec at 280,
# the result record at 512: errno u32, nevents u32, elapsed_ns u64, then the events array.
PROBE_WAT = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{subscriptions}")
  (data (i32.const 264) "sleeping\\n")
  (func $now (param $id i32) (result i64)
    (drop (call $clock (local.get $id) (i64.const 1) (i32.const 256)))
    (i64.load (i32.const 256)))
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 280) (local.get $ptr))
    (i32.store (i32.const 284) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 280) (i32.const 1) (i32.const 288))))
  (func (export "_start")
    (local $start i64)
    (local.set $start (call $now (i32.const {monotonic})))  ;; before the deadline is set: elapsed >= sleep
    (if (i32.const {absolute})  ;; make the first subscription's timeout absolute: now + timeout
      (then (i64.store (i32.const 24)
        (i64.add (i64.load (i32.const 24)) (call $now (i32.load (i32.const 16)))))))
    (call $print (i32.const 264) (i32.const 9))
    (i32.store (i32.const 512)
      (call $poll (i32.const 0) (i32.const 528) (i32.const {count}) (i32.const 516)))
    (i64.store (i32.const 520) (i64.sub (call $now (i32.const {monotonic})) (local.get $start)))
    (call $print (i32.const 512) (i32.const {result_len}))))
"""

SLEEPER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long ms = atol(argv[2]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    printf("sleeping\n");
    fflush(stdout);
    if (strcmp(argv[1], "sleep") == 0) {
        sleep((unsigned)(ms / 1000));
    } else if (strcmp(argv[1], "usleep") == 0) {
        usleep((useconds_t)(ms * 1000));
    } else {  /* "abstime": clock_nanosleep to an absolute CLOCK_MONOTONIC deadline */
        struct timespec deadline = start;
        deadline.tv_sec += ms / 1000;
        deadline.tv_nsec += (ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
        if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) != 0) return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long elapsed_ms = (end.tv_sec - start.tv_sec) * 1000LL + (end.tv_nsec - start.tv_nsec) / 1000000;
    printf("slept %lld ms\n", elapsed_ms);
    return 0;
}
"""


def subscription(
    userdata: int, tag: int, *, ident: int = ClockId.MONOTONIC, timeout_ns: int = 0, flags: int = 0
) -> bytes:
    """48 bytes per the preview1 layout: userdata @0, tag @8, clock id | fd @16, timeout @24, flags @40."""
    raw = bytearray(48)
    raw[0:8] = userdata.to_bytes(8, "little")
    raw[8] = tag
    raw[16:20] = ident.to_bytes(4, "little")
    raw[24:32] = timeout_ns.to_bytes(8, "little")
    raw[40:42] = flags.to_bytes(2, "little")
    return bytes(raw)


@dataclass(frozen=True)
class PollResult:
    """What the probe's poll_oneoff returned, as the guest saw it."""

    errno: int
    nevents: int
    elapsed_ns: int
    events: list[tuple[int, int, int, int]]  # userdata, error, type, nbytes


def probe(tasks: Any, subs: list[bytes], *, absolute: bool = False, timeout_s: float | None = None) -> RunRequest:
    """A request running the probe over `subs`; `absolute` adds the guest's clock reading to sub 0's timeout."""
    wat = PROBE_WAT.format(
        subscriptions="".join(f"\\{byte:02x}" for byte in b"".join(subs)),
        absolute=int(absolute),
        monotonic=int(ClockId.MONOTONIC),
        count=len(subs),
        result_len=16 + 32 * len(subs),
    )
    module = tasks.dir("probe") / f"probe-{len(tasks.made)}.wasm"
    module.write_bytes(wasmtime.wat2wasm(wat))
    inputs = [MountedInput(module, "/probe.wasm")]
    return tasks.request(None, inputs=inputs, entry_module="/probe.wasm", timeout_s=timeout_s)


def poll_result(request: RunRequest) -> PollResult:
    out = request.stdout_path.read_bytes()
    assert out.startswith(SLEEPING), out
    record = out[len(SLEEPING) :]
    errno, nevents, elapsed_ns = struct.unpack_from("<IIQ", record)
    events = [
        (userdata, error, kind, nbytes)
        for userdata, error, kind, nbytes in struct.iter_unpack("<QHB5xQ8x", record[16 : 16 + 32 * nevents])
    ]
    return PollResult(errno, nevents, elapsed_ns, events)


def stdout(request: RunRequest) -> bytes:
    return request.stdout_path.read_bytes() if request.stdout_path.exists() else b""


def sleeping_in_poll(request: RunRequest) -> bool:
    """True once the run's worker thread is waiting inside wasm_poll (not merely about to call it)."""
    name = f"wasm-{request.execution_id}"
    thread = next((t for t in threading.enumerate() if t.name == name), None)
    frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
    while frame is not None:
        if frame.f_code is sleep_until.__code__:
            return True
        frame = frame.f_back
    return False


@pytest.fixture
def executor() -> WasmExecutor:
    return WasmExecutor()


@pytest.fixture(scope="module")
def sleeper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C sleeper compiled with the test modules' builder (clang --target=wasm32-wasi)."""
    spec = importlib.util.spec_from_file_location("wasm_poll_test_build", BUILD_PY)
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    source = tmp_path_factory.mktemp("sleeper-src") / "sleeper.c"
    source.write_text(SLEEPER_C)
    try:
        built: dict[str, Path] = builder.build_modules(tmp_path_factory.mktemp("sleeper"), [source])
    except builder.BuildError as exc:
        if "not found" in str(exc):
            pytest.skip(str(exc))  # the `tasks` fixture already skips, or fails under CI, without clang
        raise
    return built["sleeper"]


def sleeper_request(tasks: Any, sleeper: Path, how: str, ms: int, *, timeout_s: float | None = None) -> RunRequest:
    return tasks.request(
        None,
        inputs=[MountedInput(sleeper, "/sleeper.wasm")],
        entry_module="/sleeper.wasm",
        params=[how, str(ms)],
        timeout_s=timeout_s,
    )


# -- long sleeps end on a stop ---------------------------------------------------------------------------
async def test_cancel_ends_a_1000_second_sleep_promptly(
    executor: WasmExecutor, tasks: Any, wait_until: WaitUntil
) -> None:
    request = probe(tasks, [subscription(1, EventType.CLOCK, timeout_ns=LONG_NS)])
    run = asyncio.create_task(executor.run(request))
    await wait_until(lambda: sleeping_in_poll(request))
    started = time.monotonic()
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await run
    assert time.monotonic() - started < BOUND_S
    assert stdout(request) == SLEEPING  # trapped by the epoch: the probe never got to print a result


async def test_execution_timeout_ends_a_1000_second_sleep(executor: WasmExecutor, tasks: Any) -> None:
    started = time.monotonic()
    with pytest.raises(ExecutionError) as caught:
        await executor.run(probe(tasks, [subscription(1, EventType.CLOCK, timeout_ns=LONG_NS)], timeout_s=0.3))
    assert caught.value.message == "execution timed out after 0.3s"
    assert caught.value.code == ErrorCode.TimeOut
    assert time.monotonic() - started < BOUND_S


async def test_cancelling_the_awaiting_task_ends_a_long_sleep(
    executor: WasmExecutor, tasks: Any, wait_until: WaitUntil
) -> None:
    request = probe(tasks, [subscription(1, EventType.CLOCK, timeout_ns=LONG_NS)])
    run = asyncio.create_task(executor.run(request))
    await wait_until(lambda: sleeping_in_poll(request))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, BOUND_S)


async def test_cancel_ends_a_long_sleep_of_a_c_program(
    executor: WasmExecutor, tasks: Any, sleeper: Path, wait_until: WaitUntil
) -> None:
    request = sleeper_request(tasks, sleeper, "sleep", 100_000 * 1000)
    run = asyncio.create_task(executor.run(request))
    await wait_until(lambda: sleeping_in_poll(request))
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await asyncio.wait_for(run, BOUND_S)
    assert stdout(request) == SLEEPING


async def test_execution_timeout_ends_a_long_sleep_of_a_c_program(
    executor: WasmExecutor, tasks: Any, sleeper: Path
) -> None:
    request = sleeper_request(tasks, sleeper, "sleep", 100_000 * 1000, timeout_s=0.3)
    with pytest.raises(ExecutionError, match=r"^execution timed out after 0\.3s$"):
        await asyncio.wait_for(executor.run(request), BOUND_S)


# -- short sleeps still sleep --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("clock", "absolute"),
    [(ClockId.MONOTONIC, False), (ClockId.REALTIME, False), (ClockId.MONOTONIC, True), (ClockId.REALTIME, True)],
    ids=["monotonic", "realtime", "monotonic-abstime", "realtime-abstime"],
)
async def test_a_50_ms_sleep_completes_after_at_least_50_ms(
    executor: WasmExecutor, tasks: Any, clock: ClockId, absolute: bool
) -> None:
    # An absolute monotonic deadline is in the guest's clock, which wasmtime starts with the WasiConfig:
    # mapped wrongly it would be hours away, hence the timeout as the ceiling.
    sub = subscription(77, EventType.CLOCK, ident=clock, timeout_ns=50 * MS_NS, flags=int(absolute))
    request = probe(tasks, [sub], absolute=absolute, timeout_s=BOUND_S)
    started = time.monotonic()
    outcome = await executor.run(request)
    assert time.monotonic() - started >= 0.05
    assert outcome.exit_code == 0
    result = poll_result(request)
    assert (result.errno, result.nevents) == (0, 1)
    assert result.events == [(77, 0, EventType.CLOCK, 0)]
    assert result.elapsed_ns >= 50 * MS_NS - (MS_NS if clock is ClockId.REALTIME and absolute else 0)


async def test_an_fd_subscription_is_ready_without_waiting_for_the_clock(executor: WasmExecutor, tasks: Any) -> None:
    subs = [subscription(1, EventType.CLOCK, timeout_ns=LONG_NS), subscription(2, EventType.FD_WRITE, ident=1)]
    request = probe(tasks, subs, timeout_s=BOUND_S)
    assert (await executor.run(request)).exit_code == 0
    result = poll_result(request)
    assert (result.errno, result.events) == (0, [(2, 0, EventType.FD_WRITE, 1)])


async def test_a_bad_subscription_is_reported_to_the_guest(executor: WasmExecutor, tasks: Any) -> None:
    request = probe(tasks, [subscription(1, EventType.CLOCK, ident=2, timeout_ns=LONG_NS)], timeout_s=BOUND_S)
    assert (await executor.run(request)).exit_code == 0
    result = poll_result(request)
    assert (result.errno, result.nevents) == (28, 0)  # EINVAL, as wasmtime answers for a cputime clock


@pytest.mark.parametrize("how", ["usleep", "abstime"])
async def test_a_c_program_sleeping_50_ms_completes_after_at_least_50_ms(
    executor: WasmExecutor, tasks: Any, sleeper: Path, how: str
) -> None:
    request = sleeper_request(tasks, sleeper, how, 50, timeout_s=BOUND_S)
    started = time.monotonic()
    outcome = await executor.run(request)
    assert time.monotonic() - started >= 0.05
    assert outcome.exit_code == 0, request.stderr_path.read_text()
    banner, slept = stdout(request).decode().splitlines()
    assert banner == "sleeping"
    assert int(slept.removeprefix("slept ").removesuffix(" ms")) >= 50
