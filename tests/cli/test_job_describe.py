"""`bacalhau job describe` explains why a waiting or failed job has no nodes, in words and as data.

The API is replaced by an httpx MockTransport serving a GetJobResponse whose job state and history
carry the Details the scheduler writes (built here by the real feasibility checks and grouping).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml
from click.testing import CliRunner
from tests.orchestrator.scheduler.harness import make_job, make_node

from bacalhau.cli.context import CliContext
from bacalhau.cli.main import cli
from bacalhau.client import Client
from bacalhau.models.api import GetJobResponse, ListExecutionsResponse, ListHistoryResponse
from bacalhau.models.job import Job, JobState, LabelSelectorRequirement
from bacalhau.models.node_rejections import DETAIL_NODE_REJECTIONS
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.events import job_state_event
from bacalhau.orchestrator.selection.feasibility import rejection, task_resources
from bacalhau.orchestrator.selection.rejections import summarize, to_details

GB = 1000**3
OSC_TITLE = "\x1b]0;pwned\x07"


def _node_id(i: int) -> str:
    return f"n-{i:08d}-aaaa-bbbb-cccc-dddddddddddd"


def _queued_job(state: JobStateType = JobStateType.Queued) -> tuple[Job, dict[str, str]]:
    """A job wanting zone=eu and 8 GB, against 5 nodes in the wrong zone, 2 too small, 1 on docker only."""
    job = make_job(memory="8gb", queue_timeout_s=600)
    job.constraints = [LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])]
    nodes = [make_node(_node_id(i), labels={"zone": "us"}) for i in range(5)]
    nodes += [make_node(_node_id(10 + i), labels={"zone": "eu"}, memory=(2 + 2 * i) * GB) for i in range(2)]
    nodes.append(make_node(_node_id(20), labels={"zone": "eu"}, engines=("docker",)))
    needed = task_resources(job)
    rejections = [r for r in (rejection(job, n, needed) for n in nodes) if r is not None]
    details = to_details(rejections)
    message = f"Job queued. not enough nodes to run job. requested: 1, available: 0. {summarize(rejections)}"
    job.state = JobState(StateType=state, Message=message, Details=details)
    return job, details


def _response(job: Job, details: dict[str, str]) -> GetJobResponse:
    event = job_state_event(job, JobStateType.Pending, job.state.state_type, job.state.message, details)
    return GetJobResponse(
        Job=job, History=ListHistoryResponse(Items=[event]), Executions=ListExecutionsResponse(Items=[])
    )


Serve = Callable[[GetJobResponse], None]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Make the CLI's API answer every request with the given job."""
    served: list[GetJobResponse] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=served[-1].to_wire())

    def client(self: CliContext, *, timeout_s: float | None = None) -> Client:
        return Client(base_url="http://bacalhau.test", transport=httpx.MockTransport(handler))

    monkeypatch.setattr(CliContext, "client", client)
    yield served.append


def _describe(*args: str) -> str:
    result = CliRunner().invoke(cli, ["job", "describe", "j-1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_queued_job_says_per_reason_how_many_nodes_and_which(serve: Serve) -> None:
    serve(_response(*_queued_job()))
    out = _describe("--no-style")
    assert "State         = Queued" in out
    assert "5 nodes lack label zone=eu; 2 have too little memory (need 8.0 GB, largest offers 4.0 GB); " in out
    section = out.split("Why Not Scheduled\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == [
        " COUNT  REASON                                                      EXAMPLE NODES",
        " 5      lacks label zone=eu                                         n-00000000, n-00000001, n-00000002, …",
        " 2      has too little memory (need 8.0 GB, largest offers 4.0 GB)  n-00000010, n-00000011",
        " 1      has no wasm engine                                          n-00000020",
    ]
    # Right under the message it details, before the history.
    assert out.index("Why Not Scheduled") < out.index("Job History")


def test_wide_shows_every_node_id_the_server_sent_in_full(serve: Serve) -> None:
    serve(_response(*_queued_job()))
    out = _describe("--wide", "--no-style")
    assert ", ".join(_node_id(i) for i in range(5)) in out


def test_a_failed_job_is_explained_and_a_running_one_is_not(serve: Serve) -> None:
    serve(_response(*_queued_job(JobStateType.Failed)))
    assert "Why Not Scheduled" in _describe()
    # Details of a state left behind are not shown as if they still held.
    serve(_response(*_queued_job(JobStateType.Running)))
    assert "Why Not Scheduled" not in _describe()


def test_no_section_without_the_detail(serve: Serve) -> None:
    job, _ = _queued_job()
    job.state.details = {}
    serve(_response(job, {}))
    assert "Why Not Scheduled" not in _describe()


def test_json_and_yaml_add_the_decoded_reasons_as_not_scheduled(serve: Serve) -> None:
    job, details = _queued_job()
    serve(_response(job, details))
    expected = json.loads(details[DETAIL_NODE_REJECTIONS])
    as_json = json.loads(_describe("--output", "json"))
    assert as_json["NotScheduled"] == expected
    assert [g["Count"] for g in expected] == [5, 2, 1]
    # Everything else is Bacalhau's GetJobResponse as it was, the raw detail included.
    assert as_json["Job"]["State"]["Details"][DETAIL_NODE_REJECTIONS] == details[DETAIL_NODE_REJECTIONS]
    assert set(as_json) == {"Job", "History", "Executions", "NotScheduled"}
    assert yaml.safe_load(_describe("--output", "yaml"))["NotScheduled"] == expected

    job.state = JobState(StateType=JobStateType.Completed)
    serve(_response(job, {}))
    assert "NotScheduled" not in json.loads(_describe("--output", "json"))


def test_reasons_and_node_ids_from_the_server_cannot_drive_the_terminal(serve: Serve) -> None:
    job, _ = _queued_job()
    # What a hostile or broken server could send: the scheduler itself flattens node messages.
    groups = [{"Kind": "BidRejected", "Reason": f"refused the job: {OSC_TITLE}", "Count": 1,
               "Nodes": [f"n-{OSC_TITLE}"]}]
    job.state.details = {DETAIL_NODE_REJECTIONS: json.dumps(groups)}
    serve(_response(job, job.state.details))
    out = _describe("--wide")
    assert "\x1b" not in out and "\x07" not in out
    assert "refused the job: \\x1b]0;pwned\\x07" in out and "n-\\x1b]0;pwned\\x07" in out
    # JSON keeps the text exact (escaped by JSON itself).
    assert json.loads(_describe("--output", "json"))["NotScheduled"][0]["Reason"] == f"refused the job: {OSC_TITLE}"
