"""The devstack's node processes: one real `bacalhau serve` per node, started, watched until ready, stopped.

Bacalhau's devstack runs every node inside its own process; here each node is a child process running
our own CLI, so that a devstack node is exactly what `bacalhau serve` runs (and a node's crash is not
the devstack's). This lives in `cli/` because it only starts our CLI and talks to the nodes through the
API client: it never imports the node itself, so the devstack process stays small and starts fast.

    start() ──> starting ──(every node's API alive, every compute CONNECTED on an orchestrator)──> ready
                  │ a node exits, the deadline passes, or a stop is requested      wait_ready() returns
                  └──> DevstackError naming the node, with its log tail
    stop(): SIGTERM to compute-only nodes, wait; then orchestrators and hybrids, wait;
            SIGKILL to the whole process group of any node still up after the timeout.

Each node runs in its own session, so that Ctrl+C in the terminal reaches the devstack only, which
then stops the nodes in order (computes first, so that they leave while their orchestrator still
listens). On Linux each node also gets SIGTERM if the devstack dies without stopping it (kill -9).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from bacalhau.cli.devstack.plan import NodePlan, NodeRole
from bacalhau.client import Client
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.node import ConnectionStatus

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 2.0
LOG_TAIL_LINES = 40
COMPONENT = "Devstack"
_PR_SET_PDEATHSIG = 1


def own_cli_command() -> list[str]:
    """How a child runs our own CLI: this interpreter with `-m bacalhau` (same venv, no PATH lookup)."""
    return [sys.executable, "-m", "bacalhau"]


def devstack_error(message: str, *, hint: str = "", code: ErrorCode = ErrorCode.InternalError) -> BacalhauError:
    """An error of the devstack, rendered by the CLI as `Error: ...` / `Hint: ...`."""
    return BacalhauError(message, code=code, component=COMPONENT, hint=hint)


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when the devstack dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the devstack died before prctl took effect
            os._exit(1)

    return hook


class NodeProcess:
    """One node's `bacalhau serve` child process, its output appended to the node's log file."""

    def __init__(self, plan: NodePlan, *, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.plan = plan
        self.argv = list(argv)
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Create the node's data dir and spawn its process."""
        self.plan.data_dir.mkdir(parents=True, exist_ok=True)
        with self.plan.log_path.open("ab") as log:
            log.write(f"===== bacalhau devstack: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # The devstack's own working dir: relative paths in the user's -c settings mean the same
                # to every node as they would to Bacalhau's in-process nodes.
                start_new_session=True,
                # A pre-exec hook is unsafe only with threads around; the devstack starts none.
                preexec_fn=_die_with_parent(),
            )

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return None if self.proc is None else self.proc.pid

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has ended; None while it runs (or before it started)."""
        return None if self.proc is None else self.proc.poll()

    @property
    def running(self) -> bool:
        """Started and not ended."""
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """Ask the node to shut down (SIGTERM to `serve`, which stops what it started itself)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def kill(self) -> None:
        """SIGKILL the node's whole process group (`serve` and anything it spawned, e.g. nats-server)."""
        # Only while `serve` is unreaped: its pid (the group id) cannot have been reused by then.
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the process to end; True when it has."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=max(timeout_s, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the node's log, framed with the log's path."""
        try:
            text = self.plan.log_path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        tail = text.splitlines()[-lines:]
        return f"----- {self.plan.name}: last {len(tail)} lines of {self.plan.log_path} -----\n" + "\n".join(tail)


class Devstack:
    """The stack's processes: start them, wait until the cluster is formed, notice deaths, stop them."""

    def __init__(
        self,
        nodes: Sequence[NodePlan],
        *,
        command: Sequence[str],
        global_args: Sequence[str] = (),
        user_config: Sequence[str] = (),
        env: Mapping[str, str],
        stop: threading.Event,
        progress: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes = list(nodes)
        self.processes = [
            NodeProcess(plan, argv=[*command, *global_args, *plan.serve_args(user_config)], env=env) for plan in nodes
        ]
        self._stop = stop
        self._progress = progress
        self._clock = clock
        self._reported_exits: set[str] = set()

    # -- start ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn every node at once (compute nodes keep trying until their orchestrator listens)."""
        for process in self.processes:
            process.start()

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Return once every API answers and every compute node is CONNECTED; print a line per ready node.

        Raises DevstackError when a node exits, the deadline passes or a stop is requested first.
        """
        deadline = self._clock() + timeout_s
        pending = {process.plan.name: process for process in self.processes}
        clients = {
            plan.name: Client(base_url=f"http://127.0.0.1:{plan.api_port}", timeout_s=PROBE_TIMEOUT_S)
            for plan in self.nodes
        }
        try:
            while pending:
                if self._stop.is_set():
                    raise devstack_error("interrupted before the devstack was ready")
                for process in self.processes:
                    if process.exit_code is not None:
                        self._progress(process.log_tail())
                        raise devstack_error(
                            f"node {process.plan.name} ({process.plan.role}) exited with code {process.exit_code}"
                            " before the devstack was ready",
                            hint=f"its log is {process.plan.log_path}",
                        )
                alive = {name for name, client in clients.items() if _answers(client)}
                connected = self._connected_computes(clients, alive)
                for name, process in list(pending.items()):
                    if _is_ready(process.plan, alive, connected):
                        del pending[name]
                        self._progress(_ready_line(process.plan))
                if not pending:
                    return
                if self._clock() >= deadline:
                    for process in pending.values():
                        self._progress(process.log_tail())
                    waiting = ", ".join(f"{p.plan.name} ({_waiting_for(p.plan, alive)})" for p in pending.values())
                    raise devstack_error(
                        f"the devstack was not ready within {timeout_s:.0f}s: still waiting for {waiting}",
                        code=ErrorCode.TimeOut,
                        hint="the node logs above say why",
                    )
                self._stop.wait(POLL_INTERVAL_S)
        finally:
            for client in clients.values():
                client.close()

    def _connected_computes(self, clients: Mapping[str, Client], alive: set[str]) -> set[str]:
        """Names of the nodes some orchestrator of the stack lists as CONNECTED."""
        connected: set[str] = set()
        for plan in self.nodes:
            if not plan.role.is_orchestrator or plan.name not in alive:
                continue
            try:
                listed = clients[plan.name].list_nodes().nodes
            except BacalhauError:
                continue
            connected |= {n.info.node_id for n in listed if n.connection_state.status is ConnectionStatus.CONNECTED}
        return connected

    # -- run --------------------------------------------------------------------------------------------------
    def newly_exited(self) -> list[NodeProcess]:
        """Nodes that have ended since the last call (each reported once)."""
        ended = [p for p in self.processes if p.exit_code is not None and p.plan.name not in self._reported_exits]
        self._reported_exits |= {p.plan.name for p in ended}
        return ended

    # -- stop -------------------------------------------------------------------------------------------------
    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every node that runs: compute-only nodes first, then the rest; SIGKILL after `timeout_s` each."""
        computes = [p for p in self.processes if p.plan.role is NodeRole.COMPUTE]
        others = [p for p in self.processes if p.plan.role is not NodeRole.COMPUTE]
        for group in (computes, others):
            for process in group:
                process.terminate()
            deadline = self._clock() + timeout_s
            for process in group:
                if not process.wait(deadline - self._clock()):
                    self._progress(f"{process.plan.name} did not stop within {timeout_s:.0f}s: killing it")
                    process.kill()
                    process.wait(timeout_s)


def _answers(client: Client) -> bool:
    try:
        client.alive()
    except BacalhauError:
        return False
    return True


def _is_ready(plan: NodePlan, alive: set[str], connected: set[str]) -> bool:
    if plan.name not in alive:
        return False
    return not plan.role.is_compute or plan.name in connected


def _waiting_for(plan: NodePlan, alive: set[str]) -> str:
    if plan.name not in alive:
        return f"its API on port {plan.api_port}"
    return "it to be CONNECTED to an orchestrator"


def _ready_line(plan: NodePlan) -> str:
    parts = [f"API on port {plan.api_port}"]
    if plan.nats_port is not None:
        parts.append(f"NATS on port {plan.nats_port}")
    if plan.role.is_compute:
        parts.append("CONNECTED")
    return f"{plan.name} ({plan.role}) is up: {', '.join(parts)}"
