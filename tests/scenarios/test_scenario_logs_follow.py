"""Following logs: `bacalhau job logs -f` streams a running job's lines as they are produced and returns
when the job ends; `job run --follow` and `wasm run --follow` print the module's output."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from scenario_jobs import JobWatch, one_job_id, wasm_job, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

FOLLOW_TIMEOUT_S = 30.0


class StreamedCli:
    """A `bacalhau` process whose stdout lines can be waited for one by one as they arrive."""

    def __init__(self, node: BacalhauNode, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [str(node.binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=node.env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    @staticmethod
    def _pump(stream: IO[str], sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line)

    def wait_line(self, needle: str, timeout_s: float = FOLLOW_TIMEOUT_S) -> str:
        """Block until a stdout line containing `needle` arrives (fail at the deadline)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(
            f"no line with {needle!r} from `bacalhau {' '.join(self.args)}` in {timeout_s}s\n"
            f"stdout so far: {self.seen}\nstderr so far: {self.stderr}"
        )

    def wait_exit(self, timeout_s: float = FOLLOW_TIMEOUT_S) -> int:
        """Wait for the process to end; kill it and fail if it does not."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(f"`bacalhau {' '.join(self.args)}` still running after {timeout_s}s") from None

    def close(self) -> None:
        """Kill the process if it still runs, drain its pipes and close them."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_job_logs_follow_streams_a_running_job_and_returns_when_it_is_stopped(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    job_id = shared_node.ok("wasm", "run", "--wait=false", "--id-only", str(wasm_modules["loop"])).stdout.strip()
    shared_watch.wait_state(job_id, "Running")
    follower = StreamedCli(shared_node, "job", "logs", "-f", job_id)
    try:
        follower.wait_line("looping")
        # The line arrived while the job was still running, and the follower keeps waiting for more.
        assert shared_watch.state(job_id) == "Running"
        assert follower.proc.poll() is None, "job logs -f returned while the job was still running"
        shared_node.ok("job", "stop", job_id)
        assert follower.wait_exit() == 0
    finally:
        follower.close()
        if shared_watch.state(job_id) == "Running":
            shared_node.cli("job", "stop", job_id)
    shared_watch.wait_state(job_id, "Stopped")


def test_job_logs_follow_returns_when_the_job_times_out(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    job_id = shared_node.ok(
        "wasm", "run", "--wait=false", "--id-only", "--timeout", "3", str(wasm_modules["loop"])
    ).stdout.strip()
    follower = StreamedCli(shared_node, "job", "logs", "--follow", job_id)
    try:
        follower.wait_line("looping")
        assert follower.wait_exit() == 0
    finally:
        follower.close()
    job = shared_watch.wait_state(job_id, "Failed")
    assert "time" in job["State"]["Message"].lower(), job["State"]


def test_job_logs_follow_of_a_finished_job_prints_its_lines_and_returns(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    job_id = shared_watch.submit(wasm_job(wasm_modules["hello"], args=["done already"]))
    shared_watch.wait_state(job_id, "Completed")
    result = shared_node.ok("job", "logs", "-f", job_id, timeout=FOLLOW_TIMEOUT_S)
    assert "hello from wasm" in result.stdout and "arg1=done already" in result.stdout, result.stdout


def test_job_run_follow_prints_the_module_output(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], args=["followed"]))
    result = shared_node.ok("job", "run", "--follow", str(path))
    assert "hello from wasm" in result.stdout and "arg1=followed" in result.stdout, shared_node.describe_result(result)
    shared_watch.wait_state(one_job_id(result.stdout), "Completed")


def test_wasm_run_follow_prints_the_output_once(shared_node: BacalhauNode, wasm_modules: dict[str, Path]) -> None:
    result = shared_node.ok("wasm", "run", "-f", str(wasm_modules["hello"]), "--", "once")
    assert result.stdout.count("arg1=once") == 1, shared_node.describe_result(result)
