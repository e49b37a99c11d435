"""Ours, for the web UI: GET /jobs filtered by `state` and `type`, and GET /jobs-summary (jobs by state,
completions per minute). An in-process app on a real orchestrator (SQLite store), through httpx's ASGI
transport; job states are set in the store as the scheduler would set them.
"""

from __future__ import annotations

import httpx
import pytest
from tests.orchestrator.in_process_api import http, orch

from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.service import Orchestrator

JOBS = "/api/v1/orchestrator/jobs"
SUMMARY = "/api/v1/orchestrator/jobs-summary"
__all__ = ["http", "orch"]  # fixtures, imported to be found by pytest


async def submit(http: httpx.AsyncClient, name: str, job_type: str = "batch") -> str:
    spec = {"Name": name, "Type": job_type, "Count": 1 if job_type in ("batch", "service") else 0,
            "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]}
    resp = await http.put(JOBS, json={"Job": spec})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["JobID"])


async def set_state(orch: Orchestrator, job_id: str, state: JobStateType) -> None:
    await orch.store.update_job_state(
        job_id, state, "set by the test", expected=frozenset(JobStateType), events=[]
    )


@pytest.fixture
async def fleet(http: httpx.AsyncClient, orch: Orchestrator) -> dict[str, str]:
    """Five jobs: two running batch, one completed batch, one failed service, one pending ops."""
    ids = {name: await submit(http, name, kind) for name, kind in
           (("r1", "batch"), ("r2", "batch"), ("done", "batch"), ("broken", "service"), ("waiting", "ops"))}
    for name in ("r1", "r2"):
        await set_state(orch, ids[name], JobStateType.Running)
    await set_state(orch, ids["done"], JobStateType.Completed)
    await set_state(orch, ids["broken"], JobStateType.Failed)
    return ids


async def names(http: httpx.AsyncClient, **params: str) -> set[str]:
    resp = await http.get(JOBS, params=params)
    assert resp.status_code == 200, resp.text
    return {job["Name"] for job in resp.json()["Items"]}


async def test_jobs_filter_by_state_and_type(http: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    assert await names(http, state="Running") == {"r1", "r2"}
    assert await names(http, state="running,FAILED") == {"r1", "r2", "broken"}
    assert await names(http, type="batch") == {"r1", "r2", "done"}
    assert await names(http, type="ops", state="Pending") == {"waiting"}
    assert await names(http, type="service", state="Running") == set()
    assert await names(http) == set(fleet)  # no filter: Bacalhau's list as before


async def test_a_filtered_list_still_pages(http: httpx.AsyncClient, fleet: dict[str, str]) -> None:
    first = (await http.get(JOBS, params={"state": "Running", "limit": "1"})).json()
    assert len(first["Items"]) == 1 and first["NextToken"], first
    second = (await http.get(JOBS, params={"state": "Running", "limit": "1", "next_token": first["NextToken"]})).json()
    assert {first["Items"][0]["Name"], second["Items"][0]["Name"]} == {"r1", "r2"}


@pytest.mark.parametrize(("params", "words"), [({"state": "Sleeping"}, "invalid job state 'Sleeping'"),
                                               ({"state": "Undefined"}, "invalid job state"),
                                               ({"type": "cron"}, "invalid job type 'cron'")])
async def test_an_unknown_state_or_type_is_a_400(http: httpx.AsyncClient, params: dict[str, str], words: str) -> None:
    resp = await http.get(JOBS, params=params)
    assert resp.status_code == 400 and words in resp.json()["Message"], resp.text


async def test_the_summary_counts_jobs_by_state_and_completions_per_minute(
    http: httpx.AsyncClient, fleet: dict[str, str]
) -> None:
    resp = await http.get(SUMMARY, params={"minutes": "5"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["Total"] == 5
    assert body["ByState"] == {"Pending": 1, "Queued": 0, "Running": 2, "Completed": 1, "Failed": 1, "Stopped": 0}
    minutes = body["CompletedPerMinute"]
    assert len(minutes) == 5 and [m["Count"] for m in minutes] == [0, 0, 0, 0, 1], minutes
    assert minutes[-1]["Minute"].endswith("Z") and minutes[0]["Minute"] < minutes[-1]["Minute"]
    default = (await http.get(SUMMARY)).json()["CompletedPerMinute"]
    assert len(default) == 60 and sum(m["Count"] for m in default) == 1


async def test_the_summary_refuses_absurd_windows(http: httpx.AsyncClient) -> None:
    resp = await http.get(SUMMARY, params={"minutes": str(10**9)})
    assert resp.status_code == 400, resp.text




async def test_progress_counts_a_page_of_jobs_current_executions_in_one_call(
    http: httpx.AsyncClient, orch: Orchestrator, fleet: dict[str, str]
) -> None:
    from bacalhau.models.execution import ExecutionState
    from bacalhau.models.state import ExecutionStateType
    from factories import make_execution

    job = await orch.store.get_job(fleet["r1"])
    for state in (ExecutionStateType.Completed, ExecutionStateType.Completed, ExecutionStateType.Running):
        execution = make_execution(job, node_id="n-1")
        execution.compute_state = ExecutionState(StateType=state)
        await orch.store.create_execution(execution, [])
    resp = await http.get("/api/v1/orchestrator/jobs-progress", params={"ids": f"{fleet['r1']},{fleet['r2']},j-nobody"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["Items"] == {fleet["r1"]: {"Running": 1, "Completed": 2}}
    too_many = await http.get("/api/v1/orchestrator/jobs-progress", params={"ids": ",".join(["j-x"] * 101)})
    assert too_many.status_code == 400 and "at most 100" in too_many.json()["Message"]
