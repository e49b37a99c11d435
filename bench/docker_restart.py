"""kill -9 (or SIGTERM) of a node while docker jobs run: how many workloads run twice, how many jobs fail.

    .venv/bin/python bench/docker_restart.py [--jobs 50] [--sleep-s 4]
    .venv/bin/python bench/docker_restart.py --sigterm [--jobs 30] [--running 3] [--sleep-s 3]

--sigterm (the issue's second finding: SIGTERM with 3 running and 27 queued docker jobs failed every job
"retried too many times"): the node has room for `--running` jobs at once, the rest wait in its queue;
once they run, the node gets SIGTERM (a graceful stop, default grace 10s), exits, and is started again;
baseline = commit 807ad31, the last one before the graceful drain.

The issue's finding: of 200 docker workloads that finished while the node was down, 15 were run again
after the restart (and the records showed one success, so the duplicate side effects were invisible).

For each variant, on a fresh hybrid node (`bacalhau serve`, its own BACALHAU_DIR, as a subprocess):
N docker jobs `sleep S; echo done` are submitted and, once every one has a Running execution, the node
is killed with SIGKILL; the containers go on and finish while it is down; the node is started again on
the same data directory and every job is waited for. Counted per job: executions that reached Running
and container starts, from the engine's own `start` events (a job whose workload started twice ran
twice; an execution Running at the kill whose container was not created yet is re-run, correctly, but
started only once) and the final job state.

  baseline  commit 6fd2302, the last one before the compute node re-attached to its containers, from a
            temporary `git worktree` run with this venv through PYTHONPATH=<worktree>/src;
  measured  this checkout.
No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cluster_job_roundtrip import worktree
from hybrid_node import _free_port, bacalhau_bin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bacalhau.models.state import ExecutionStateType as S
from docker_env import BUSYBOX_IMAGE, EngineUnavailable, connect_engine, ensure_busybox_image

BEFORE_REATTACH_COMMIT = "6fd2302"
BEFORE_DRAIN_COMMIT = "807ad31"
JOB_CPU = 0.05
# Every execution here started its workload before it ended (nothing is queued: the node has room for all).
REACHED_RUNNING = {int(s) for s in (S.Running, S.Publishing, S.Completed, S.Failed, S.Cancelled)}


@dataclass
class Figures:
    jobs: int
    ran_twice: int = 0
    re_executed: int = 0
    completed: int = 0
    failed: int = 0
    executions: int = 0
    restart_to_done_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class Node:
    """`bacalhau serve` (hybrid) on a fixed data dir and port; start, kill -9, start again."""

    def __init__(self, data_dir: Path, *, python_path: str | None, capacity_cpu: float) -> None:
        self.data_dir = data_dir
        self._capacity_cpu = capacity_cpu
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._python_path = python_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
        env["BACALHAU_DIR"] = str(self.data_dir)
        if self._python_path:
            env["PYTHONPATH"] = self._python_path
        cmd = [str(bacalhau_bin()), "serve", "--orchestrator", "--compute", "-c", "API.Host=127.0.0.1", "-c", f"API.Port={self.port}",
               "-c", "Orchestrator.Port=0", "-c", "Publishers.Types.Local.Port=0",
               # Each job asks for JOB_CPU: the capacity decides how many run at once.
               "-c", f"Compute.AllocatedCapacity.CPU={self._capacity_cpu:g}", "-c", "Orchestrator.Scheduler.QueueBackoff=1s"]
        log = (self.data_dir.parent / "serve.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 90
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.url}/api/v1/agent/alive").status_code == 200:
                        return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise SystemExit(f"the node did not start; log:\n{(self.data_dir.parent / 'serve.log').read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def job_spec(image: str, sleep_s: float) -> dict[str, Any]:
    return {
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "docker", "Params": {"Image": image, "Entrypoint": ["sh", "-c", f"sleep {sleep_s}; echo done"]}},
            "Resources": {"CPU": str(JOB_CPU), "Memory": "16mb"},
        }],
    }


def executions(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get(f"/api/v1/orchestrator/jobs/{job_id}/executions").json().get("Items") or []
    return items


def state(http: httpx.Client, job_id: str) -> str:
    return str(http.get(f"/api/v1/orchestrator/jobs/{job_id}").json()["Job"]["State"]["StateType"])


class StartCounter:
    """Counts container `start` events of managed containers per job ID, live (the engine keeps only a
    few hundred past events, too few to count afterwards)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._events = connect_engine().events(
            decode=True, filters={"type": "container", "event": "start", "label": "bacalhau.org/managed=true"}
        )
        self._thread = threading.Thread(target=self._count, daemon=True)
        self._thread.start()

    def _count(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in self._events:
                job_id = event.get("Actor", {}).get("Attributes", {}).get("bacalhau.org/job-id", "")
                self.counts[job_id] = self.counts.get(job_id, 0) + 1

    def close(self) -> dict[str, int]:
        time.sleep(0.5)  # let the last events arrive
        self._events.close()
        self._thread.join(5)
        return self.counts


def running_containers() -> int:
    """Managed containers the engine reports running now."""
    found = connect_engine().api.containers(filters={"label": "bacalhau.org/managed=true", "status": "running"})
    return len(found)


def run(image: str, *, jobs: int, sleep_s: float, python_path: str | None, sigterm: bool = False,
        running_at_once: int = 0) -> Figures:
    """One variant; `sigterm`: a graceful stop with `running_at_once` running, else kill -9 with all running."""
    figures = Figures(jobs=jobs)
    starts = StartCounter()
    at_once = running_at_once if sigterm else jobs
    with tempfile.TemporaryDirectory(prefix="bacalhau-bench-restart-") as tmp:
        node = Node(Path(tmp) / "data", python_path=python_path, capacity_cpu=JOB_CPU * at_once + 0.001)
        node.data_dir.mkdir()
        try:
            node.start()
            with httpx.Client(base_url=node.url, timeout=60.0) as http:
                ids = [http.put("/api/v1/orchestrator/jobs", json={"Job": job_spec(image, sleep_s)}).json()["JobID"]
                       for _ in range(jobs)]
                # Killed once every workload runs in its container: all of them then finish while it is down.
                deadline = time.monotonic() + 120
                running = 0
                while time.monotonic() < deadline:
                    running = running_containers()
                    if running >= at_once:
                        break
                    time.sleep(0.1)
                else:
                    figures.notes.append(f"only {running} of {at_once} containers running before the stop")
            if sigterm:
                node.stop()
            else:
                node.kill9()
                time.sleep(sleep_s + 2)  # every container ends while the node is down
            t0 = time.monotonic()
            node.start()
            with httpx.Client(base_url=node.url, timeout=60.0) as http:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    states = [state(http, j) for j in ids]
                    if all(s in ("Completed", "Failed", "Stopped") for s in states):
                        break
                    time.sleep(0.5)
                else:
                    figures.notes.append("stopped waiting after 300 s")
                figures.restart_to_done_s = time.monotonic() - t0
                started = starts.close()
                for job_id, job_state in zip(ids, states, strict=True):
                    found = executions(http, job_id)
                    figures.executions += len(found)
                    figures.re_executed += sum(int(e["ComputeState"]["StateType"]) in REACHED_RUNNING for e in found) > 1
                    figures.ran_twice += started.get(job_id, 0) > 1
                    figures.completed += job_state == "Completed"
                    figures.failed += job_state == "Failed"
        finally:
            node.stop()
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="docker jobs running at the kill (default 50)")
    parser.add_argument("--sleep-s", type=float, default=4.0, help="how long each workload sleeps (default 4)")
    parser.add_argument("--sigterm", action="store_true", help="a graceful stop instead of kill -9")
    parser.add_argument("--running", type=int, default=3, help="with --sigterm: jobs running at once (default 3)")
    args = parser.parse_args(argv)
    try:
        image = ensure_busybox_image(connect_engine(), BUSYBOX_IMAGE)
    except EngineUnavailable as exc:
        raise SystemExit(f"no Docker engine: {exc}") from exc
    rows: list[tuple[str, Figures]] = []
    baseline = BEFORE_DRAIN_COMMIT if args.sigterm else BEFORE_REATTACH_COMMIT
    common = {"jobs": args.jobs, "sleep_s": args.sleep_s, "sigterm": args.sigterm, "running_at_once": args.running}
    with worktree(baseline) as src:
        rows.append((f"baseline {baseline}", run(image, python_path=str(src), **common)))
    rows.append(("measured (this checkout)", run(image, python_path=None, **common)))
    if args.sigterm:
        print(f"\nSIGTERM with {args.running} of {args.jobs} docker jobs running (`sleep {args.sleep_s:g}; echo done`),"
              " the rest queued on the node; then a restart")
    else:
        print(f"\nkill -9 while {args.jobs} docker jobs run (`sleep {args.sleep_s:g}; echo done`), restart after they ended")
    print(f"  {'variant':<26} {'ran twice':>10} {'2nd execution':>14} {'Completed':>10} {'Failed':>7} {'executions':>11}"
          f" {'restart->all ended':>19}")
    for name, f in rows:
        print(f"  {name:<26} {f.ran_twice:>10} {f.re_executed:>14} {f.completed:>10} {f.failed:>7} {f.executions:>11} "
              f"{f.restart_to_done_s:>18.1f}s" + "".join(f"  ({n})" for n in f.notes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
