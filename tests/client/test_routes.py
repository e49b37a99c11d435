"""Request building: route paths, query parameters and bodies exactly as Bacalhau names them."""

from __future__ import annotations

from bacalhau.client import routes
from bacalhau.models.job import Job


def test_query_leaves_out_empty_values_and_repeats_iterables() -> None:
    assert routes.query(namespace="", limit=0, reverse=False, labels=["a=b", "c"], order_by="created_at") == [
        ("labels", "a=b"),
        ("labels", "c"),
        ("order_by", "created_at"),
    ]


def test_query_sends_true_booleans_as_lowercase() -> None:
    assert routes.query(follow=True) == [("follow", "true")]


def test_node_filters_use_dashed_names() -> None:
    call = routes.list_nodes(
        limit=0, next_token="", order_by="", reverse=False, labels=(), filter_approval="PENDING", filter_status=""
    )
    assert call.params == [("filter-approval", "PENDING")]


def test_put_job_sends_job_and_force() -> None:
    call = routes.put_job(Job(Type="batch"), force=True)
    assert call.method == "PUT" and call.path == "/api/v1/orchestrator/jobs"
    assert call.body is not None and call.body["Force"] is True and call.body["Job"]["Type"] == "batch"


def test_diff_job_puts_the_job_to_jobs_diff() -> None:
    call = routes.diff_job({"Name": "nightly", "Type": "batch"})
    assert call.method == "PUT" and call.path == "/api/v1/orchestrator/jobs/diff"
    assert call.body is not None and call.body["Job"]["Name"] == "nightly" and "Force" not in call.body
    assert routes.decode(call, {"Diff": "", "Warnings": None}).diff == ""


def test_stop_job_body_uses_lowercase_reason() -> None:
    call = routes.stop_job("j-1", reason="done", namespace="")
    assert call.method == "DELETE" and call.body == {"reason": "done"}


def test_job_ids_and_names_are_one_path_segment() -> None:
    assert routes.job_path("my job/1", "/history") == "/api/v1/orchestrator/jobs/my%20job%2F1/history"


def test_get_job_joins_includes_with_commas() -> None:
    call = routes.get_job("j-1", include=("executions", "history"), namespace="", job_version=0, limit=0)
    assert call.params == [("include", "executions,history")]


def test_node_actions_send_bacalhaus_body_and_a_deadline_only_when_given() -> None:
    approve = routes.update_node("n-1", action="approve", message="ok")
    assert approve.method == "PUT" and approve.path == "/api/v1/orchestrator/nodes/n-1"
    assert approve.body == {"Action": "approve", "Message": "ok", "NodeID": "n-1"}
    drain = routes.update_node("n-1", action="drain", message="", deadline="10m")
    assert drain.body == {"Action": "drain", "Message": "", "NodeID": "n-1", "Deadline": "10m"}


def test_a_job_spec_is_sent_as_it_is() -> None:
    spec = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}]}
    call = routes.put_job_spec(spec, force=False, namespace="ns")
    assert call.method == "PUT" and call.path == "/api/v1/orchestrator/jobs" and call.params == [("namespace", "ns")]
    assert call.body == {"Job": spec, "Force": False}
    assert routes.decode(call, {"JobID": "j-1"}).job_id == "j-1"


def test_get_job_asks_to_wait_only_when_told() -> None:
    plain = routes.get_job("j-1", include=("history",), namespace="", job_version=0, limit=0)
    assert plain.params == [("include", "history")]
    waiting = routes.get_job("j-1", include=("history",), namespace="", job_version=0, limit=0, wait_ms=500,
                             after_seq=7)
    assert waiting.params == [("include", "history"), ("wait_ms", "500"), ("after_seq", "7")]
    gathering = routes.get_job("j-1", include=(), namespace="", job_version=0, limit=0, wait_ms=500, gather_ms=100)
    assert gathering.params == [("wait_ms", "500"), ("gather_ms", "100")]
    # Gathering means nothing without a wait: not sent, so a plain GET stays a plain GET.
    assert routes.get_job("j-1", include=(), namespace="", job_version=0, limit=0, gather_ms=100).params == []


def test_building_requests_imports_no_models() -> None:
    import subprocess
    import sys

    code = ("import sys; from bacalhau.client import routes; "
            "routes.list_jobs(limit=1, next_token='', order_by='', reverse=False, labels=(), namespace=''); "
            "routes.put_job_spec({}, force=False); "
            "print('pydantic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "False"
