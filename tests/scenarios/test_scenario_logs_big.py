"""Reading a big log does not cost the node memory: `GET .../jobs/<id>/logs` (websocket) against a real
node, for a wasm job that wrote 200 MiB of stdout through the executor's real log files.

What a user notices: the first frame comes at once, every byte arrives, the node's RSS (serve and its
nats-server) barely moves while the log streams, a client that stops reading makes the node wait rather
than buffer, and one stream past `Orchestrator.LogStream.MaxStreamsPerJob` gets a clear 429 error.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import JobWatch, wasm_job
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

LOG_MIB = 200
LOG_BYTES = LOG_MIB * 1024 * 1024
LINE_BYTES = 64  # bigout.c writes numbered 64-byte lines
MAX_STREAMS_PER_JOB = 2
# The node may grow by this much while streaming (a window of frames, buffers, allocator noise), however
# big the log: before the fix, 100 MiB of log took the node from ~110 MiB to over 1.1 GiB.
RSS_GROWTH_BOUND_MIB = 100.0
FIRST_FRAME_BOUND_S = 1.0
STREAM_DEADLINE_S = 45.0
PAUSE_S = 3.0
SAMPLE_INTERVAL_S = 0.02


def _rss_mib(pid: int) -> float:
    """VmRSS of `pid` plus that of its children (the embedded nats-server), in MiB."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    total_kib = 0
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


class RssPeak:
    """The highest RSS of the node seen while the `with` block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = _rss_mib(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.peak = max(self.peak, _rss_mib(self.pid))

    @property
    def growth(self) -> float:
        return self.peak - self.before

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _logs_url(node: BacalhauNode, job_id: str, query: str = "") -> str:
    return node.url.replace("http://", "ws://") + f"/api/v1/orchestrator/jobs/{job_id}/logs" + query


def _frame(ws: ClientConnection, timeout_s: float) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout_s))
    return frame


def _read_to_end(ws: ClientConnection, deadline: float) -> tuple[int, str]:
    """(stdout bytes, last line) of every frame until the server closes with 1000."""
    received, last = 0, ""
    while time.monotonic() < deadline:
        try:
            frame = _frame(ws, deadline - time.monotonic())
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1000, f"closed abnormally: {exc}"
            return received, last
        assert not frame.get("error"), frame
        line = frame["value"]["Line"]
        assert frame["value"]["Type"] == 1, frame["value"]["Type"]
        received += len(line.encode())
        if line:
            last = line
    raise AssertionError(f"log not fully streamed within {STREAM_DEADLINE_S}s ({received} of {LOG_BYTES} bytes)")


@pytest.fixture(scope="module")
def capped_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BacalhauNode]:
    """A hybrid node allowing MAX_STREAMS_PER_JOB log streams per job."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool(extra_config=[f"Orchestrator.LogStream.MaxStreamsPerJob={MAX_STREAMS_PER_JOB}"])
    finally:
        pool.close()


@pytest.fixture(scope="module")
def big_log_job(capped_node: BacalhauNode, wasm_modules: dict[str, Path]) -> str:
    """A completed job whose stdout is LOG_MIB MiB of numbered lines."""
    watch = JobWatch(capped_node.url, capped_node.log_excerpt)
    job_id = watch.submit(wasm_job(wasm_modules["bigout"], args=[str(LOG_MIB)], publisher="noop"))
    watch.wait_state(job_id, "Completed", timeout_s=60.0)
    return job_id


def test_a_big_log_streams_whole_at_once_without_growing_the_node(capped_node: BacalhauNode, big_log_job: str) -> None:
    with RssPeak(capped_node.pid) as rss, connect(_logs_url(capped_node, big_log_job), max_size=None) as ws:
        start = time.monotonic()
        first = _frame(ws, STREAM_DEADLINE_S)
        first_frame_s = time.monotonic() - start
        received, last = _read_to_end(ws, start + STREAM_DEADLINE_S)
        received += len(first["value"]["Line"].encode())

    assert first_frame_s < FIRST_FRAME_BOUND_S, f"first frame after {first_frame_s:.2f}s"
    assert first["value"]["Line"].startswith("0" * 15 + ".")
    assert received == LOG_BYTES
    assert last.endswith(f"{LOG_BYTES // LINE_BYTES - 1:015d}{'.' * 48}\n")
    assert rss.growth < RSS_GROWTH_BOUND_MIB, (
        f"node RSS went from {rss.before:.0f} to {rss.peak:.0f} MiB while streaming {LOG_MIB} MiB of log"
    )


def test_a_client_that_stops_reading_makes_the_node_wait_not_buffer(
    capped_node: BacalhauNode, big_log_job: str
) -> None:
    with connect(_logs_url(capped_node, big_log_job), max_size=None) as ws:
        start = time.monotonic()
        first = _frame(ws, STREAM_DEADLINE_S)
        with RssPeak(capped_node.pid) as paused:
            time.sleep(PAUSE_S)  # the slow client: reads nothing while the node could push 100 MiB
        received, _ = _read_to_end(ws, start + STREAM_DEADLINE_S)
        received += len(first["value"]["Line"].encode())

    assert paused.growth < RSS_GROWTH_BOUND_MIB / 2, (
        f"node RSS went from {paused.before:.0f} to {paused.peak:.0f} MiB while the client read nothing"
    )
    assert received == LOG_BYTES  # nothing was dropped to keep memory down


def test_one_log_stream_past_the_per_job_cap_gets_a_429_error(capped_node: BacalhauNode, big_log_job: str) -> None:
    url = _logs_url(capped_node, big_log_job)
    with contextlib.ExitStack() as holders:
        for _ in range(MAX_STREAMS_PER_JOB):
            ws = holders.enter_context(connect(url, max_size=None))
            _frame(ws, STREAM_DEADLINE_S)  # streaming, then not reading: each holds its slot
        with connect(url, max_size=None) as extra:
            frame = _frame(extra, 10.0)
            with pytest.raises(ConnectionClosed) as closed:
                extra.recv(timeout=10.0)
    error = frame["error"]
    assert error["HTTPStatusCode"] == 429 and error["Code"] == "ResourceExhausted", error
    assert "Orchestrator.LogStream.MaxStreamsPerJob=2" in error["Cause"], error
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    # The slots are freed when their clients leave: a new stream gets the log again.
    deadline = time.monotonic() + 10.0
    while True:
        with connect(url, max_size=None) as again:
            frame = _frame(again, 10.0)
        if not frame.get("error") or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the server may not have seen the close yet
    assert frame.get("value") and not frame.get("error"), frame
