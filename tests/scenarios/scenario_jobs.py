"""Job specs and job-state waits for the end-to-end scenarios.

Job files are built the way a user writes them (Bacalhau's PascalCase keys, a wasm module carried in an
`inline` InputSource as a data: URL); states are read back over the real HTTP API and waited for by
polling with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

JOB_ID_RE = re.compile(r"\bj-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")
# ExecutionStateType on the wire (integers, CONTRACT.md section 2.2)
EXEC_BID_ACCEPTED, EXEC_RUNNING, EXEC_COMPLETED, EXEC_FAILED, EXEC_CANCELLED = 5, 6, 9, 10, 11
ENTRY_TARGET = "/app/main.wasm"


def data_url(payload: bytes, mime: str = "application/wasm") -> str:
    """A base64 data: URL, the form an `inline` InputSource carries."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def wasm_job(
    module: Path | bytes,
    *,
    args: Sequence[str] = (),
    name: str | None = None,
    count: int | None = None,
    publisher: str = "local",
    timeouts: dict[str, int] | None = None,
    resources: dict[str, str] | None = None,
    entry_target: str = ENTRY_TARGET,
    extra_inputs: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A batch wasm job in Bacalhau's job-file format running `module` with `args`."""
    payload = module.read_bytes() if isinstance(module, Path) else module
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": entry_target, "Parameters": list(args)}},
        "InputSources": [
            {"Target": entry_target, "Source": {"Type": "inline", "Params": {"URL": data_url(payload)}}},
            *extra_inputs,
        ],
        "Publisher": {"Type": publisher},
    }
    if timeouts:
        task["Timeouts"] = timeouts
    if resources:
        task["Resources"] = resources
    job: dict[str, Any] = {"Type": "batch", "Tasks": [task]}
    if name is not None:
        job["Name"] = name
    if count is not None:
        job["Count"] = count
    return job


def write_job_file(directory: Path, job: dict[str, Any], stem: str = "job", fmt: str = "yaml") -> Path:
    """Write `job` as YAML (or JSON) into `directory`; return the path."""
    path = directory / f"{stem}.{fmt}"
    text = json.dumps(job, indent=2) if fmt == "json" else yaml.safe_dump(job, sort_keys=False)
    path.write_text(text)
    return path


def job_ids_in(text: str) -> list[str]:
    """Every full job ID printed in `text`, in order."""
    return JOB_ID_RE.findall(text)


def one_job_id(text: str) -> str:
    """The job ID the CLI printed (asserts there is one)."""
    ids = job_ids_in(text)
    assert ids, f"no job ID in the CLI output:\n{text}"
    return ids[0]


class JobWatch:
    """Reads jobs, executions and history from a node's HTTP API and waits for states."""

    def __init__(self, base_url: str, describe_failure: Callable[[], str] = lambda: "") -> None:
        self.base_url = base_url
        self._describe_failure = describe_failure

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        resp = httpx.get(f"{self.base_url}{path}", params=params, timeout=10.0)
        assert resp.status_code == 200, f"GET {path} -> {resp.status_code}: {resp.text}\n{self._describe_failure()}"
        body: dict[str, Any] = resp.json()
        return body

    def submit(self, job: dict[str, Any]) -> str:
        """PUT the job; return its ID."""
        resp = httpx.put(f"{self.base_url}/api/v1/orchestrator/jobs", json={"Job": job}, timeout=10.0)
        assert resp.status_code == 200, f"submit -> {resp.status_code}: {resp.text}\n{self._describe_failure()}"
        job_id: str = resp.json()["JobID"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        """The Job object."""
        job: dict[str, Any] = self._get(f"/api/v1/orchestrator/jobs/{job_id}")["Job"]
        return job

    def state(self, job_id: str) -> str:
        """The job's state name (`Running`, `Completed`...)."""
        return str(self.job(job_id)["State"]["StateType"])

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """Every execution of the job's current version."""
        return list(self._get(f"/api/v1/orchestrator/jobs/{job_id}/executions")["Items"] or [])

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's whole history (job and execution level)."""
        return list(self._get(f"/api/v1/orchestrator/jobs/{job_id}/history")["Items"] or [])

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the node knows."""
        return list(self._get("/api/v1/orchestrator/jobs")["Items"] or [])

    def wait_for(
        self,
        what: str,
        probe: Callable[[], Any],
        timeout_s: float = 60.0,
        interval_s: float = 0.1,
        explain: Callable[[], str] | None = None,
    ) -> Any:
        """Poll `probe()` until it returns something truthy; fail with `what`, `explain()` and the server log."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval_s)  # poll interval, bounded by the deadline
        detail = explain() if explain else f"last: {last!r}"
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{detail}\n{self._describe_failure()}")

    def wait_state(self, job_id: str, *states: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until the job is in one of `states`; return the Job. Fails early on another terminal state."""
        wanted = set(states)

        def probe() -> dict[str, Any] | None:
            job = self.job(job_id)
            current = job["State"]["StateType"]
            if current in wanted:
                return job
            if current in TERMINAL_JOB_STATES:
                raise AssertionError(
                    f"job {job_id} ended {current} ({job['State'].get('Message')!r}), expected {sorted(wanted)}\n"
                    f"executions: {json.dumps(self.executions(job_id), indent=1)[:4000]}\n{self._describe_failure()}"
                )
            return None

        result: dict[str, Any] = self.wait_for(
            f"job {job_id} to reach {sorted(wanted)}", probe, timeout_s, explain=lambda: f"job state: {self.job(job_id)['State']}"
        )
        return result

    def wait_execution(self, job_id: str, *states: int, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until some execution of the job has ComputeState in `states`; return that execution."""

        def probe() -> dict[str, Any] | None:
            for execution in self.executions(job_id):
                if execution["ComputeState"]["StateType"] in states:
                    return execution
            return None

        def explain() -> str:
            job = self.job(job_id)
            seen = [(e["ID"], e["ComputeState"], e["DesiredState"]) for e in self.executions(job_id)]
            return f"job state: {job['State']}\nexecutions (ID, ComputeState, DesiredState): {seen}"

        result: dict[str, Any] = self.wait_for(
            f"an execution of {job_id} in states {states}", probe, timeout_s, explain=explain
        )
        return result


def parse_output(text: str) -> Any:
    """Parse `--output json|yaml` output (YAML is a superset of JSON)."""
    return yaml.safe_load(text)


def items_of(parsed: Any) -> list[Any]:
    """List output may be a bare list or a `{Items: [...]}` response: return the list either way."""
    if isinstance(parsed, dict):
        for key in ("Items", "items", "Nodes", "nodes"):
            if key in parsed:
                return list(parsed[key] or [])
    assert isinstance(parsed, list), f"expected a list, got {type(parsed).__name__}: {parsed!r}"[:2000]
    return parsed


class RunsCli(Protocol):
    """A node or cluster that runs the real CLI against itself and fails the test on a non-zero exit."""

    def ok(self, *args: str, **kwargs: Any) -> Any: ...


def submit_file(node: RunsCli, directory: Path, job: dict[str, Any], stem: str) -> str:
    """`bacalhau job run FILE --wait=false --id-only` on a job file written into `directory`; the job ID."""
    path = write_job_file(directory, job, stem=stem)
    job_id = str(node.ok("job", "run", str(path), "--wait=false", "--id-only").stdout).strip()
    assert job_id.startswith("j-"), job_id
    return job_id


def job_executions(node: RunsCli, job_id: str) -> list[dict[str, Any]]:
    """`bacalhau job executions JOB --output json`, oldest first."""
    items = items_of(parse_output(node.ok("job", "executions", job_id, "--output", "json").stdout))
    return sorted(items, key=lambda e: (e["CreateTime"], e["ID"]))
