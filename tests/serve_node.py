"""A real `bacalhau serve --orchestrator --compute` subprocess for tests, and the pool that owns them.

A node's lifecycle::

    start() --spawn--> waiting --GET /api/v1/agent/alive == 200--> ready --stop()--> SIGTERM --> SIGKILL
                          |  process exited / deadline passed               \\--kill9()--> SIGKILL (no shutdown)
                          +--> NodeStartError (carries the server log)        restart(): start() again on the
                                                                              same BACALHAU_DIR and ports

Every wait is a poll against a deadline. The server's stdout/stderr go to a log file whose tail is put
into assertion messages and into the report of a failing test.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import httpx
import pytest

from parallel import worker_slice

SERVE_LOG_TAIL_LINES = 150
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def in_ci() -> bool:
    """True under CI (`CI=true`), where a missing service fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip the test locally; fail it under CI=true (so CI never passes on tests that did not run)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's ip_local_port_range: where connect() and bind(port 0) take their local ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, chosen below the kernel's ephemeral range.

    A port the OS picks for bind(0) comes from the ephemeral range, which every outgoing
    connection (httpx, nats-py, the nodes' own clients) draws from too: between our probe and
    the node's bind, one of them could take it ("port already in use", a CI failure seen on
    a cluster's orchestrator port). Ports below that range are only ever taken by whoever
    binds them by number; this process never hands out the same one twice.
    """
    ephemeral_low, _ = _ephemeral_range()
    # Each pytest-xdist worker picks from its own slice, so two workers never hand out the same port.
    low, high = worker_slice(*((20000, ephemeral_low) if ephemeral_low > 21000 else (1024, ephemeral_low)))
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port in {low}-{high} on 127.0.0.1 after 500 tries")


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any BACALHAU_* setting that could point elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    env.pop("LOG_LEVEL", None)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class NodeStartError(RuntimeError):
    """`bacalhau serve` exited or never answered /api/v1/agent/alive before its deadline."""


class BacalhauNode:
    """A real `bacalhau serve --orchestrator --compute` subprocess with its own BACALHAU_DIR and ports."""

    def __init__(
        self,
        *,
        binary: Path,
        data_dir: Path,
        log_path: Path,
        api_port: int,
        extra_config: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.data_dir = data_dir
        self.log_path = log_path
        self.api_port = api_port
        self.extra_config = list(extra_config)
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- addresses and environment ------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the node's API, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a CLI process talking to this node."""
        return _clean_env(
            {
                **self.extra_env,
                "BACALHAU_API_HOST": "127.0.0.1",
                "BACALHAU_API_PORT": str(self.api_port),
                "BACALHAU_DIR": str(self.data_dir),
            }
        )

    @property
    def command(self) -> list[str]:
        """The `bacalhau serve` command line this node runs."""
        cmd = [str(self.binary), "serve", "--orchestrator", "--compute"]
        for setting in [
            "API.Host=127.0.0.1",
            f"API.Port={self.api_port}",
            # The embedded NATS server on a free loopback port: tests run many nodes at once.
            "Orchestrator.Host=127.0.0.1",
            "Orchestrator.Port=0",
            "Publishers.Types.Local.Port=0",
            *self.extra_config,
        ]:
            cmd += ["-c", setting]
        return cmd + self.extra_args

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, timeout_s: float = READY_TIMEOUT_S) -> BacalhauNode:
        """Spawn the server and wait until it answers /api/v1/agent/alive; raise NodeStartError if not."""
        if self.running:
            raise RuntimeError("node already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.data_dir.parent,
                start_new_session=True,  # signals reach the server, not the test runner
            )
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll GET /api/v1/agent/alive until 200 {"Status": "OK"}, the process exits, or the deadline."""
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise NodeStartError(f"bacalhau serve exited with code {code} before it was ready\n{self.log_excerpt()}")
                try:
                    resp = http.get(f"{self.url}/api/v1/agent/alive")
                    # Alive, and the node printed its "started" line (it may answer a moment before).
                    if resp.status_code == 200 and resp.json().get("Status") == "OK" and self._started_line():
                        return
                    last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    last_error = repr(exc)
                time.sleep(0.05)  # poll interval, bounded by the deadline above
        self.stop()
        raise NodeStartError(
            f"bacalhau serve did not answer /api/v1/agent/alive within {timeout_s:.0f}s ({last_error})\n{self.log_excerpt()}"
        )

    def _started_line(self) -> bool:
        """Whether the current start has printed `bacalhau node <id> started: ...`."""
        current = self.log_text().rpartition("===== start #")[2]
        return any(line.startswith("bacalhau node ") and " started: " in line for line in current.splitlines())

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        assert self.proc is not None, "node not started"
        return self.proc.pid

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)
        return self.proc.returncode

    def kill9(self) -> None:
        """Kill the server with SIGKILL (no graceful shutdown), as a crash or power cut would."""
        assert self.proc is not None, "node not started"
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self, timeout_s: float = READY_TIMEOUT_S) -> BacalhauNode:
        """Start the server again on the same BACALHAU_DIR and ports (stopping it first if still up)."""
        if self.running:
            self.stop()
        return self.start(timeout_s)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        # The server runs in its own session: signal its whole process group (workers included).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    # -- logs ---------------------------------------------------------------------------------------
    def log_text(self) -> str:
        """Everything the server printed so far (all starts)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_excerpt(self, lines: int = SERVE_LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the server log, framed for an assertion message."""
        tail = self.log_text().splitlines()[-lines:]
        return f"----- bacalhau serve log ({self.log_path}), last {len(tail)} lines -----\n" + "\n".join(tail)

    # -- the CLI against this node ------------------------------------------------------------------
    def cli(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `bacalhau` binary with `args` against this node; never raises on exit codes."""
        full_env = self.env
        if env:
            full_env.update(env)
        try:
            return subprocess.run(
                [str(self.binary), *args],
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                cwd=cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"`bacalhau {' '.join(args)}` did not finish within {timeout}s\n"
                f"stdout: {_text(exc.stdout)}\nstderr: {_text(exc.stderr)}\n{self.log_excerpt()}"
            ) from exc

    def describe_result(self, result: subprocess.CompletedProcess[str]) -> str:
        """A CLI result and the server log, for assertion messages."""
        args = result.args[1:] if isinstance(result.args, list) else result.args
        return (
            f"`bacalhau {' '.join(map(str, args))}` exited {result.returncode}\n"
            f"----- stdout -----\n{result.stdout}\n----- stderr -----\n{result.stderr}\n{self.log_excerpt()}"
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the CLI and assert it exits 0; the failure message carries its output and the server log."""
        result = self.cli(*args, **kwargs)
        assert result.returncode == 0, self.describe_result(result)
        return result

    def fails(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the CLI and assert it exits non-zero."""
        result = self.cli(*args, **kwargs)
        assert result.returncode != 0, "expected a non-zero exit\n" + self.describe_result(result)
        return result

    def http(self, timeout_s: float = 10.0) -> httpx.Client:
        """An httpx client with this node's API as base URL."""
        return httpx.Client(base_url=self.url, timeout=timeout_s)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


class NodePool:
    """Creates BacalhauNodes under one temp root and stops every one of them at `close()`."""

    # Nodes alive right now, across pools: a failing test's report carries their logs.
    live: ClassVar[list[BacalhauNode]] = []

    def __init__(self, binary: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._binary = binary
        self._tmp = tmp_path_factory
        self._nodes: list[BacalhauNode] = []

    def __call__(
        self,
        extra_config: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        start: bool = True,
        api_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> BacalhauNode:
        """A new node with a fresh BACALHAU_DIR and API port; started and ready unless `start=False`."""
        base = self._tmp.mktemp("node")
        node = BacalhauNode(
            binary=self._binary,
            data_dir=base / "bacalhau",
            log_path=base / "serve.log",
            api_port=api_port or find_free_port(),
            extra_config=extra_config,
            extra_args=extra_args,
            extra_env=extra_env,
        )
        self._nodes.append(node)
        NodePool.live.append(node)
        if start:
            for attempt in range(3):
                try:
                    node.start()
                    break
                except NodeStartError as exc:
                    # find_free_port's port was free when asked, but another process may take it
                    # before serve binds it: pick another one, unless the caller chose the port.
                    if api_port is not None or attempt == 2 or "address already in use" not in str(exc).lower():
                        raise
                    node.api_port = find_free_port()
        return node

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL)."""
        for node in self._nodes:
            try:
                node.stop()
            finally:
                if node in NodePool.live:
                    NodePool.live.remove(node)
