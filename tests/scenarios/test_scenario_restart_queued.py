"""A job waiting for capacity survives `kill -9` of `bacalhau serve`: after the restart its history is
intact and it keeps its place: the node queues the same execution again (it never started, so nothing
is lost) and runs it, while the job that was running, a wasm task that died with the process, is failed
with a history that says the node restarted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import EXEC_BID_ACCEPTED, EXEC_RUNNING, TERMINAL_JOB_STATES, JobWatch

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def history_key(item: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a history event, whatever else a restart may add around it."""
    return (
        item["Type"],
        item.get("ExecutionID") or "",
        repr(item.get("JobState")),
        repr(item.get("ExecutionState")),
        item["Event"]["Message"],
        item["Time"],
    )


def test_a_job_queued_behind_a_running_one_survives_kill_9_keeping_its_execution(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    node = serve(extra_config=["Compute.AllocatedCapacity.CPU=1", "Orchestrator.Scheduler.QueueBackoff=1s"])
    watch = JobWatch(node.url, node.log_excerpt)
    busy = node.ok("wasm", "run", "--wait=false", "--id-only", "--cpu", "0.8", str(wasm_modules["loop"])).stdout.strip()
    watch.wait_execution(busy, EXEC_RUNNING)
    queued = node.ok(
        "wasm", "run", "--wait=false", "--id-only", "--cpu", "0.8", str(wasm_modules["hello"]), "--", "after restart"
    ).stdout.strip()
    waiting = watch.wait_execution(queued, EXEC_BID_ACCEPTED)
    # It waits for capacity: accepted by the node, not running, while the loop holds the CPU.
    assert watch.state(queued) not in TERMINAL_JOB_STATES, watch.job(queued)
    assert all(e["ComputeState"]["StateType"] != EXEC_RUNNING for e in watch.executions(queued)), waiting
    history_before = watch.history(queued)

    node.kill9()
    node.restart()

    history_after = watch.history(queued)
    missing = {history_key(i) for i in history_before} - {history_key(i) for i in history_after}
    assert not missing, f"history events lost over the restart: {missing}\n{node.log_excerpt()}"
    # Free the CPU (the loop may have been retried after the restart) so the queued job can end.
    if watch.state(busy) not in TERMINAL_JOB_STATES:
        node.ok("job", "stop", busy)
    final = watch.wait_for(
        f"job {queued} to reach a terminal state after the restart",
        lambda: (job := watch.job(queued))["State"]["StateType"] in TERMINAL_JOB_STATES and job,
        timeout_s=60,
        explain=lambda: f"job: {watch.job(queued)['State']}\nexecutions: {watch.executions(queued)}",
    )
    assert final["State"]["StateType"] == "Completed", final["State"]
    executions = watch.executions(queued)
    assert [e["ID"] for e in executions] == [waiting["ID"]], f"the queued execution was not kept: {executions}"
    logs = node.ok("job", "logs", queued)
    assert "arg1=after restart" in logs.stdout, node.describe_result(logs)
    # The running wasm task died with the process: its history says so.
    messages = [item["Event"]["Message"] for item in watch.history(busy)]
    assert any(re.search(r"(?i)restart", m) for m in messages), f"nothing in the history says why: {messages}"
    listed = node.ok("job", "list", "--output", "json").stdout
    assert queued in listed and busy in listed, listed
