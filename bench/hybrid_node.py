"""A throwaway hybrid node (`bacalhau serve --orchestrator --compute`) for benchmarks, plus timing stats.

The node runs as a subprocess in a temp BACALHAU_DIR on a free port, exactly as a user would start it,
and is stopped (SIGTERM, then SIGKILL) when the `with` block ends. `--api-port` style reuse of an
already running node is supported by passing `url`.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
HELLO_WAT = ROOT / "examples" / "hello.wat"


def bacalhau_bin() -> Path:
    """The `bacalhau` entry point next to the running interpreter (the project's venv)."""
    for candidate in (Path(sys.executable).parent / "bacalhau", ROOT / ".venv" / "bin" / "bacalhau"):
        if candidate.is_file():
            return candidate
    found = shutil.which("bacalhau")
    if not found:
        raise SystemExit("bacalhau is not installed: run `bash scripts/setup` first")
    return Path(found)


def hello_module() -> bytes:
    """The trivial WASI module of examples/hello.wat, compiled (prints one line, exits 0)."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(HELLO_WAT.read_text()))


def inline_wasm_job(module: bytes, target: str = "/app/main.wasm") -> dict[str, object]:
    """A batch wasm job carrying `module` as a data: URL (no publisher: nothing to upload)."""
    url = "data:application/wasm;base64," + base64.b64encode(module).decode()
    return {
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "wasm", "Params": {"EntryModule": target}},
                "InputSources": [{"Target": target, "Source": {"Type": "inline", "Params": {"URL": url}}}],
            }
        ],
    }


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on the loopback interface now, below the kernel's ephemeral range.

    A port the OS picks for bind(0) is one every outgoing connection may take too before the node
    binds it; ports below that range are only ever taken by number. Never the same one twice here.
    """
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low = 20000 if ephemeral_low > 21000 else 1024
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(low, ephemeral_low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise SystemExit(f"no free TCP port in {low}-{ephemeral_low} on 127.0.0.1")


_free_port = free_port  # the name bench/docker_restart.py imports


def rss_mib(pid: int) -> float:
    """Resident set size of the node whose serve process is `pid`, in MiB: its VmRSS (/proc/<pid>/status)
    plus its compute child's (Compute.SeparateProcess), if it has one; not its nats-server's."""
    return sum(_own_rss_mib(p) for p in (pid, *_compute_children(pid)))


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds one process has used so far, from /proc/<pid>/stat; OSError once it is gone."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # After the ")" of comm: state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time the node whose serve process is `pid` has used so far: (user, kernel) seconds, its own plus
    its compute child's (Compute.SeparateProcess), as rss_mib counts them; not its nats-server's."""
    user = kernel = 0.0
    for p in (pid, *_compute_children(pid)):
        try:
            own_user, own_kernel = process_cpu_seconds(p)
        except OSError:  # it ended
            continue
        user, kernel = user + own_user, kernel + own_kernel
    return user, kernel


def _own_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # it ended
        pass
    return 0.0


def _compute_children(pid: int) -> list[int]:
    """The compute child processes of serve process `pid` (`python -m bacalhau.compute_child`)."""
    found = []
    for child in children(pid):
        try:
            if b"bacalhau.compute_child" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:  # it ended
            continue
    return found


def children(pid: int) -> list[int]:
    """Direct children of `pid` (e.g. the orchestrator's embedded nats-server)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


class HybridNode:
    """`bacalhau serve --orchestrator --compute` in the background for the duration of a `with` block."""

    def __init__(
        self,
        *,
        ready_timeout_s: float = 60.0,
        extra_config: Sequence[str] = (),
        prepare: Callable[[Path], None] | None = None,
        tmp_root: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.extra_config = list(extra_config)
        self._prepare = prepare  # called with the empty BACALHAU_DIR before the node starts (pre-filled stores)
        self.url = f"http://127.0.0.1:{self.port}"
        # tmp_root: where its BACALHAU_DIR goes (default TMPDIR); /dev/shm to take the disk out of a figure.
        self._dir = Path(tempfile.mkdtemp(prefix="bacalhau-bench-", dir=tmp_root))
        self._ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for CLI processes that talk to this node."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
        env.update(
            BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(self.port), BACALHAU_DIR=str(self._dir / "data")
        )
        return env

    def __enter__(self) -> HybridNode:
        (self._dir / "data").mkdir()
        if self._prepare is not None:
            self._prepare(self._dir / "data")
        log = (self._dir / "serve.log").open("wb")
        cmd = [str(bacalhau_bin()), "serve", "--orchestrator", "--compute", "-c", "API.Host=127.0.0.1"]
        cmd += ["-c", f"API.Port={self.port}", "-c", "Publishers.Types.Local.Port=0"]
        cmd += ["-c", "Orchestrator.Host=127.0.0.1", "-c", "Orchestrator.Port=0"]  # NATS on a free loopback port
        for setting in self.extra_config:
            cmd += ["-c", setting]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self._ready_timeout_s
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    if http.get(f"{self.url}/api/v1/agent/alive").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise SystemExit(f"bacalhau serve did not become ready; log:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        """Process id of the `bacalhau serve` process."""
        assert self._proc is not None, "node not started"
        return self._proc.pid

    @property
    def data_dir(self) -> Path:
        """The node's BACALHAU_DIR."""
        return self._dir / "data"

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to (gone once the `with` block ends)."""
        return self._dir / "serve.log"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server printed."""
        path = self.log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stop_group(self._proc)
        shutil.rmtree(self._dir, ignore_errors=True)


def stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a process started with start_new_session (and its children), SIGKILL after 10 s."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def median_ms(samples_s: Sequence[float]) -> float:
    """Median of durations given in seconds, in milliseconds."""
    return statistics.median(samples_s) * 1000.0


def p90_ms(samples_s: Sequence[float]) -> float:
    """90th percentile of durations given in seconds, in milliseconds."""
    if len(samples_s) < 2:
        return median_ms(samples_s)
    return statistics.quantiles(samples_s, n=10)[-1] * 1000.0


def print_table(title: str, rows: Sequence[tuple[str, Sequence[float]]]) -> None:
    """One line per measurement: name, median and p90 in ms, number of runs."""
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print(f"  {'measurement':<{width}}  {'median ms':>10}  {'p90 ms':>10}  {'runs':>5}")
    for name, samples in rows:
        print(f"  {name:<{width}}  {median_ms(samples):>10.2f}  {p90_ms(samples):>10.2f}  {len(samples):>5}")

TERMINAL = ("Completed", "Failed", "Stopped")


class ApiJobs:
    """Submits the job over HTTP and waits until it is terminal; remembers the server-side durations.

    `poll_s` > 0 polls GET /jobs/:id that often; 0 waits on the server's events instead, as the CLI
    does (`wait_ms`/`after_seq`/`gather_ms`: the answer comes when the job has new history events, at
    its end for a short job), so the client's own requests do not load the node it measures."""

    def __init__(self, http: httpx.Client, job: dict[str, object], poll_s: float) -> None:
        self.http = http
        self.job = job
        self.poll_s = poll_s
        self.server_side_s: list[float] = []

    def __call__(self) -> None:
        resp = self.http.put("/api/v1/orchestrator/jobs", json={"Job": self.job})
        resp.raise_for_status()
        job_id = resp.json()["JobID"]
        deadline = time.monotonic() + 60
        seen = 0
        while True:
            # gather_ms as the CLI asks it (cli/waiting.py GATHER_MS); a server before it ignores it.
            params = ({"include": "history", "wait_ms": "10000", "after_seq": str(seen), "gather_ms": "100"}
                      if not self.poll_s else {})
            body = self.http.get(f"/api/v1/orchestrator/jobs/{job_id}", params=params).json()
            job = body["Job"]
            state = job["State"]["StateType"]
            if state in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} still {state} after 60 s")
            if self.poll_s:
                time.sleep(self.poll_s)
                continue
            newest = max((item["SeqNum"] for item in (body.get("History") or {}).get("Items") or []), default=0)
            if newest <= seen:
                time.sleep(0.001)  # a server that ignores wait_ms answers at once: never a hot loop
            seen = max(seen, newest)
        if state != "Completed":
            raise SystemExit(f"job {job_id} ended {state}: {job['State'].get('Message')}")
        self.server_side_s.append((job["ModifyTime"] - job["CreateTime"]) / 1e9)
