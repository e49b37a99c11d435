"""Restart safety: `kill -9` of `bacalhau serve`, then a start on the same BACALHAU_DIR, loses nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_jobs import EXEC_FAILED, JobWatch, items_of, parse_output, wasm_job

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def test_kill_9_and_restart_keeps_every_job_and_fails_the_interrupted_execution(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    node = serve(extra_config=["Orchestrator.Scheduler.QueueBackoff=1s"])
    watch = JobWatch(node.url, node.log_excerpt)
    done = watch.submit(wasm_job(wasm_modules["hello"]))
    watch.wait_state(done, "Completed")
    running = watch.submit(wasm_job(wasm_modules["loop"]))
    watch.wait_state(running, "Running")
    queued = watch.submit(wasm_job(wasm_modules["hello"], count=2, timeouts={"QueueTimeout": 3600}))
    watch.wait_state(queued, "Queued")
    history_before = {job_id: len(watch.history(job_id)) for job_id in (done, running, queued)}

    node.kill9()
    node.restart()

    listed = {job["ID"]: job for job in items_of(parse_output(node.ok("job", "list", "--output", "json").stdout))}
    assert {done, running, queued} <= set(listed), listed.keys()
    assert listed[done]["State"]["StateType"] == "Completed"
    for job_id, count in history_before.items():
        assert len(watch.history(job_id)) >= count, f"history of {job_id} lost events over the restart"

    interrupted = watch.wait_execution(running, EXEC_FAILED, timeout_s=30)
    message = interrupted["ComputeState"].get("Message", "")
    assert re.search(r"(?i)restart", message), interrupted
    # The job does not hang on the dead execution: it ends (or is retried) rather than staying Running on it.
    watch.wait_for(
        "the interrupted job to leave the dead execution",
        lambda: watch.state(running) in ("Failed", "Completed", "Stopped")
        or any(e["ID"] != interrupted["ID"] for e in watch.executions(running)),
        timeout_s=30,
    )
    assert watch.state(queued) in ("Queued", "Pending"), watch.job(queued)

    # And the restarted node still runs new work.
    fresh = node.ok("wasm", "run", "--id-only", str(wasm_modules["hello"])).stdout.strip()
    watch.wait_state(fresh, "Completed")


def test_sigterm_shuts_the_node_down_cleanly_and_it_starts_again(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    node = serve()
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(wasm_job(wasm_modules["hello"]))
    watch.wait_state(job_id, "Completed")
    assert node.stop() == 0, node.log_excerpt()
    node.start()
    assert watch.state(job_id) == "Completed"
    logs = node.ok("job", "logs", job_id)
    assert "hello from wasm" in logs.stdout, node.describe_result(logs)
