"""Bounded job specs and request heads (issue 13, finding 5), through real node processes and the real CLI."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

INLINE_URL = "data:text/plain;base64," + base64.b64encode(b"x" * 200).decode()


def inline_job(inputs: int) -> dict[str, Any]:
    sources = [{"Source": {"Type": "inline", "Params": {"URL": INLINE_URL}}, "Target": f"/in/{i}"} for i in range(inputs)]
    return {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "InputSources": sources}]}


def test_put_job_with_20000_inline_inputs_is_a_400_naming_the_bound(shared_node: BacalhauNode) -> None:
    with shared_node.http() as http:
        started = time.monotonic()
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": inline_job(20_000)})
        assert resp.status_code == 400, resp.text
        message = resp.json()["Message"]
        assert "20000 entries exceed the most any node accepts (10000)" in message, message
        assert time.monotonic() - started < 10
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": inline_job(300)})
        assert resp.status_code == 400, resp.text
        assert ("Tasks[0].InputSources: 300 entries exceed the limit of 256"
                " (JobAdmissionControl.Limits.MaxInputSources)") in resp.json()["Message"]
        assert http.get("/api/v1/agent/alive").status_code == 200


@pytest.mark.parametrize(
    ("field", "entries", "expected"),
    [
        ("Labels", {f"k{i}": "v" for i in range(1001)}, "Labels: 1001 entries exceed the limit of 1000"
         " (JobAdmissionControl.Limits.MaxLabels)"),
        ("Constraints", [{"Key": "a", "Operator": "exists"}] * 257, "Constraints: 257 entries exceed the limit of 256"
         " (JobAdmissionControl.Limits.MaxConstraints)"),
    ],
)
def test_put_job_beyond_a_size_bound_is_a_400(
    shared_node: BacalhauNode, field: str, entries: Any, expected: str
) -> None:
    job = {**inline_job(1), field: entries}
    with shared_node.http() as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": job})
    assert resp.status_code == 400, resp.text
    assert expected in resp.json()["Message"]


def test_put_job_with_a_million_empty_tasks_is_refused_at_once(shared_node: BacalhauNode) -> None:
    body = '{"Job": {"Type": "batch", "Tasks": [' + ",".join(["{}"] * 1_000_000) + "]}}"
    with shared_node.http() as http:
        started = time.monotonic()
        resp = http.put("/api/v1/orchestrator/jobs", content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert "1000000 entries exceed the most any node accepts (100)" in resp.json()["Message"]
        assert time.monotonic() - started < 10
        assert http.get("/api/v1/agent/alive").status_code == 200


def test_server_inline_bound_follows_its_config(serve: Any) -> None:
    node: BacalhauNode = serve(extra_config=["JobAdmissionControl.Limits.MaxInlineBytes=1KiB"])
    with httpx.Client(base_url=node.url, timeout=10) as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": inline_job(5)})
    assert resp.status_code == 400, resp.text
    assert ("Tasks[0].InputSources: inline data of 1455 bytes exceeds the limit of 1024 bytes"
            " (JobAdmissionControl.Limits.MaxInlineBytes)") in resp.json()["Message"]


def test_job_validate_refuses_too_many_inputs_with_exit_code_1(bacalhau_bin: Path, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(inline_job(300)))
    env = {**os.environ, "BACALHAU_DIR": str(tmp_path / "home")}
    result = subprocess.run([str(bacalhau_bin), "job", "validate", str(path)], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert ("Tasks[0].InputSources: 300 entries exceed the limit of 256 (JobAdmissionControl.Limits.MaxInputSources)"
            in result.stderr), result.stderr
    path.write_text(json.dumps(inline_job(256)))
    result = subprocess.run([str(bacalhau_bin), "job", "validate", str(path)], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_1mb_header_is_refused_quickly_without_growing_the_node(shared_node: BacalhauNode) -> None:
    host, port = "127.0.0.1", int(shared_node.url.rsplit(":", 1)[1])
    before = _rss_kib(shared_node.pid)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        head = b"GET /api/v1/agent/alive HTTP/1.1\r\nHost: x\r\nX-Big: "
        sock.sendall(head)
        answer = b""
        try:
            for _ in range(16):  # 1 MiB in 64 KiB pieces; the node may answer and close before the end
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert answer.split(b" ", 2)[1] in (b"400", b"431"), answer[:200]
    assert time.monotonic() - started < 5
    assert _rss_kib(shared_node.pid) - before < 5 * 1024
    with shared_node.http() as http:
        assert http.get("/api/v1/agent/alive").status_code == 200
