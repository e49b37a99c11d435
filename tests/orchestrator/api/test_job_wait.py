"""Ours: GET /jobs/{id}?wait_ms=&after_seq= answers when the job has a history event past after_seq, or
when wait_ms passes (what the CLI waits on instead of polling). An in-process app on a real orchestrator
(SQLite store); events are committed through the store as the orchestrator commits them.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from tests.orchestrator.in_process_api import http, orch

from bacalhau.models.history import JobHistory
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.history_waiters import MAX_GATHER_MS, HistoryWaiters
from bacalhau.orchestrator.service import Orchestrator

JOBS = "/api/v1/orchestrator/jobs"
__all__ = ["http", "orch"]  # fixtures, imported to be found by pytest


async def submit(http: httpx.AsyncClient) -> str:
    spec = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]}
    resp = await http.put(JOBS, json={"Job": spec})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["JobID"])


def seqs(body: dict[str, object]) -> list[int]:
    history = body.get("History") or {}
    assert isinstance(history, dict)
    return [int(item["SeqNum"]) for item in history.get("Items") or []]


async def test_answers_at_once_when_the_job_already_has_newer_events(http: httpx.AsyncClient) -> None:
    job_id = await submit(http)
    start = time.monotonic()
    resp = await http.get(f"{JOBS}/{job_id}", params={"include": "history", "wait_ms": "5000", "after_seq": "0"})
    assert resp.status_code == 200, resp.text
    assert time.monotonic() - start < 2.0
    assert max(seqs(resp.json())) >= 1


async def test_waits_for_the_next_event_and_answers_with_it(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    job_id = await submit(http)
    first = (await http.get(f"{JOBS}/{job_id}", params={"include": "history"})).json()
    newest = max(seqs(first))
    waiting = asyncio.create_task(
        http.get(f"{JOBS}/{job_id}", params={"include": "history", "wait_ms": "10000", "after_seq": str(newest)})
    )
    await asyncio.sleep(0.2)
    assert not waiting.done(), "answered before the job had anything new"
    await orch.store.update_job_state(
        job_id, JobStateType.Running, "", expected=frozenset(JobStateType),
        events=[JobHistory.model_validate({"Event": {"Topic": "Test", "Message": "news"}})],
    )
    resp = await asyncio.wait_for(waiting, 5)
    body = resp.json()
    assert seqs(body) and min(seqs(body)) > newest  # only what the caller has not seen yet
    assert body["Job"]["State"]["StateType"] == "Running"
    assert len(orch.history_waiters) == 0  # nothing left registered


async def test_gives_up_after_wait_ms_with_the_job_as_it_is(http: httpx.AsyncClient) -> None:
    job_id = await submit(http)
    newest = max(seqs((await http.get(f"{JOBS}/{job_id}", params={"include": "history"})).json()))
    start = time.monotonic()
    resp = await http.get(f"{JOBS}/{job_id}", params={"wait_ms": "300", "after_seq": str(newest)})
    elapsed = time.monotonic() - start
    assert resp.status_code == 200
    assert 0.25 <= elapsed < 3.0
    assert "History" not in resp.json()  # not asked for: waiting reads it, the answer does not carry it


async def _add_event(orch: Orchestrator, job_id: str, message: str, state: JobStateType = JobStateType.Running) -> None:
    await orch.store.update_job_state(
        job_id, state, "", expected=frozenset(JobStateType),
        events=[JobHistory.model_validate({"Event": {"Topic": "Test", "Message": message}})],
    )


async def _gathering_wait(http: httpx.AsyncClient, gather_ms: int) -> tuple[str, asyncio.Task[httpx.Response]]:
    """A submitted job and a request waiting (with gather_ms) for its events after those it has now."""
    job_id = await submit(http)
    newest = max(seqs((await http.get(f"{JOBS}/{job_id}", params={"include": "history"})).json()))
    params = {"include": "history", "wait_ms": "10000", "after_seq": str(newest), "gather_ms": str(gather_ms)}
    waiting = asyncio.create_task(http.get(f"{JOBS}/{job_id}", params=params))
    await asyncio.sleep(0.05)
    return job_id, waiting


async def test_gathering_holds_news_until_the_job_ends_and_answers_with_every_event(
    http: httpx.AsyncClient, orch: Orchestrator
) -> None:
    """gather_ms: the steps of a short job come in one answer, at its end, not one answer per step."""
    job_id, waiting = await _gathering_wait(http, 1000)
    await _add_event(orch, job_id, "first step")
    await asyncio.sleep(0.2)
    assert not waiting.done(), "news was answered at once, not gathered"
    await _add_event(orch, job_id, "second step")
    await asyncio.sleep(0.1)
    assert not waiting.done()
    start = time.monotonic()
    await _add_event(orch, job_id, "done", JobStateType.Completed)
    body = (await asyncio.wait_for(waiting, 5)).json()
    assert time.monotonic() - start < 0.5, "a job that ended was not answered at once"
    assert body["Job"]["State"]["StateType"] == "Completed"
    messages = [item["Event"]["Message"] for item in body["History"]["Items"]]
    assert messages == ["first step", "second step", "done"]
    assert len(orch.history_waiters) == 0


async def test_gathered_news_is_answered_once_the_gathering_time_passes(
    http: httpx.AsyncClient, orch: Orchestrator
) -> None:
    job_id, waiting = await _gathering_wait(http, 300)
    start = time.monotonic()
    await _add_event(orch, job_id, "news")
    body = (await asyncio.wait_for(waiting, 5)).json()
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 3.0, elapsed  # held for the gathering time, not the whole wait
    assert [item["Event"]["Message"] for item in body["History"]["Items"]] == ["news"]
    assert body["Job"]["State"]["StateType"] == "Running"


async def test_news_already_there_is_gathered_too(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    """The first question after a submission already has news (the submission's events): with gather_ms
    it waits for what follows, as it would after any news."""
    job_id = await submit(http)
    params = {"include": "history", "wait_ms": "10000", "after_seq": "0", "gather_ms": "1000"}
    waiting = asyncio.create_task(http.get(f"{JOBS}/{job_id}", params=params))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await _add_event(orch, job_id, "done", JobStateType.Completed)
    body = (await asyncio.wait_for(waiting, 5)).json()
    assert body["History"]["Items"][0]["SeqNum"] == 1 and body["History"]["Items"][-1]["Event"]["Message"] == "done"


async def test_a_huge_gather_is_cut_to_its_maximum(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    job_id = await submit(http)
    newest = max(seqs((await http.get(f"{JOBS}/{job_id}", params={"include": "history"})).json()))
    params = {"wait_ms": "10000", "after_seq": str(newest), "gather_ms": str(2**62)}
    waiting = asyncio.create_task(http.get(f"{JOBS}/{job_id}", params=params))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await _add_event(orch, job_id, "news")
    resp = await asyncio.wait_for(waiting, 8)
    assert resp.status_code == 200
    assert time.monotonic() - start < MAX_GATHER_MS / 1000 + 2.0  # cut to MAX_GATHER_MS, not the whole wait


async def test_a_rolled_back_write_wakes_nobody(orch: Orchestrator, http: httpx.AsyncClient) -> None:
    job_id = await submit(http)
    woken: list[str] = []
    orch.store.add_history_listener(lambda job_id, _ended: woken.append(job_id))
    with pytest.raises(RuntimeError):
        async with orch.store.transaction():
            await orch.store.add_history([JobHistory.model_validate({"JobID": job_id, "Event": {"Message": "x"}})])
            raise RuntimeError("undone")
    assert woken == []
    await orch.store.add_history([JobHistory.model_validate({"JobID": job_id, "Event": {"Message": "y"}})])
    assert woken == [job_id]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"wait_ms": "-1"}, "wait_ms"),
    ({"wait_ms": "soon"}, "wait_ms"),
    ({"wait_ms": "10", "after_seq": "x"}, "after_seq"),
    ({"wait_ms": "10", "gather_ms": "-5"}, "gather_ms"),
    ({"wait_ms": "10", "gather_ms": "1.5"}, "gather_ms"),
])
async def test_bad_wait_parameters_are_a_400(http: httpx.AsyncClient, params: dict[str, str], fragment: str) -> None:
    job_id = await submit(http)
    resp = await http.get(f"{JOBS}/{job_id}", params=params)
    assert resp.status_code == 400
    assert fragment in resp.json()["Message"], resp.text


async def test_huge_wait_is_cut_to_the_maximum_not_refused(http: httpx.AsyncClient) -> None:
    job_id = await submit(http)
    resp = await http.get(f"{JOBS}/{job_id}", params={"wait_ms": str(2**62), "after_seq": "0"})
    assert resp.status_code == 200  # there is an event past 0: answered at once, not after 2**62 ms


async def test_waiters_unregister_and_notify_only_their_job() -> None:
    waiters = HistoryWaiters()
    with waiters.watching("a") as a, waiters.watching("b") as b:
        waiters.notify("a", False)
        assert a.changed.is_set() and not b.changed.is_set()
        assert len(waiters) == 2
    assert len(waiters) == 0
    waiters.notify("a", True)  # nobody left: nothing to do, no error


async def test_a_waiter_for_the_end_only_sleeps_through_other_news() -> None:
    waiters = HistoryWaiters()
    with waiters.watching("a") as watch:
        watch.ends_only = True
        waiters.notify("a", False)
        assert not watch.changed.is_set()
        waiters.notify("a", True)
        assert watch.changed.is_set()


async def test_the_store_says_which_commit_ended_the_job(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    job_id = await submit(http)
    heard: list[tuple[str, bool]] = []
    orch.store.add_history_listener(lambda job, ended: heard.append((job, ended)))
    await _add_event(orch, job_id, "running")
    await _add_event(orch, job_id, "done", JobStateType.Completed)
    assert heard == [(job_id, False), (job_id, True)]  # the state the store wrote, whatever the event says
    await orch.store.add_history([JobHistory.model_validate({
        "JobID": job_id, "Event": {"Message": "failed"}, "JobState": {"Previous": "Running", "New": "Failed"}})])
    assert heard[-1] == (job_id, True)  # an event that says the job ended
    await orch.store.add_history([JobHistory.model_validate({"JobID": job_id, "Event": {"Message": "a note"}})])
    assert heard[-1] == (job_id, False)


async def test_a_finished_job_answers_at_once(http: httpx.AsyncClient, orch: Orchestrator) -> None:
    job_id = await submit(http)
    await orch.store.update_job_state(job_id, JobStateType.Completed, "", expected=frozenset(JobStateType), events=[])
    start = time.monotonic()
    resp = await http.get(f"{JOBS}/{job_id}", params={"wait_ms": "10000", "after_seq": "1000"})
    assert resp.status_code == 200 and time.monotonic() - start < 2.0


@pytest.mark.parametrize("how", ["prefix", "name"])
async def test_a_job_named_by_a_prefix_or_its_name_is_waited_on_too(
    http: httpx.AsyncClient, orch: Orchestrator, how: str
) -> None:
    """The wait reads a job's progress by exact ID; a prefix or a name is resolved first, then waited on."""
    spec = {"Name": "waited-on", "Type": "batch",
            "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]}
    job_id = str((await http.put(JOBS, json={"Job": spec})).json()["JobID"])
    newest = max(seqs((await http.get(f"{JOBS}/{job_id}", params={"include": "history"})).json()))
    ref = job_id[:10] if how == "prefix" else "waited-on"
    waiting = asyncio.create_task(
        http.get(f"{JOBS}/{ref}", params={"include": "history", "wait_ms": "10000", "after_seq": str(newest)})
    )
    await asyncio.sleep(0.2)
    assert not waiting.done(), "answered before the job had anything new"
    await orch.store.update_job_state(
        job_id, JobStateType.Running, "", expected=frozenset(JobStateType),
        events=[JobHistory.model_validate({"Event": {"Topic": "Test", "Message": "news"}})],
    )
    body = (await asyncio.wait_for(waiting, 5)).json()
    assert body["Job"]["ID"] == job_id and min(seqs(body)) > newest


async def test_an_unknown_job_is_a_404_even_when_waiting(http: httpx.AsyncClient) -> None:
    resp = await http.get(f"{JOBS}/j-does-not-exist", params={"wait_ms": "5000", "after_seq": "0"})
    assert resp.status_code == 404, resp.text
