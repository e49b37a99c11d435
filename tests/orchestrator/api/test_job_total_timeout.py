"""A job's TotalTimeout: armed when the job is submitted (and again when a new version is stored), it fails a
job that has not ended in time. A real orchestrator and its API in process (its workers not started: no node
takes the job, which stays pending until the timer fires)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from tests.orchestrator.in_process_api import http, orch

from bacalhau.orchestrator.service import Orchestrator

JOBS = "/api/v1/orchestrator/jobs"
__all__ = ["http", "orch"]  # fixtures, imported to be found by pytest


def spec(total_timeout_s: int, *, image: str = "busybox") -> dict[str, Any]:
    return {"Name": "timed", "Type": "batch", "Tasks": [{
        "Name": "main", "Engine": {"Type": "docker", "Params": {"Image": image}},
        "Timeouts": {"TotalTimeout": total_timeout_s},
    }]}


async def state_of(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    resp = await http.get(f"{JOBS}/{job_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["Job"]["State"])


async def wait_failed(http: httpx.AsyncClient, job_id: str, within_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        state = await state_of(http, job_id)
        if state["StateType"] == "Failed":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {state['StateType']} after {within_s} s")


async def test_a_submitted_job_fails_when_its_total_timeout_passes(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    start = time.monotonic()
    job_id = (await http.put(JOBS, json={"Job": spec(1)})).json()["JobID"]
    await asyncio.sleep(0.3)
    assert (await state_of(http, job_id))["StateType"] != "Failed"  # not before its time
    state = await wait_failed(http, job_id, within_s=10)
    assert time.monotonic() - start >= 0.9
    assert state["Message"] == "Job timed out. Job took longer than 1s"


async def test_a_new_version_is_timed_by_its_own_total_timeout(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    job_id = (await http.put(JOBS, json={"Job": spec(3600)})).json()["JobID"]
    await asyncio.sleep(0.3)
    updated = await http.put(JOBS, json={"Job": spec(1, image="busybox:1")})
    assert updated.status_code == 200, updated.text
    assert updated.json()["JobID"] == job_id
    state = await wait_failed(http, job_id, within_s=10)  # the hour of the first version no longer counts
    assert state["Message"] == "Job timed out. Job took longer than 1s"
