"""Data by URL, end to end through the real CLI and a real `bacalhau serve`: `-i https://...` inputs
(with a checksum), a wrong checksum failing only its own job, `job describe` showing where results
were published, `job get` refusing to overwrite unless asked, and a node without a storage type
refusing jobs that need it with the reason."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, one_job_id

from http_env import http_server
from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

PAYLOAD = b"city,temp\nlisbon,21\nporto,17\n"


class _Files(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/data/weather.csv":
            body, status = PAYLOAD, 200
        else:
            body, status = b"no such file", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving /data/weather.csv; yields its base URL."""
    with http_server(_Files) as base:
        yield base


def test_a_url_input_with_its_checksum_reaches_the_job_and_get_downloads_the_results(
    shared_node: BacalhauNode, shared_watch: JobWatch, files: str, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    url = f"{files}/data/weather.csv"
    result = shared_node.ok(
        "wasm", "run", "-i", f"src={url},dst=/inputs,opt=checksum=sha256:{digest}", "-o", "outputs:/outputs",
        "-p", "local", str(wasm_modules["cat"]), "--", "/inputs/weather.csv", "/outputs/copy.csv",
    )
    job_id = one_job_id(result.stdout)
    shared_watch.wait_state(job_id, "Completed")

    described = shared_node.ok("job", "describe", job_id)
    assert "Published Results" in described.stdout and ".tar.gz" in described.stdout, described.stdout

    out_dir = tmp_path / "results"
    got = shared_node.ok("job", "get", job_id, "--output-dir", str(out_dir))
    assert str(out_dir) in got.stdout, shared_node.describe_result(got)
    assert (out_dir / "outputs" / "copy.csv").read_bytes() == PAYLOAD
    assert (out_dir / "stdout").read_bytes() == PAYLOAD
    assert (out_dir / "exitCode").read_text() == "0"

    # A second download into the same folder would overwrite: refused, and nothing is changed.
    (out_dir / "stdout").write_text("my notes")
    (out_dir / "outputs" / "copy.csv").unlink()
    again = shared_node.fails("job", "get", job_id, "--output-dir", str(out_dir))
    assert "refusing to overwrite existing file" in again.stderr and "--overwrite" in again.stderr, (
        shared_node.describe_result(again)
    )
    assert (out_dir / "stdout").read_text() == "my notes"
    assert not (out_dir / "outputs" / "copy.csv").exists()  # nothing was merged
    shared_node.ok("job", "get", job_id, "--output-dir", str(out_dir), "--overwrite")
    assert (out_dir / "stdout").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_fails_its_job_only(
    shared_node: BacalhauNode, shared_watch: JobWatch, files: str, wasm_modules: dict[str, Path]
) -> None:
    url = f"{files}/data/weather.csv"
    wrong = "sha256:" + hashlib.sha256(b"yesterday's data").hexdigest()
    bad = shared_node.fails(
        "wasm", "run", "-i", f"src={url},dst=/inputs,opt=checksum={wrong}",
        str(wasm_modules["cat"]), "--", "/inputs/weather.csv",
    )
    bad_id = one_job_id(bad.stdout + bad.stderr)
    failed = shared_watch.wait_state(bad_id, "Failed")
    executions = shared_watch.executions(bad_id)
    reasons = " ".join(e["ComputeState"]["Message"] for e in executions) + failed["State"]["Message"]
    assert "checksum mismatch" in reasons and url in reasons, (failed, executions)

    good = shared_node.ok("wasm", "run", "-i", f"{url}:/inputs", str(wasm_modules["cat"]), "--", "/inputs/weather.csv")
    assert "porto,17" in good.stdout, shared_node.describe_result(good)


def test_a_missing_url_fails_with_the_status_and_the_alias(
    shared_node: BacalhauNode, shared_watch: JobWatch, files: str, wasm_modules: dict[str, Path]
) -> None:
    url = f"{files}/data/gone.csv"
    bad = shared_node.fails("wasm", "run", "-i", f"{url}:/inputs", str(wasm_modules["cat"]), "--", "/inputs/gone.csv")
    job_id = one_job_id(bad.stdout + bad.stderr)
    shared_watch.wait_state(job_id, "Failed")
    messages = " ".join(e["ComputeState"]["Message"] for e in shared_watch.executions(job_id))
    assert "HTTP 404" in messages and url in messages, messages


def test_a_node_without_a_storage_type_refuses_jobs_needing_it(
    serve: object, wasm_modules: dict[str, Path]
) -> None:
    node: BacalhauNode = serve(extra_config=["InputSources.Disabled=urlDownload,s3"])  # type: ignore[operator]
    refused = node.fails(
        "wasm", "run", "-i", "s3://some-bucket/key.csv:/inputs", str(wasm_modules["cat"]), "--", "/inputs/key.csv",
    )
    out = refused.stdout + refused.stderr
    job_id = one_job_id(out)
    failed = JobWatch(node.url, node.log_excerpt).wait_state(job_id, "Failed")
    assert "cannot read s3 inputs" in failed["State"]["Message"], failed["State"]

    described = node.ok("agent", "node", "--output", "json")
    assert '"urlDownload"' not in described.stdout and '"s3"' not in described.stdout.split("StorageSources")[1][:200]
