"""Placement by data on a real cluster (an orchestrator and three compute nodes, separate processes): jobs
go to the node that already holds their inputs, the history says so, and the data is fetched once.

    node-a: allow-lists folder A      node-b: allow-lists folder B      node-c: neither
    jobs reading folder A  ──> node-a every time (node-b and node-c hold nothing of it: never asked)
    jobs reading folder B  ──> node-b every time
    first job on URL 1 pinned to node-a, first on URL 2 to node-b (by label); then unpinned jobs on
    URL 1 ──> node-a, on URL 2 ──> node-b, each URL downloaded once (then revalidated: 304, no body)

Without ranking by data, a folder job lands on a node that does not allow-list it two times in three
(refused, then retried: more executions), and URL jobs spread over the three nodes (three downloads).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import JobWatch, submit_file, wasm_job

from cluster_env import Cluster
from http_env import http_server

pytestmark = pytest.mark.scenario

WAIT_S = 60.0
ROUNDS = 3
BODY_BYTES = 50_000


class _Downloads:
    """Full (200) responses per path; conditional requests answered 304 are not counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.full: Counter[str] = Counter()


DOWNLOADS = _Downloads()


class _Data(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = (self.path.encode() * (BODY_BYTES // len(self.path) + 1))[:BODY_BYTES]
        etag = f'"{len(self.path)}-{sum(body[:64])}"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        with DOWNLOADS.lock:
            DOWNLOADS.full[self.path] += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with http_server(_Data) as base:
        yield base


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {}
    for name in ("a", "b"):
        folder = tmp_path_factory.mktemp(f"data-{name}")
        (folder / "table.csv").write_bytes(f"{name},".encode() * 5_000)
        made[name] = folder
    return made


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, folders: dict[str, Path]) -> Iterator[Cluster]:
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        # The input cache's hit counts travel with the periodic node info (node describe shows them).
        fast_info = "Compute.Heartbeat.InfoUpdateInterval=1s"
        made.add_compute("node-a", labels={"site": "a"}, extra_config=[f"Compute.AllowListedLocalPaths={folders['a']}", fast_info])
        made.add_compute("node-b", labels={"site": "b"}, extra_config=[f"Compute.AllowListedLocalPaths={folders['b']}", fast_info])
        made.add_compute("node-c", labels={"site": "c"}, extra_config=[fast_info])
        yield made
    finally:
        made.close()


def cat_job(wasm_modules: dict[str, Path], source: dict[str, Any], path: str, *, site: str = "") -> dict[str, Any]:
    job = wasm_job(wasm_modules["cat"], args=[path], publisher="noop", extra_inputs=[{"Target": "/inputs", "Source": source}])
    if site:
        job["Constraints"] = [{"Key": "site", "Operator": "=", "Values": [site]}]
    return job


def run(cluster: Cluster, watch: JobWatch, tmp_path: Path, job: dict[str, Any], stem: str) -> tuple[str, list[dict[str, Any]]]:
    """Submit through the CLI, wait for Completed; the job ID and its executions."""
    job_id = submit_file(cluster, tmp_path, job, stem)
    watch.wait_state(job_id, "Completed", timeout_s=WAIT_S)
    return job_id, watch.executions(job_id)


def placement_line(watch: JobWatch, job_id: str) -> str:
    """The history line of the job's (only) placement: "Requested execution on <node> (...)"."""
    lines = [e["Event"]["Message"] for e in watch.history(job_id) if "Requested execution on" in e["Event"]["Message"]]
    assert len(lines) == 1, lines
    return str(lines[0])


def test_jobs_go_to_the_node_whose_folder_holds_their_input(
    cluster: Cluster, wasm_modules: dict[str, Path], folders: dict[str, Path], tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    for round_ in range(ROUNDS):
        for name, node in (("a", "node-a"), ("b", "node-b")):
            source = {"Type": "localDirectory", "Params": {"SourcePath": str(folders[name])}}
            job_id, executions = run(cluster, watch, tmp_path, cat_job(wasm_modules, source, "/inputs/table.csv"), f"{name}{round_}")
            # One execution: the holder was asked first, no node refused and no retry was needed.
            assert [e["NodeID"] for e in executions] == [node], executions
            line = placement_line(watch, job_id)
            assert f"on {node} (holds 10.0 kB of 10.0 kB of inputs)" in line, line


def test_url_jobs_follow_the_node_that_downloaded_the_url_and_download_it_once(
    cluster: Cluster, wasm_modules: dict[str, Path], base_url: str, tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    urls = {"node-a": f"{base_url}/one.bin", "node-b": f"{base_url}/two.bin"}
    # The first job of each URL is pinned (by label) to a node; that node now holds the URL.
    for node, url in urls.items():
        source = {"Type": "urlDownload", "Params": {"URL": url}}
        _, executions = run(cluster, watch, tmp_path, cat_job(wasm_modules, source, "/inputs/" + url.rsplit("/", 1)[1], site=node[-1]), "pin")
        assert [e["NodeID"] for e in executions] == [node]
    # Until a node's next info report the orchestrator knows it holds the URL (it sent it there) but
    # not its size, and the placement line says "holds 1 of 1 input(s)": wait for the reports, which
    # the unpinned jobs below could otherwise outrun (they did, once jobs got faster).
    for node in urls:
        deadline = time.monotonic() + 10
        while "SizeBytes: 50000" not in (described := cluster.ok("node", "describe", node).stdout):
            assert time.monotonic() < deadline, described
            time.sleep(0.2)
    for round_ in range(ROUNDS):
        for node, url in urls.items():
            source = {"Type": "urlDownload", "Params": {"URL": url}}
            name = url.rsplit("/", 1)[1]
            job_id, executions = run(cluster, watch, tmp_path, cat_job(wasm_modules, source, "/inputs/" + name), f"u{round_}")
            assert [e["NodeID"] for e in executions] == [node], executions
            assert f"on {node} (holds 50.0 kB of 50.0 kB of inputs)" in placement_line(watch, job_id)
    # Each URL's body was sent once: the later jobs revalidated the node's cached copy (304).
    assert DOWNLOADS.full == {"/one.bin": 1, "/two.bin": 1}, DOWNLOADS.full
    # And node describe shows the cache and its hit rate (what the node reported with its info).
    deadline = time.monotonic() + 10
    while "HitRate: 0.75" not in (described := cluster.ok("node", "describe", "node-a").stdout):
        assert time.monotonic() < deadline, described
        time.sleep(0.2)
    assert "Hits: 3" in described and "Misses: 1" in described and "SizeBytes: 50000" in described, described
