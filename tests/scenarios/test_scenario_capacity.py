"""Capacity queueing: on a node with one CPU to give, two jobs asking 0.8 CPU each both complete, one
after the other (the second execution starts only once the first has ended); a waiting job can be
followed and stopped; a job that can never fit fails."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from scenario_jobs import (
    EXEC_BID_ACCEPTED,
    EXEC_CANCELLED,
    EXEC_COMPLETED,
    EXEC_FAILED,
    EXEC_RUNNING,
    JobWatch,
    one_job_id,
)

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

SPIN_S = 3
TERMINAL_EXEC_STATES = (EXEC_COMPLETED, EXEC_FAILED, EXEC_CANCELLED)


def spin_module(seconds: float) -> bytes:
    """A WASI module whose `_start` busy-waits `seconds` on the monotonic clock, then returns (exit 0)."""
    wat = f"""
    (module
      (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (local $end i64)
        (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))
        (local.set $end (i64.add (i64.load (i32.const 0)) (i64.const {int(seconds * 1e9)})))
        (loop $again
          (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 0)))
          (br_if $again (i64.lt_u (i64.load (i32.const 0)) (local.get $end))))))
    """
    return bytes(wasmtime.wat2wasm(wat))


def time_ns(rfc3339: str) -> int:
    """A history `Time` (RFC3339 with up to nanosecond digits) as Unix nanoseconds."""
    match = re.fullmatch(r"(.+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    assert match, rfc3339
    whole, fraction, zone = match.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def execution_events(watch: JobWatch, job_id: str) -> dict[int, int]:
    """{new execution state: time in ns} from the job's execution-level history (one execution)."""
    events: dict[int, int] = {}
    for item in watch.history(job_id):
        state = item.get("ExecutionState")
        if state:
            events.setdefault(state["New"], time_ns(item["Time"]))
    return events


@dataclass(frozen=True)
class SmallNode:
    node: BacalhauNode
    watch: JobWatch
    spin: Path  # a module that runs SPIN_S seconds, then exits 0


@pytest.fixture(scope="module")
def small(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallNode]:
    """A node with one CPU to give (jobs here ask 0.8 each, so only one runs at a time)."""
    spin = tmp_path_factory.mktemp("spin") / "spin.wasm"
    spin.write_bytes(spin_module(SPIN_S))
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(extra_config=["Compute.AllocatedCapacity.CPU=1"])
        yield SmallNode(node, JobWatch(node.url, node.log_excerpt), spin)
    finally:
        pool.close()


def submit_cpu_job(small: SmallNode, module: Path, *args: str) -> str:
    """`bacalhau wasm run --cpu 0.8 --wait=false --id-only MODULE [-- ARGS]`; return the job ID."""
    cmd = ["wasm", "run", "--wait=false", "--id-only", "--cpu", "0.8", str(module)]
    return small.node.ok(*cmd, *(["--", *args] if args else [])).stdout.strip()


def test_two_jobs_that_do_not_fit_together_run_one_after_the_other(small: SmallNode) -> None:
    node, watch = small.node, small.watch
    first = submit_cpu_job(small, small.spin)
    watch.wait_execution(first, EXEC_RUNNING, *TERMINAL_EXEC_STATES)
    second = submit_cpu_job(small, small.spin)

    for job_id in (first, second):
        watch.wait_state(job_id, "Completed", timeout_s=60)
        watch.wait_execution(job_id, EXEC_COMPLETED)
    first_events, second_events = execution_events(watch, first), execution_events(watch, second)
    explain = f"first: {first_events}\nsecond: {second_events}\n{node.log_excerpt()}"
    first_end = first_events[EXEC_COMPLETED]
    # Precondition: the second job reached the node while the first was still running ...
    second_submitted = min(second_events.values())
    assert second_submitted < first_end, "the second job arrived after the first ended: nothing to queue\n" + explain
    # ... and it only started once the first had ended.
    assert second_events[EXEC_RUNNING] >= first_end, explain
    for job_id in (first, second):
        execution = watch.executions(job_id)[0]
        assert execution["RunOutput"]["ExitCode"] == 0, execution


def test_job_logs_follow_of_a_waiting_job_streams_once_it_runs(
    small: SmallNode, wasm_modules: dict[str, Path]
) -> None:
    node, watch = small.node, small.watch
    busy = submit_cpu_job(small, wasm_modules["loop"])
    watch.wait_execution(busy, EXEC_RUNNING)
    waiting = submit_cpu_job(small, wasm_modules["hello"], "was queued")
    watch.wait_execution(waiting, EXEC_BID_ACCEPTED)
    follower = subprocess.Popen(
        [str(node.binary), "job", "logs", "-f", waiting],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=node.env,
    )
    try:
        # Nothing to print while the loop holds the CPU: the follower must wait, not give up empty-handed.
        node.ok("job", "stop", busy)
        stdout, stderr = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate(timeout=10)
    assert follower.returncode == 0, f"exit {follower.returncode}\n{stdout}\n{stderr}"
    assert "arg1=was queued" in stdout, f"{stdout}\n{stderr}"
    watch.wait_state(waiting, "Completed")


def test_stopping_a_waiting_job_cancels_it_before_it_ever_runs(
    small: SmallNode, wasm_modules: dict[str, Path]
) -> None:
    node, watch = small.node, small.watch
    busy = submit_cpu_job(small, wasm_modules["loop"])
    watch.wait_execution(busy, EXEC_RUNNING)
    waiting = submit_cpu_job(small, wasm_modules["hello"])
    watch.wait_execution(waiting, EXEC_BID_ACCEPTED)
    try:
        node.ok("job", "stop", waiting)
        watch.wait_state(waiting, "Stopped", timeout_s=30)
        watch.wait_execution(waiting, EXEC_CANCELLED, timeout_s=30)
        assert EXEC_RUNNING not in execution_events(watch, waiting), watch.history(waiting)
        assert watch.state(busy) == "Running", watch.job(busy)  # the other job is untouched
    finally:
        node.cli("job", "stop", busy)
    watch.wait_state(busy, "Stopped", timeout_s=30)


def test_a_job_asking_more_than_the_node_can_ever_give_fails(small: SmallNode) -> None:
    result = small.node.fails("wasm", "run", "--cpu", "2", str(small.spin))
    job: dict[str, Any] = small.watch.wait_state(one_job_id(result.stdout + result.stderr), "Failed")
    assert re.search(r"(?i)cpu|resource|capacity|not enough", job["State"]["Message"]), job["State"]
