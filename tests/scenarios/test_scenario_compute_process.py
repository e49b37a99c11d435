"""With Compute.SeparateProcess=true a hybrid node runs its compute side in a child process it supervises
(issue 17).

What a user must see, tested with real `bacalhau serve` processes: one node (one name, one API, one
data directory) whose jobs run; the agent routes answer for its compute; a crashed compute process is
replaced and work goes on; a kill -9 of the node takes its compute with it, and the restart finishes
the work; a compute that cannot start stops the node with its own error; SIGHUP's labels and SIGTERM's
drain reach it; by default (`SeparateProcess=false`) everything stays in one process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, wasm_job

from serve_node import BacalhauNode, NodeStartError

pytestmark = pytest.mark.scenario

CHILD_MODULE = "bacalhau.compute_child"
JOB_TIMEOUT_S = 60.0
SEPARATE = "Compute.SeparateProcess=true"


@pytest.fixture
def node(serve: Callable[..., BacalhauNode]) -> BacalhauNode:
    """A hybrid node with its compute in a child process."""
    return serve(extra_config=[SEPARATE])


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def compute_children(parent: int) -> list[int]:
    """Live processes whose parent is `parent` and that run the compute child module."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if _ppid(int(entry)) != parent:
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # it ended while we looked
        if CHILD_MODULE.encode() in cmdline:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has ended


def wait_until(what: str, probe: Callable[[], object], timeout_s: float, describe: Callable[[], str]) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}\n{describe()}")


def hello_job(modules: dict[str, Path], *args: str) -> dict[str, object]:
    return wasm_job(modules["hello"], args=list(args), publisher="noop")


def test_a_hybrid_node_runs_its_compute_in_one_child_process_and_answers_for_it(
    node: BacalhauNode, wasm_modules: dict[str, Path]
) -> None:
    children = compute_children(node.pid)
    assert len(children) == 1, (children, node.log_excerpt())

    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(hello_job(wasm_modules, "Braga"))
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = watch.executions(job_id)
    assert "arg1=Braga" in executions[0]["RunOutput"]["Stdout"], executions

    # One node: the child joined under the node's own name, and the agent routes speak for it.
    with node.http() as http:
        info = http.get("/api/v1/agent/node").json()
        nodes = http.get("/api/v1/orchestrator/nodes").json()["Nodes"]
        debug = http.get("/api/v1/agent/debug").json()
    node_ids = [n["Info"]["NodeID"] for n in nodes]
    assert node_ids == [info["NodeID"]], (node_ids, info)
    assert info["ComputeNodeInfo"]["ExecutionEngines"], info
    assert "wasm" in info["ComputeNodeInfo"]["ExecutionEngines"], info
    assert debug["jobsCompleted"] == 1, debug
    assert debug["NodeManager"] == {"Nodes": 1}, debug


def test_a_crashed_compute_process_is_replaced_and_new_work_completes(
    node: BacalhauNode, wasm_modules: dict[str, Path]
) -> None:
    (first,) = compute_children(node.pid)
    os.kill(first, signal.SIGKILL)

    second = wait_until("a new compute process", lambda: [p for p in compute_children(node.pid) if p != first],
                        timeout_s=30, describe=node.log_excerpt)
    assert "exited with signal SIGKILL" in node.log_text(), node.log_excerpt()
    assert node.running, node.log_excerpt()

    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(hello_job(wasm_modules, "Faro"))
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert compute_children(node.pid) == second


def test_kill9_of_the_node_takes_its_compute_process_down_and_the_restart_finishes_the_work(
    node: BacalhauNode, wasm_modules: dict[str, Path]
) -> None:
    watch = JobWatch(node.url, node.log_excerpt)
    (child,) = compute_children(node.pid)
    # Long enough to be running still at the kill; half a CPU each so that both run at once.
    jobs = [watch.submit(wasm_job(wasm_modules["sleep"], args=["4000"], publisher="noop",
                                  resources={"CPU": "0.5", "Memory": "64mb"})) for _ in range(2)]
    for job_id in jobs:
        watch.wait_state(job_id, "Running", timeout_s=JOB_TIMEOUT_S)

    node.kill9()
    # Linux ends the child with its parent (PR_SET_PDEATHSIG): nothing of the old node holds its files.
    wait_until("the compute process to end with the node", lambda: not alive(child), timeout_s=10,
               describe=node.log_excerpt)

    node.start()
    for job_id in jobs:
        watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
        # The execution cut by the kill failed; another one finished the job.
        assert len(watch.executions(job_id)) == 2, watch.executions(job_id)
    assert len(compute_children(node.pid)) == 1, node.log_excerpt()


def test_a_compute_that_cannot_start_stops_the_node_with_its_own_error(
    serve: Callable[..., BacalhauNode],
) -> None:
    node = serve(extra_config=[SEPARATE, "Compute.AllocatedCapacity.CPU=abc"], start=False)
    with pytest.raises(NodeStartError):
        node.start(timeout_s=30)
    assert node.proc is not None and node.proc.wait(timeout=10) == 1, node.log_excerpt()
    text = node.log_text()
    assert "Error: invalid Compute.AllocatedCapacity.CPU: invalid CPU value 'abc'" in text, text
    assert text.count("Error: ") == 1, text  # said once, by the node, not twice


def test_by_default_the_compute_stays_inside_the_node(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    node = serve()
    assert compute_children(node.pid) == [], node.log_excerpt()
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(hello_job(wasm_modules, "Evora"))
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)


def test_sighup_labels_reach_the_compute_process_and_outlive_its_restart(
    serve: Callable[..., BacalhauNode], tmp_path: Path
) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text("Labels:\n  zone: eu\n")
    node = serve(extra_config=[SEPARATE, str(labels)])

    def zone() -> str:
        with node.http() as http:
            return str(http.get("/api/v1/agent/node").json()["Labels"].get("zone"))

    def orchestrator_zone() -> str:
        with node.http() as http:
            return str(http.get("/api/v1/orchestrator/nodes").json()["Nodes"][0]["Info"]["Labels"].get("zone"))

    assert zone() == "eu"
    labels.write_text("Labels:\n  zone: us\n")
    os.kill(node.pid, signal.SIGHUP)
    wait_until("the new label on the compute process", lambda: zone() == "us", timeout_s=20,
               describe=node.log_excerpt)
    wait_until("the new label at the orchestrator", lambda: orchestrator_zone() == "us", timeout_s=20,
               describe=node.log_excerpt)

    (first,) = compute_children(node.pid)
    os.kill(first, signal.SIGKILL)
    wait_until("a new compute process", lambda: [p for p in compute_children(node.pid) if p != first],
               timeout_s=30, describe=node.log_excerpt)
    # The new child started from the node's config of now, not of its own first start.
    wait_until("the new process to answer", lambda: zone() == "us", timeout_s=20, describe=node.log_excerpt)


def test_sigterm_lets_work_running_in_the_compute_process_finish(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    node = serve(extra_config=[SEPARATE, "Compute.ShutdownGracePeriod=30s"])
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(wasm_job(wasm_modules["sleep"], args=["2000"], publisher="noop",
                                   resources={"CPU": "1", "Memory": "64mb"}))
    watch.wait_state(job_id, "Running", timeout_s=JOB_TIMEOUT_S)

    assert node.stop(timeout_s=40) == 0, node.log_excerpt()
    assert "draining: up to 30s for 1 running execution(s)" in node.log_text(), node.log_excerpt()
    node.start()
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    # It finished within the grace, in the process that was stopping: no second execution.
    assert len(watch.executions(job_id)) == 1, watch.executions(job_id)
