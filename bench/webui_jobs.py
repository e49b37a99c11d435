"""What the web UI's pages cost the node with 10,000 jobs in its store, against what `bacalhau job list`
costs the same node (the API's list of 25 jobs), measured side by side.

    .venv/bin/python bench/webui_jobs.py [--jobs 10000] [--small 100] [--rounds 30]

For each store size (`--small` and `--jobs`), a hybrid node is started on a BACALHAU_DIR whose job store
was filled beforehand with that many finished jobs (Completed, Failed, Stopped in turn), each with one
execution (through the store up to 20,000 jobs, as its rows in bulk beyond), and with WebUI.Enabled.
The store's file size and the node's RSS are printed too. Then, interleaved round after round, over real HTTP:

    baseline   GET /api/v1/orchestrator/jobs?limit=25        (what `bacalhau job list` asks)
    table      GET /jobs/table                                (the jobs page's polled table: 25 rows,
                                                               with done/total from each job's executions)
    filtered   GET /jobs/table?state=Failed
    page 40    GET /jobs/table?next_token=<the 40th page's>
    job        GET /jobs/<id>                                 (header + overview)
    overview   GET /overview/panel                            (jobs by state, completions per minute)

Printed: medians and p90 in ms, each page's median as a ratio of the baseline's in the same run, and
each page at `--jobs` as a ratio of itself at `--small` (does it grow with the store?). No assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import httpx
from hybrid_node import HybridNode, free_port, median_ms, print_table

from bacalhau.models.execution import Execution, ExecutionState
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore

STATES = (JobStateType.Completed, JobStateType.Failed, JobStateType.Stopped)
EXECUTION_FOR = {JobStateType.Completed: ExecutionStateType.Completed, JobStateType.Failed: ExecutionStateType.Failed,
                 JobStateType.Stopped: ExecutionStateType.Cancelled}


BULK_ABOVE = 20_000


def fill(data_dir: Path, count: int) -> None:
    """`count` finished jobs with one execution each: through the job store itself up to BULK_ABOVE, in
    bulk beyond (the rows the store writes, inserted in batches: a million store calls take too long)."""
    if count > BULK_ABOVE:
        fill_bulk(data_dir, count)
        return
    async def run() -> None:
        store = SQLiteJobStore(path=data_dir / "orchestrator" / "jobs.db")
        now = time.time_ns() - count * 1_000_000
        try:
            for i in range(count):
                state = STATES[i % len(STATES)]
                job = Job.model_validate({
                    "ID": f"j-{uuid.uuid4()}", "Name": f"bench-{i}", "Namespace": "default", "Type": "batch", "Count": 1,
                    "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}],
                    "State": {"StateType": state.name}, "Version": 1, "Revision": 1,
                    "CreateTime": now + i * 1_000_000, "ModifyTime": now + i * 1_000_000 + 500_000,
                })
                await store.create_job(job, [])
                execution = Execution.model_validate({
                    "ID": f"e-{uuid.uuid4()}", "JobID": job.id, "Namespace": "default", "NodeID": "n-bench",
                    "JobVersion": 1, "CreateTime": job.create_time, "ModifyTime": job.modify_time,
                })
                execution.compute_state = ExecutionState(StateType=EXECUTION_FOR[state])
                execution.job = job
                await store.create_execution(execution, [])
        finally:
            await store.close()
    asyncio.run(run())


def fill_bulk(data_dir: Path, count: int, batch: int = 20_000) -> None:
    """The same rows as `fill`, written with executemany into the schema the store made."""
    import json
    import sqlite3

    path = data_dir / "orchestrator" / "jobs.db"

    async def create_schema() -> None:
        await SQLiteJobStore(path=path).close()

    asyncio.run(create_schema())
    job_template = Job.model_validate({
        "ID": "JOBID", "Name": "NAME", "Namespace": "default", "Type": "batch", "Count": 1,
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}],
        "State": {"StateType": "Completed"}, "Version": 1, "Revision": 1, "CreateTime": 1, "ModifyTime": 2,
    }).to_wire()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        now = time.time_ns() - count * 1_000_000
        for start in range(0, count, batch):
            jobs, executions = [], []
            for i in range(start, min(start + batch, count)):
                state = STATES[i % len(STATES)]
                job_id, created = f"j-{uuid.uuid4()}", now + i * 1_000_000
                job = {**job_template, "ID": job_id, "Name": f"bench-{i}", "State": {"StateType": state.name},
                       "CreateTime": created, "ModifyTime": created + 500_000}
                jobs.append((job_id, "default", f"bench-{i}", int(state), 1, created, created + 500_000, "{}",
                             json.dumps(job)))
                execution_id = f"e-{uuid.uuid4()}"
                execution = {"ID": execution_id, "JobID": job_id, "Namespace": "default", "NodeID": "n-bench",
                             "JobVersion": 1, "ComputeState": {"StateType": int(EXECUTION_FOR[state])},
                             "DesiredState": {"StateType": 2}, "CreateTime": created, "ModifyTime": created + 500_000}
                executions.append((execution_id, job_id, "n-bench", int(EXECUTION_FOR[state]), 1, created,
                                   created + 500_000, json.dumps(execution)))
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO jobs (id, namespace, name, state, version, create_time, modify_time, "
                             "labels, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs)
            conn.executemany("INSERT INTO executions (id, job_id, node_id, compute_state, job_version, create_time, "
                             "modify_time, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", executions)
            conn.execute("COMMIT")
    finally:
        conn.close()


def measure(size: int, rounds: int) -> dict[str, list[float]]:
    """Every measurement's samples (seconds) on a node whose store holds `size` jobs."""
    ui_port = free_port()
    with HybridNode(extra_config=["WebUI.Enabled=true", f"WebUI.Listen=127.0.0.1:{ui_port}"],
                    prepare=lambda data: fill(data, size)) as node, \
            httpx.Client(base_url=node.url, timeout=60) as api, \
            httpx.Client(base_url=f"http://127.0.0.1:{ui_port}", timeout=60) as ui:
        first = api.get("/api/v1/orchestrator/jobs", params={"limit": 25}).json()
        token = ""
        for _ in range(min(39, max(size // 25 - 1, 0))):  # the 40th page's token (or the last one's)
            listed = api.get("/api/v1/orchestrator/jobs", params={"limit": 25, "next_token": token}).json()
            token = listed["NextToken"] or token
        job_id = first["Items"][0]["ID"]
        requests = {
            "baseline: API list 25": lambda: api.get("/api/v1/orchestrator/jobs", params={"limit": 25}),
            "table": lambda: ui.get("/jobs/table"),
            "filtered (Failed)": lambda: ui.get("/jobs/table", params={"state": "Failed"}),
            "page 40": lambda: ui.get("/jobs/table", params={"next_token": token}),
            "job page": lambda: ui.get(f"/jobs/{job_id}"),
            "overview": lambda: ui.get("/overview/panel"),
        }
        db = node.data_dir / "orchestrator" / "jobs.db"
        rss_kb = int(next(line.split()[1] for line in Path(f"/proc/{node.pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS:")))
        print(f"{size} jobs: store {db.stat().st_size / 1e6:.0f} MB, node RSS {rss_kb / 1024:.0f} MiB", flush=True)
        samples: dict[str, list[float]] = {name: [] for name in requests}
        for name, send in requests.items():  # warm up once each
            assert send().status_code == 200, name
        for _ in range(rounds):
            for name, send in requests.items():
                started = time.perf_counter()
                resp = send()
                samples[name].append(time.perf_counter() - started)
                assert resp.status_code == 200, (name, resp.status_code, resp.text[:300])
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    results = {size: measure(size, args.rounds) for size in (args.small, args.jobs)}
    for size, samples in results.items():
        print_table(f"{size} jobs in the store", list(samples.items()))
    big, small = results[args.jobs], results[args.small]
    base = median_ms(big["baseline: API list 25"])
    print(f"\nratios at {args.jobs} jobs: page median / API list median ({base:.2f} ms), and / itself at {args.small}")
    for name, samples in big.items():
        print(f"  {name:<24} {median_ms(samples) / base:>6.2f}x baseline   "
              f"{median_ms(samples) / median_ms(small[name]):>6.2f}x at {args.small} jobs")


if __name__ == "__main__":
    main()
