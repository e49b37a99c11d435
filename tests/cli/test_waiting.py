"""Progress lines printed while waiting for a job, when waiting ends, and how often the server is asked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bacalhau.cli.waiting import FIRST_POLL_S, GATHER_MS, POLL_INTERVAL_S, JobWatcher, event_line, settled
from bacalhau.cli.wire_view import JobView
from bacalhau.client import routes
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job
from bacalhau.models.state import JobStateType


def test_event_lines_show_time_short_execution_id_topic_and_message() -> None:
    moment = datetime(2024, 5, 1, 10, 20, 30, 123000, tzinfo=UTC)
    item = JobHistory.model_validate(
        {
            "Type": "ExecutionLevel",
            "ExecutionID": "e-12345678-aaaa",
            "Time": moment.isoformat().replace("+00:00", "Z"),
            "Event": {"Topic": "Execution", "Message": "Running"},
        }
    )
    local = moment.astimezone()
    assert event_line(item) == f"{local:%H:%M:%S}.123  e-12345678  Execution         Running"


def test_event_hints_are_appended() -> None:
    item = JobHistory.model_validate(
        {"Event": {"Topic": "Exec Timeout", "Message": "Execution timed out", "Details": {"Hint": "Increase it"}}}
    )
    assert event_line(item).endswith("Execution timed out (Increase it)")


def test_batch_jobs_settle_when_terminal_and_services_once_running() -> None:
    assert settled(Job(Type="batch", State={"StateType": "Completed"}))
    assert not settled(Job(Type="batch", State={"StateType": "Running"}))
    assert settled(Job(Type="service", State={"StateType": "Running"}))


def test_a_failed_jobs_error_leads_with_the_schedulers_hint() -> None:
    """Why the failure was not retried is what the user can act on: it comes before the describe pointer."""
    from bacalhau.cli.submission import failure
    from bacalhau.models.job import JobState
    from bacalhau.models.state import JobStateType

    job = Job(ID="j-1", Type="batch", State=JobState(
        StateType=JobStateType.Failed, Message="Job failed because one or more executions failed: HTTP 404",
        Details={"Hint": "not retried: the failure is the job's own"},
    ))
    error = failure(job, [])
    assert error.hint == "not retried: the failure is the job's own; run 'bacalhau job describe j-1' for the full history"
    plain = failure(Job(ID="j-2", Type="batch", State=JobState(StateType=JobStateType.Failed)), [])
    assert plain.hint == "run 'bacalhau job describe j-2' for the full history"


class ScriptedApi:
    """A client whose GET /jobs/{id} answers come from a script (the last one repeats); like a Go server,
    it ignores wait_ms and answers at once. Records every request's query and the clock at that moment."""

    def __init__(self, script: list[dict[str, Any]], clock: FakeClock, *, timeout_s: float | None = 30.0) -> None:
        self.script = script
        self.clock = clock
        self.timeout_s = timeout_s
        self.queries: list[dict[str, str]] = []
        self.moments: list[float] = []

    def raw(self, call: routes.Call) -> Any:
        self.queries.append(dict(call.params))
        self.moments.append(self.clock.now)
        return self.script[min(len(self.queries), len(self.script)) - 1]


class FakeClock:
    """Time that moves only when the watcher sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _answer(state: str, seqs: list[int], *, version: int = 1) -> dict[str, Any]:
    events = [{"SeqNum": s, "JobVersion": version, "Event": {"Topic": "T", "Message": f"event {s}"}} for s in seqs]
    return {"Job": {"ID": "j-1", "Type": "batch", "Version": version, "State": {"StateType": state}},
            "History": {"Items": events}}


def _watcher(api: ScriptedApi, clock: FakeClock) -> JobWatcher:
    return JobWatcher(api, "j-1", clock=lambda: clock.now, sleep=clock.sleep)  # type: ignore[arg-type]


def test_a_server_that_ignores_wait_ms_is_polled_with_back_off_never_in_a_busy_loop() -> None:
    clock = FakeClock()
    quiet = [_answer("Running", [1, 2])] * 20
    api = ScriptedApi([_answer("Running", [1, 2]), *quiet, _answer("Completed", [1, 2, 3])], clock)
    seen: list[str] = []
    final = _watcher(api, clock).wait(600, lambda item: seen.append(item.event.message), lambda _job: None)
    assert final is not None and final.state.state_type is JobStateType.Completed
    assert seen == ["event 1", "event 2", "event 3"]
    # Every answer that brought nothing new was followed by a sleep, growing from 10 ms to 0.2 s.
    assert len(api.queries) == 22 and len(clock.sleeps) == 20
    assert clock.sleeps[0] == FIRST_POLL_S and max(clock.sleeps) == POLL_INTERVAL_S
    assert clock.sleeps == sorted(clock.sleeps)
    assert all(later > earlier for earlier, later in zip(api.moments[1:], api.moments[2:], strict=False))


def test_requests_against_such_a_server_stay_a_steady_trickle() -> None:
    clock = FakeClock()
    api = ScriptedApi([_answer("Running", [1])], clock)
    assert _watcher(api, clock).wait(10, lambda _item: None, lambda _job: None) is None
    # 10 s at most every 0.2 s after a short ramp: about 55 requests, never hundreds.
    assert 45 <= len(api.queries) <= 60, len(api.queries)
    assert clock.now == pytest.approx(10)


def test_each_request_asks_to_wait_for_events_past_the_newest_seen_within_the_time_left() -> None:
    clock = FakeClock()
    # An event of another job version counts for after_seq (the server compares every event) but is not printed.
    api = ScriptedApi([_answer("Running", [1, 4], version=2), _answer("Running", [1, 4, 7], version=2),
                       _answer("Completed", [1, 4, 7, 9], version=2)], clock)
    watcher = JobWatcher(api, "j-1", job_version=2, clock=lambda: clock.now, sleep=clock.sleep)  # type: ignore[arg-type]
    watcher.wait(12.5, lambda _item: None, lambda _job: None)
    assert [q.get("after_seq") for q in api.queries] == [None, "4", "7"]
    # The wait asked for: what is left of the 12.5 s, and less than the request's own 30 s timeout.
    assert [q["wait_ms"] for q in api.queries] == ["12500", "12500", "12500"]
    # News is gathered for a moment (the events that follow come in the same answer).
    assert [q["gather_ms"] for q in api.queries] == [str(GATHER_MS)] * 3
    assert clock.sleeps == []  # every answer brought news: asked again at once


def test_the_wait_asked_for_fits_inside_the_requests_timeout() -> None:
    for timeout_s, expected in ((30.0, "29000"), (None, "30000"), (0.5, None)):
        clock = FakeClock()
        api = ScriptedApi([_answer("Completed", [1])], clock, timeout_s=timeout_s)
        _watcher(api, clock).wait(600, lambda _item: None, lambda _job: None)
        assert api.queries[0].get("wait_ms") == expected, timeout_s


def test_views_of_the_servers_json_settle_like_the_models() -> None:
    assert settled(JobView({"Type": "batch", "State": {"StateType": "Completed"}}))
    assert not settled(JobView({"Type": "batch", "State": {"StateType": "Running"}}))
    assert settled(JobView({"Type": "daemon", "State": {"StateType": 3}}))
