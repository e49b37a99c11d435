"""Throwaway cluster processes for benchmarks: `bacalhau serve` roles on free loopback ports, and /proc stats.

    ServeProcess(orchestrator=True)                 bacalhau serve --orchestrator   (API + embedded nats-server)
    ServeProcess(compute=True, orchestrators=[url]) bacalhau serve --compute        (joins over NATS)
    ServeProcess(orchestrator=True, compute=True)   a hybrid node
    ProcSample.of(pid)                              CPU seconds (utime+stime) and RSS of a process
    RssGuard                                        aborts the run when the processes together exceed a budget

Each process runs in its own temp BACALHAU_DIR and session, with an address-space limit (what
`prlimit --as` sets) so that a runaway experiment fails instead of swapping the machine, and is stopped
with SIGTERM, then SIGKILL, when its `with` block ends. `python_path` runs the same entry point
against another source tree (an older commit's `src/`).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
from hybrid_node import bacalhau_bin, children, free_port, process_cpu_seconds

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
DEFAULT_ADDRESS_SPACE_BYTES = 8 * 1024**3  # per process; nats-server (Go) reserves a lot of address space
# wasmtime reserves ~4 GiB of address space per running instance (guard regions, not memory used), so a
# compute node running several WASM jobs at once needs more than the default cap: under it, instances
# fail with "mmap failed to reserve ... Cannot allocate memory".
COMPUTE_ADDRESS_SPACE_BYTES = 128 * 1024**3


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (hybrid_node.free_port: below the ephemeral range)."""
    return [free_port() for _ in range(count)]


def limit_address_space(limit_bytes: int) -> Callable[[], None]:
    """A Popen `preexec_fn` capping the child's virtual memory (RLIMIT_AS, as `prlimit --as` does)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


@dataclass(frozen=True)
class ProcSample:
    """CPU seconds used so far and resident memory of one process, at a monotonic instant."""

    at_s: float
    cpu_s: float
    rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> ProcSample:
        """Read /proc/<pid>/stat (utime + stime) and statm (resident pages); raises OSError if it is gone."""
        user_s, kernel_s = process_cpu_seconds(pid)
        with open(f"/proc/{pid}/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
        return cls(at_s=time.monotonic(), cpu_s=user_s + kernel_s, rss_bytes=resident_pages * PAGE_BYTES)

    def cpu_percent_since(self, earlier: ProcSample) -> float:
        """CPU used between two samples, in % of one core."""
        wall = self.at_s - earlier.at_s
        return 100.0 * (self.cpu_s - earlier.cpu_s) / wall if wall > 0 else 0.0


class RssGuard:
    """Sums the RSS of some processes; `check()` raises SystemExit above the budget (default 4 GB)."""

    def __init__(self, pids: Callable[[], Sequence[int]], *, budget_bytes: int = 4 * 1024**3) -> None:
        self._pids = pids
        self.budget_bytes = budget_bytes
        self.peak_bytes = 0

    def check(self) -> int:
        """Total RSS now, in bytes; aborts the run (SystemExit) if above budget."""
        total = 0
        for pid in self._pids():
            try:
                total += ProcSample.of(pid).rss_bytes
            except OSError:
                continue
        self.peak_bytes = max(self.peak_bytes, total)
        if total > self.budget_bytes:
            raise SystemExit(f"aborting: benchmark processes use {total / 1e9:.1f} GB RSS (> {self.budget_bytes / 1e9:.1f} GB)")
        return total


class ServeProcess:
    """`bacalhau serve` with the given roles, in the background for the duration of a `with` block."""

    def __init__(
        self,
        *,
        orchestrator: bool = False,
        compute: bool = False,
        orchestrators: Sequence[str] = (),
        name: str | None = None,
        config: Sequence[str] = (),
        python_path: str | None = None,
        address_space_bytes: int = DEFAULT_ADDRESS_SPACE_BYTES,
        ready_timeout_s: float = 60.0,
    ) -> None:
        if not orchestrator and not compute:
            raise ValueError("a serve process needs --orchestrator, --compute or both")
        self.orchestrator = orchestrator
        self.compute = compute
        self.name = name
        # Every node serves its API (compute-only ones too): each needs a port of its own.
        self.api_port, self.nats_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.nats_url = f"nats://127.0.0.1:{self.nats_port}" if orchestrator else ""
        self._orchestrators = list(orchestrators)
        self._config = list(config)
        self._python_path = python_path
        self._address_space_bytes = address_space_bytes
        self._ready_timeout_s = ready_timeout_s
        self._dir = Path(tempfile.mkdtemp(prefix="bacalhau-bench-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The serve process's pid (the Python interpreter running `bacalhau serve`)."""
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    def pids(self) -> list[int]:
        """The serve process and its children (nats-server), for memory accounting."""
        return [self.pid, *children(self.pid)] if self.proc is not None and self.proc.poll() is None else []

    @property
    def env(self) -> dict[str, str]:
        """Environment for the serve process (and for CLI processes that talk to it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
        env["BACALHAU_DIR"] = str(self._dir / "data")
        if self.orchestrator:
            env.update(BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(self.api_port))
        if self._python_path:
            env["PYTHONPATH"] = self._python_path
        return env

    def command(self) -> list[str]:
        """The `bacalhau serve` command line."""
        cmd = [str(bacalhau_bin()), "serve"]
        cmd += ["--orchestrator"] if self.orchestrator else []
        cmd += ["--compute"] if self.compute else []
        cmd += ["--name", self.name] if self.name else []
        cmd += ["-c", "API.Host=127.0.0.1", "-c", f"API.Port={self.api_port}"]
        if self.orchestrator:
            cmd += ["-c", "Orchestrator.Host=127.0.0.1", "-c", f"Orchestrator.Port={self.nats_port}"]
        else:
            cmd += ["-c", f"Compute.Orchestrators={','.join(self._orchestrators)}"]
        if self.compute:
            cmd += ["-c", "Publishers.Types.Local.Port=0"]
        for item in self._config:
            cmd += ["-c", item]
        return cmd

    def __enter__(self) -> ServeProcess:
        (self._dir / "data").mkdir()
        log = (self._dir / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True, preexec_fn=limit_address_space(self._address_space_bytes),
        )
        log.close()
        if self.orchestrator:
            self._wait_alive()
        return self

    def _wait_alive(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self._ready_timeout_s
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if http.get(f"{self.url}/api/v1/agent/alive").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        code = self.proc.poll()
        tail = self.log_tail()
        self.__exit__(None, None, None)
        state = f"exited with {code}" if code is not None else f"not alive after {self._ready_timeout_s:g}s"
        raise SystemExit(f"{' '.join(self.command()[1:])}: {state}; log:\n{tail}")

    def wait_for_nodes(self, node_ids: Sequence[str] | None = None, *, count: int = 1, timeout_s: float = 60.0) -> None:
        """Wait until the orchestrator lists `node_ids` (or at least `count` compute nodes) as CONNECTED."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=10.0) as http:
            while time.monotonic() < deadline:
                resp = http.get("/api/v1/orchestrator/nodes", params={"limit": 1_000_000})
                if resp.status_code == 200:
                    connected = {
                        n["Info"]["NodeID"] for n in resp.json().get("Nodes") or []
                        if n["Info"].get("NodeType") == "Compute" and n["ConnectionState"]["Status"] == "CONNECTED"
                    }
                    if (set(node_ids) <= connected) if node_ids else len(connected) >= count:
                        return
                time.sleep(0.1)
        raise SystemExit(f"compute nodes did not connect within {timeout_s:g}s; log:\n{self.log_tail()}")

    @property
    def log_path(self) -> Path:
        """Where the process's output goes."""
        return self._dir / "serve.log"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the process printed."""
        path = self.log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


_IDLE_LEAVES = frozenset({"EpollSelector.select", "Condition.wait", "ThreadedChildWatcher._do_waitpid", "Event.wait",
                          "Thread._wait_for_tstate_lock", "_worker", "SimpleQueue.get"})


class Profiler:
    """`py-spy record` of a process for a while (installed with `.venv/bin/pip install py-spy`), summarised.

    On-CPU samples only (no --idle), taken without pausing the process (--nonblocking), so the summary
    says where the process's CPU goes: the functions most often on the stack, and the innermost ones.
    """

    def __init__(self, pid: int, duration_s: float, *, rate_hz: int = 100) -> None:
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        self._out = Path(tempfile.mkstemp(prefix="bench-pyspy-", suffix=".txt")[1])
        self.available = exe is not None
        self._proc: subprocess.Popen[bytes] | None = None
        if exe is not None:
            cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))), "--rate",
                   str(rate_hz), "--format", "raw", "--output", str(self._out), "--nonblocking"]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def summary(self, *, top: int = 12, timeout_s: float = 60.0) -> str:
        """Wait for the recording to end; the hottest functions (inclusive, then innermost), % of samples."""
        if self._proc is None:
            return "  (py-spy not installed: `.venv/bin/pip install py-spy` for a profile)"
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        inclusive: dict[str, int] = {}
        leaf: dict[str, int] = {}
        total = 0
        text = self._out.read_text(errors="replace") if self._out.exists() else ""
        self._out.unlink(missing_ok=True)
        idle = 0
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_frame_label(f) for f in stack.split(";")[1:]]  # [0] is the thread
            if frames and frames[-1].split(" (")[0] in _IDLE_LEAVES:
                idle += n  # --nonblocking cannot always tell a thread waiting in a syscall from a busy one
                continue
            total += n
            for name in set(frames):
                inclusive[name] = inclusive.get(name, 0) + n
            if frames:
                leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
        if not total:
            return "  (py-spy recorded nothing: it may need ptrace permission)"
        skip = ("<module>", "main (", "run (", "Runner.run", "run_until_complete", "run_forever", "_run_once",
                "Handle._run", "Context.invoke", "Command.", "Group.invoke", "serve (", "RootGroup", "new_func",
                "Node.run", "Task.__step", "Task.__wakeup", "Worker.run", "_drain (")
        rows = [f"  py-spy, {total} busy samples ({idle} waiting in select/locks left out); ours on the stack:"]
        ours = ("(bacalhau/", "(nats/")  # framework frames (starlette, asyncio) would crowd the list
        hot = sorted(((n, k) for k, n in inclusive.items() if any(o in k for o in ours) and not any(s in k for s in skip)),
                     reverse=True)
        rows += [f"    {100 * n / total:5.1f}%  {k}" for n, k in hot[:top]]
        rows.append("  innermost:")
        rows += [f"    {100 * n / total:5.1f}%  {k}" for n, k in sorted(((n, k) for k, n in leaf.items()), reverse=True)[:top]]
        return "\n".join(rows)


def _frame_label(frame: str) -> str:
    """`func (/…/site-packages/nats/aio/client.py:12)` -> `func (nats/aio/client.py)`: the path from the package."""
    func, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if "/src/bacalhau/" in path:
        path = "bacalhau/" + path.rpartition("/src/bacalhau/")[2]
    elif "/site-packages/" in path:
        path = path.rpartition("/site-packages/")[2]
    elif "/lib/python3." in path:
        path = path.rpartition("/lib/python3.")[2].partition("/")[2]  # the standard library: asyncio/events.py
    return f"{func} ({path})"
