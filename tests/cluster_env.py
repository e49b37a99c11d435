"""A real cluster for tests: one orchestrator-only `bacalhau serve` and N compute-only ones, each a
process with its own data dir, log file and ports, joined over the orchestrator's embedded nats-server.

    Cluster.start() ─> serve --orchestrator   API on 127.0.0.1:<api>, NATS on <nats host>:<nats port>
                         ready: GET /api/v1/agent/alive
    add_compute(name, labels, netns=None) ─> [ip netns exec NS] serve --compute --name NAME
                         -c Compute.Orchestrators=nats://<nats host>:<nats port>, its own API on
                         127.0.0.1:<api> (agent routes only; inside NS when it has one)
                         ready: its "bacalhau node NAME started" line; joined: the orchestrator's
                         GET /api/v1/orchestrator/nodes lists it CONNECTED (wait_node)
    per node: stop() SIGTERM | kill9() | restart() on the same data dir and ports
              freeze() SIGSTOP | thaw() SIGCONT
    close(): SIGCONT + stop every node (finally)

Ports are picked up front (free ports, not 0) so that a restarted orchestrator listens where its
compute nodes look for it, and so that every node, compute-only ones too, serves its API on a port of
its own: nodes of parallel tests (pytest-xdist) never meet on Bacalhau's default 1234. Short liveness
settings (heartbeat every 0.5 s, disconnect after 3 s) keep node-loss scenarios in seconds; every wait
polls against a deadline. While a cluster is alive its nodes sit in `NodePool.live`, so
tests/conftest.py attaches every node's log to a failing test's report.

Network namespaces (`NetnsLink`) cut a compute node off for real: the orchestrator listens on the
root-namespace end of a veth pair (10.200.<n>.1/30) and the compute node runs inside a namespace that
reaches nothing but the other end; taking the link down is a network partition. Only those private
addresses on links made here are used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from serve_node import READY_TIMEOUT_S, BacalhauNode, NodePool, NodeStartError, find_free_port, missing_prerequisite

HEARTBEAT_INTERVAL = "0.5s"
DISCONNECT_TIMEOUT = "3s"
JOIN_TIMEOUT_S = 30.0
POLL_S = 0.1


class ClusterNode(BacalhauNode):
    """One `bacalhau serve` of a cluster: orchestrator-only (`role="orchestrator"`) or compute-only."""

    def __init__(
        self,
        *,
        role: str,
        name: str,
        nats_host: str,
        nats_port: int,
        netns: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        assert role in ("orchestrator", "compute"), role
        self.role = role
        self.name = name
        self.nats_host = nats_host
        self.nats_port = nats_port
        self.netns = netns
        self._log_offset = 0

    @property
    def nats_url(self) -> str:
        """Where the orchestrator's NATS server listens (and where compute nodes join)."""
        return f"nats://{self.nats_host}:{self.nats_port}"

    @property
    def command(self) -> list[str]:
        """`serve --orchestrator` or `serve --compute` (inside `ip netns exec NS` if the node has a namespace)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        if self.role == "orchestrator":
            cmd = [str(self.binary), "serve", "--orchestrator", "--name", self.name]
            settings = [
                "API.Host=127.0.0.1",
                f"API.Port={self.api_port}",
                f"Orchestrator.Host={self.nats_host}",
                f"Orchestrator.Port={self.nats_port}",
                f"Orchestrator.NodeManager.DisconnectTimeout={DISCONNECT_TIMEOUT}",
                "Orchestrator.Scheduler.QueueBackoff=1s",
            ]
        else:
            cmd = [str(self.binary), "serve", "--compute", "--name", self.name]
            settings = [
                "API.Host=127.0.0.1",
                f"API.Port={self.api_port}",
                f"Compute.Orchestrators={self.nats_url}",
                f"Compute.Heartbeat.Interval={HEARTBEAT_INTERVAL}",
                "Publishers.Types.Local.Port=0",
                # A SIGTERM drains for this long before handing work back (default 10s): the tests stop
                # nodes that run long sleeps, and their stop waits at most STOP_TIMEOUT_S.
                "Compute.ShutdownGracePeriod=2s",
            ]
        for setting in [*settings, *self.extra_config]:
            cmd += ["-c", setting]
        return prefix + cmd + self.extra_args

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> ClusterNode:
        """Spawn the process; ready once the orchestrator's API answers or the compute node says it started."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Orchestrator: /api/v1/agent/alive. Compute: the `bacalhau node NAME started` line (its API
        may sit inside a network namespace the test cannot reach)."""
        if self.role == "orchestrator":
            super().wait_ready(timeout_s)
            return
        marker = f"bacalhau node {self.name} started"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise NodeStartError(f"compute node {self.name} exited with code {code} before it started\n{self.log_excerpt()}")
            if marker in self.log_text()[self._log_offset :]:
                return
            time.sleep(POLL_S)  # poll interval, bounded by the deadline
        self.stop()
        raise NodeStartError(f"compute node {self.name} did not start within {timeout_s:.0f}s\n{self.log_excerpt()}")

    def freeze(self) -> None:
        """SIGSTOP the node's process group: alive but silent, as a hung VM would be."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze()`."""
        self._signal(signal.SIGCONT)

    def log_excerpt(self, lines: int = 150) -> str:
        """The last `lines` lines of the node's log, titled with its name and role."""
        return super().log_excerpt(lines).replace("bacalhau serve log", f"{self.role} {self.name} log", 1)


class Cluster:
    """One orchestrator-only node and named compute-only nodes, under `root`; `close()` stops them all."""

    def __init__(
        self,
        binary: Path,
        root: Path,
        *,
        nats_host: str = "127.0.0.1",
        orchestrator_config: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.root = root
        self.nats_host = nats_host
        self.nats_port = find_free_port()
        self.orchestrator = self._node("orchestrator", "orchestrator", extra_config=orchestrator_config)
        self.computes: dict[str, ClusterNode] = {}

    def _node(self, role: str, name: str, *, extra_config: Sequence[str] = (),
              netns: str | None = None, env: Mapping[str, str] | None = None) -> ClusterNode:
        base = self.root / name
        base.mkdir(parents=True, exist_ok=True)
        node = ClusterNode(
            role=role,
            name=name,
            nats_host=self.nats_host,
            nats_port=self.nats_port,
            netns=netns,
            binary=self.binary,
            data_dir=base / "bacalhau",
            log_path=base / "serve.log",
            # Every node's own API (a compute-only node's: agent routes only); cluster.cli() uses the
            # orchestrator's, node.cli() the node's own.
            api_port=find_free_port(),
            extra_config=extra_config,
            extra_env=env,
        )
        NodePool.live.append(node)
        return node

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Cluster:
        """Start the orchestrator and wait for its API."""
        self.orchestrator.start()
        return self

    def add_compute(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        extra_config: Sequence[str] = (),
        netns: str | None = None,
        env: Mapping[str, str] | None = None,
        start: bool = True,
        wait_connected: bool = True,
    ) -> ClusterNode:
        """A compute-only node named `name`; started, and CONNECTED at the orchestrator, unless told not to.

        `env` is added to the node's process environment (what `env:VAR` task variables may read, given
        a matching Compute.Env.AllowList in `extra_config`); `netns` runs it inside that namespace.
        """
        config = [f"Labels.{k}={v}" for k, v in (labels or {}).items()] + list(extra_config)
        node = self._node("compute", name, extra_config=config, netns=netns, env=env)
        self.computes[name] = node
        if start:
            node.start()
            if wait_connected:
                self.wait_node(name, "CONNECTED")
        return node

    def close(self) -> None:
        """Stop every node (a frozen one is thawed first so that it can exit)."""
        for node in [*self.computes.values(), self.orchestrator]:
            try:
                if node.running:
                    node.thaw()
                node.stop()
            finally:
                if node in NodePool.live:
                    NodePool.live.remove(node)

    # -- the orchestrator's view ----------------------------------------------------------------------
    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """The real `bacalhau` CLI against the orchestrator's API (BACALHAU_API_PORT); never raises on exit codes."""
        return self.orchestrator.cli(*args, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """The CLI, asserted to exit 0; the failure message carries its output and the logs."""
        result = self.cli(*args, **kwargs)
        assert result.returncode == 0, self.orchestrator.describe_result(result) + "\n" + self.compute_logs()
        return result

    def nodes(self) -> dict[str, dict[str, Any]]:
        """{node ID: NodeState} as GET /api/v1/orchestrator/nodes returns them."""
        resp = httpx.get(f"{self.orchestrator.url}/api/v1/orchestrator/nodes", timeout=10.0)
        assert resp.status_code == 200, f"GET nodes -> {resp.status_code}: {resp.text}"
        return {n["Info"]["NodeID"]: n for n in resp.json().get("Nodes") or []}

    def node_status(self, name: str) -> tuple[str, str]:
        """(connection status, membership) of `name`, ("", "") if the orchestrator does not know it."""
        state = self.nodes().get(name)
        if state is None:
            return "", ""
        return state["ConnectionState"]["Status"], state["Membership"]

    def wait_node(self, name: str, status: str, *, membership: str | None = None,
                  timeout_s: float = JOIN_TIMEOUT_S) -> dict[str, Any]:
        """Poll the node list until `name` has `status` (and `membership`); return its NodeState."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.nodes().get(name)
                if (
                    last is not None
                    and last["ConnectionState"]["Status"] == status
                    and (membership is None or last["Membership"] == membership)
                ):
                    return last
            time.sleep(POLL_S)  # poll interval, bounded by the deadline
        seen = "unknown to the orchestrator" if last is None else f"{last['ConnectionState']} {last['Membership']}"
        raise AssertionError(
            f"node {name} not {status}{'/' + membership if membership else ''} within {timeout_s:.0f}s: {seen}\n"
            f"{self.orchestrator.log_excerpt(60)}\n{self.compute_logs(names=[name])}"
        )

    def compute_logs(self, names: Sequence[str] | None = None, lines: int = 60) -> str:
        """The tails of the compute nodes' logs, for assertion messages."""
        chosen = names if names is not None else list(self.computes)
        return "\n".join(self.computes[n].log_excerpt(lines) for n in chosen if n in self.computes)

    def describe(self) -> str:
        """Every node's log tail (orchestrator first)."""
        return self.orchestrator.log_excerpt(80) + "\n" + self.compute_logs()


# -- network namespaces ---------------------------------------------------------------------------------
def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result


class NetnsLink:
    """A network namespace joined to the root namespace by a veth pair on 10.<octet: 200>.<subnet>.0/30.

    host end `<prefix>-h` 10.200.<subnet>.1 (root namespace), node end `<prefix>-n` 10.200.<subnet>.2
    (inside the namespace, with its own loopback). `down()`/`up()` cut and heal the link.
    """

    def __init__(self, prefix: str, subnet: int, *, octet: int = 200) -> None:
        assert len(prefix) <= 12 and 0 < subnet < 255 and 0 < octet < 255, (prefix, subnet, octet)
        self.netns = f"{prefix}-ns"
        self.host_if = f"{prefix}-h"
        self.node_if = f"{prefix}-n"
        self.host_ip = f"10.{octet}.{subnet}.1"
        self.node_ip = f"10.{octet}.{subnet}.2"

    @staticmethod
    def require() -> None:
        """Skip (fail under CI=true) unless this process may create namespaces and veth pairs."""
        if shutil.which("ip") is None:
            missing_prerequisite("the `ip` command (iproute2) is not installed: cannot build a network namespace")
        if os.geteuid() != 0:
            missing_prerequisite("network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
        probe = f"bclprobe-{os.getpid()}"
        added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30, check=False)
        if added.returncode != 0:
            missing_prerequisite(f"`ip netns add` is not permitted here: {added.stderr.strip()}")
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30, check=False)

    def create(self) -> NetnsLink:
        """Make the namespace and the veth pair, address both ends, bring them (and the namespace's lo) up."""
        self.destroy()  # leftovers of an interrupted run
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.node_if)
        _ip("link", "set", self.node_if, "netns", self.netns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("addr", "add", f"{self.node_ip}/30", "dev", self.node_if, netns=self.netns)
        _ip("link", "set", "lo", "up", netns=self.netns)
        _ip("link", "set", self.node_if, "up", netns=self.netns)
        _ip("link", "set", self.host_if, "up")
        return self

    def down(self) -> None:
        """Cut the link (both ends down): packets between the namespace and the orchestrator are lost."""
        _ip("link", "set", self.host_if, "down")
        _ip("link", "set", self.node_if, "down", netns=self.netns)

    def up(self) -> None:
        """Heal the link."""
        _ip("link", "set", self.node_if, "up", netns=self.netns)
        _ip("link", "set", self.host_if, "up")

    def destroy(self) -> None:
        """Remove the veth pair and the namespace (idempotent; safe when they do not exist)."""
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.netns, check=False)
