"""Progress lines printed while waiting for a job, and when waiting ends."""

from __future__ import annotations

from datetime import UTC, datetime

from bacalhau.cli.waiting import event_line, settled
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job


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
