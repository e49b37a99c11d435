"""The JSON views read every field the CLI shows exactly as the pydantic models do, so that a run's progress,
output and failure read the same whichever of the two they come from."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bacalhau.cli.job.tables import DESCRIBE_HISTORY_COLUMNS, HISTORY_COLUMNS, JOB_COLUMNS
from bacalhau.cli.output import OutputOptions, render_rows
from bacalhau.cli.submission import failure, print_hints, print_task_output
from bacalhau.cli.waiting import event_line, settled
from bacalhau.cli.wire_view import ExecutionView, HistoryView, JobView, items_of, next_token_of
from bacalhau.models.execution import Execution
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job

HISTORY: list[dict[str, Any]] = [
    {"SeqNum": 1, "Time": "2024-05-01T10:20:30.123456789Z", "Event": {"Topic": "Submission", "Message": "Job submitted"}},
    {"SeqNum": 2, "Event": {"Topic": "State Update", "Timestamp": "2024-05-01T10:20:31Z"},
     "JobState": {"Previous": "Pending", "New": "running"}},
    {"SeqNum": 3, "Type": "ExecutionLevel", "ExecutionID": "e-12345678-aaaa", "JobVersion": 2,
     "ExecutionState": {"Previous": 5, "New": "7"}, "Event": {"Topic": "Execution", "Message": ""}},
    {"Event": {"Topic": "Exec Timeout", "Message": "timed out", "Details": {"Hint": "raise --timeout"}}},
    {"Event": {"Topic": "Odd", "Message": "", "Details": {"Hint": "only a hint"}}, "JobState": None},
    {},
]
EXECUTIONS: list[dict[str, Any]] = [
    {"ID": "e-1", "NodeID": "n-1", "JobID": "j-1", "PartitionIndex": 1, "CreateTime": 5,
     "ComputeState": {"StateType": 9}, "RunOutput": {"Stdout": "second\n", "stderr": "warn", "StderrTruncated": True}},
    {"ID": "e-0", "NodeID": "n-2", "JobID": "j-1", "CreateTime": 9, "ComputeState": {"StateType": "Completed"},
     "RunOutput": {"Stdout": "first"}},
    {"ID": "e-2", "JobID": "j-1", "ComputeState": {"StateType": 10, "Message": ""},
     "RunOutput": {"ErrorMsg": "trap: unreachable"}},
    {"ID": "e-3", "NodeID": "n-3", "ComputeState": {"StateType": 10, "Message": "out of memory"}},
    {"ID": "e-4", "ComputeState": {"StateType": 4}, "RunOutput": None},
]
JOBS: list[dict[str, Any]] = [
    {"ID": "j-1", "Type": "batch", "Version": 3, "CreateTime": 1_700_000_000_000_000_000,
     "State": {"StateType": "Failed", "Message": "Job failed", "Details": {"Hint": "not retried"}},
     "Tasks": [{"Engine": {"Type": "wasm"}, "Publisher": {"Type": " Local "}}]},
    {"ID": "j-2", "Type": "service", "State": {"StateType": 3}, "Tasks": None},
    {"ID": "j-3", "Type": "batch", "State": {"StateType": "Bogus"}, "Tasks": [{"Publisher": {"Type": "noop"}}]},
    {"ID": "j-4"},
]


@pytest.mark.parametrize("item", HISTORY)
def test_history_events_print_the_same_from_either(item: dict[str, Any]) -> None:
    assert event_line(HistoryView(item)) == event_line(JobHistory.model_validate(item))


def test_history_tables_render_the_same_from_either() -> None:
    views = [HistoryView(item) for item in HISTORY]
    models = [JobHistory.model_validate(item) for item in HISTORY]
    for columns in (HISTORY_COLUMNS, DESCRIBE_HISTORY_COLUMNS):
        assert render_rows(columns, views, OutputOptions(wide=True)) == render_rows(columns, models, OutputOptions(wide=True))
    assert [v.seq_num for v in views] == [m.seq_num for m in models]
    assert [v.job_version for v in views] == [m.job_version for m in models]


@pytest.mark.parametrize("job", JOBS)
def test_jobs_read_the_same_from_either(job: dict[str, Any]) -> None:
    view, model = JobView(job), Job.model_validate(job)
    assert settled(view) == settled(model)
    assert (view.id, view.type, view.version, view.create_time) == (model.id, model.type, model.version, model.create_time)
    assert render_rows(JOB_COLUMNS, [view], OutputOptions()) == render_rows(JOB_COLUMNS, [model], OutputOptions())
    assert str(failure(view, [])) == str(failure(model, [])) and failure(view, []).hint == failure(model, []).hint


def _printed(action: Any) -> tuple[str, str]:
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        action()
    return out.getvalue().decode(), err.getvalue().decode()


def test_task_output_hints_and_failures_print_the_same_from_either() -> None:
    views = [ExecutionView(item) for item in EXECUTIONS]
    models = [Execution.model_validate(item) for item in EXECUTIONS]
    assert _printed(lambda: print_task_output(views)) == _printed(lambda: print_task_output(models))
    assert "first" in _printed(lambda: print_task_output(views))[0]
    for job in JOBS:
        view, model = JobView(job), Job.model_validate(job)
        assert _printed(lambda v=view: print_hints("j-1", v)) == _printed(lambda m=model: print_hints("j-1", m))
        assert str(failure(view, views)) == str(failure(model, models))


def test_an_unknown_execution_state_is_refused_by_both() -> None:
    bad = {"ID": "e-9", "ComputeState": {"StateType": 42}}
    with pytest.raises(ValidationError):
        Execution.model_validate(bad)
    with pytest.raises(ValueError, match="unknown ExecutionStateType 42"):
        _ = ExecutionView(bad).compute_state.state_type


def test_list_pages_read_null_items_and_tokens_as_empty() -> None:
    assert items_of({"Items": None, "NextToken": None}) == [] and next_token_of({"NextToken": None}) == ""
    assert items_of({"Items": [{"ID": "j"}]}) == [{"ID": "j"}] and next_token_of({"NextToken": "t"}) == "t"
    assert items_of(None) == [] and items_of([1]) == []
