"""What a devstack is made of: which nodes, in which order, on which ports, with which `serve` arguments.

Pure functions of the counts and the base settings (no sockets, no processes), so the port scheme can
be tested on its own. It follows Bacalhau's `pkg/devstack/devstack.go`:

- nodes are named `node-0`, `node-1`, ... in this order: orchestrator-only nodes, then hybrids, then
  compute-only nodes (`isRequester := i < requesters`, `isCompute := total-i <= computes`);
- with standard ports, node i serves its API on `API.Port + i` (1234, 1235, ...), compute-only nodes
  too, and an orchestrator node i runs NATS on `Orchestrator.Port + i` (4222, ...); with
  `--random-ports` both are free ports;
- every compute node gets a free port for its local publisher, standard ports or not;
- compute-only nodes are pointed at every orchestrator of the stack (`127.0.0.1:<nats port>`);
- every node is labelled `id=<name> name=<name> env=devstack` and keeps its data in `<repo>/<name>`.

On top of the user's `-c` settings each node gets Bacalhau's test defaults (`config.NewTestConfig`:
5 s heartbeats, a 30 s disconnect timeout, quick housekeeping) unless the user's `-c` says otherwise, and
then its own ports, name, labels and data dir, which nothing overrides (as in Bacalhau, where JoinNode
sets them after merging the user's config).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bacalhau.models.errors import ConfigurationError

DEVSTACK_LABEL_ENV = "devstack"
LOG_FILE_NAME = "serve.log"

# Bacalhau's testOverrides (pkg/config/defaults.go) that our config models; Logging.Level=debug and
# UpdateConfig.Interval are left out: node logs go to files here, and we have no update checker.
TEST_CONFIG_DEFAULTS: tuple[str, ...] = (
    "Compute.Heartbeat.Interval=5s",
    "Compute.Env.AllowList=TEST_*",
    "Orchestrator.NodeManager.DisconnectTimeout=30s",
    "Orchestrator.Scheduler.WorkerCount=3",
    "Orchestrator.Scheduler.HousekeepingInterval=1s",
    "Orchestrator.Scheduler.HousekeepingTimeout=5s",
    "Orchestrator.EvaluationBroker.VisibilityTimeout=5s",
    "Orchestrator.EvaluationBroker.MaxRetryCount=3",
    "DisableAnalytics=true",
)


class NodeRole(enum.StrEnum):
    """What a devstack node runs; the values are what the node table shows."""

    ORCHESTRATOR = "orchestrator"
    HYBRID = "hybrid"
    COMPUTE = "compute"

    @property
    def is_orchestrator(self) -> bool:
        """Runs an orchestrator (and so an embedded NATS server)."""
        return self is not NodeRole.COMPUTE

    @property
    def is_compute(self) -> bool:
        """Runs a compute node (and so a local publisher)."""
        return self is not NodeRole.ORCHESTRATOR


def _refused(message: str) -> ConfigurationError:
    return ConfigurationError(message, component="Devstack", hint="see: bacalhau devstack --help")


@dataclass(frozen=True)
class StackCounts:
    """How many nodes of each kind (`--orchestrators`, `--hybrids`, `--computes`)."""

    orchestrators: int = 1
    hybrids: int = 0
    computes: int = 3

    @property
    def total(self) -> int:
        """Every node of the stack."""
        return self.orchestrators + self.hybrids + self.computes

    def validate(self) -> None:
        """Refuse what Bacalhau refuses, with its messages (DevStackConfig.Validate and JoinNode)."""
        if min(self.orchestrators, self.hybrids, self.computes) < 0:
            raise _refused("node counts cannot be negative")
        if self.total == 0:
            raise _refused("you cannot create a devstack with zero nodes")
        if self.computes and not (self.orchestrators + self.hybrids):
            raise _refused("cannot add compute node: no orchestrators found in the existing devstack")

    def role_of(self, index: int) -> NodeRole:
        """The role of node `index`: orchestrator-only nodes first, then hybrids, then compute-only."""
        is_orchestrator = index < self.orchestrators + self.hybrids
        is_compute = self.total - index <= self.hybrids + self.computes
        if is_orchestrator and is_compute:
            return NodeRole.HYBRID
        return NodeRole.ORCHESTRATOR if is_orchestrator else NodeRole.COMPUTE


@dataclass(frozen=True)
class NodePlan:
    """One node of the stack: everything needed to start it and to describe it."""

    index: int
    name: str
    role: NodeRole
    data_dir: Path
    api_port: int  # every node serves its API (a compute-only node: the agent routes)
    nats_port: int | None  # orchestrators only
    publisher_port: int | None  # compute nodes only
    orchestrators: tuple[str, ...] = ()  # NATS URLs a compute-only node joins

    @property
    def log_path(self) -> Path:
        """Where the node's stdout and stderr go."""
        return self.data_dir / LOG_FILE_NAME

    @property
    def labels(self) -> dict[str, str]:
        """The labels Bacalhau's devstack gives every node."""
        return {"id": self.name, "name": self.name, "env": DEVSTACK_LABEL_ENV}

    def serve_args(self, user_config: Sequence[str] = ()) -> list[str]:
        """Arguments after `bacalhau` that start this node: global flags, `serve`, role flags, `-c` settings.

        Later `-c` settings win, so the order is: Bacalhau's test defaults, the user's `-c`, this node's own.
        """
        args = ["--data-dir", str(self.data_dir), "serve", "--name", self.name]
        if self.role.is_orchestrator:
            args.append("--orchestrator")
        if self.role.is_compute:
            args.append("--compute")
        settings = [*TEST_CONFIG_DEFAULTS, *user_config, *self.own_settings()]
        for setting in settings:
            args += ["-c", setting]
        return args

    def own_settings(self) -> list[str]:
        """`Key=value` settings that make this node itself (data dir, ports, labels, orchestrators)."""
        # DataDir again here: a config file among the user's settings may set one, and it must not win.
        out = [f"DataDir={self.data_dir}", f"API.Port={self.api_port}"]
        if self.nats_port is not None:
            out.append(f"Orchestrator.Port={self.nats_port}")
        if self.publisher_port is not None:
            out.append(f"Publishers.Types.Local.Port={self.publisher_port}")
        if self.orchestrators:
            out.append(f"Compute.Orchestrators={','.join(self.orchestrators)}")
        out += [f"Labels.{key}={value}" for key, value in self.labels.items()]
        return out


def node_name(index: int) -> str:
    """Bacalhau's devstack node IDs: `node-0`, `node-1`, ..."""
    return f"node-{index}"


def plan_stack(
    counts: StackCounts,
    *,
    repo: Path,
    free_port: Callable[[], int],
    random_ports: bool,
    api_base_port: int = 1234,
    nats_base_port: int = 4222,
) -> list[NodePlan]:
    """Every node of the stack, in start order. `free_port()` hands out a fresh free port on each call."""
    counts.validate()
    nodes: list[NodePlan] = []
    orchestrator_urls: list[str] = []
    for index in range(counts.total):
        role = counts.role_of(index)
        nats_port = None
        if role.is_orchestrator:
            nats_port = free_port() if random_ports else nats_base_port + index
            orchestrator_urls.append(f"nats://127.0.0.1:{nats_port}")
        api_port = free_port() if random_ports else api_base_port + index
        nodes.append(
            NodePlan(
                index=index,
                name=node_name(index),
                role=role,
                data_dir=repo / node_name(index),
                api_port=api_port,
                nats_port=nats_port,
                publisher_port=free_port() if role.is_compute else None,
                # Hybrids reach their own orchestrator (their own NATS server), as in Bacalhau (which leaves them alone).
                orchestrators=tuple(orchestrator_urls) if role is NodeRole.COMPUTE else (),
            )
        )
    return nodes


def role_counts(nodes: Sequence[NodePlan]) -> tuple[int, int, int]:
    """(orchestrator-only, compute-only, hybrid) node counts, the order of Bacalhau's summary."""
    return (
        sum(n.role is NodeRole.ORCHESTRATOR for n in nodes),
        sum(n.role is NodeRole.COMPUTE for n in nodes),
        sum(n.role is NodeRole.HYBRID for n in nodes),
    )


def stack_info(nodes: Sequence[NodePlan], *, api_host: str) -> str:
    """Bacalhau's `GetStackInfo` text: the summary and the exports that aim the CLI at the first node."""
    requesters, computes, hybrids = role_counts(nodes)
    first = nodes[0]
    exports = f"export BACALHAU_API_HOST={api_host}\nexport BACALHAU_API_PORT={first.api_port}\n"
    return (
        "\nDevstack is ready!\n"
        f"No. of requester only nodes: {requesters}\n"
        f"No. of compute only nodes: {computes}\n"
        f"No. of hybrid nodes: {hybrids}\n"
        "To use the devstack, run the following commands in your shell:\n"
        "\n"
        f"{exports}"
        "\n"
        "\n"
    )
