"""`bacalhau devstack`: a whole cluster on this machine, one real `bacalhau serve` process per node.

Flags, node names, ports, labels, run files and printed text follow Bacalhau's
`cmd/cli/devstack/devstack.go` and `pkg/devstack` (see plan.py for the port scheme). As there, the
output goes to stderr (cobra's `cmd.Println`), the stack lives in `--stack-repo` or in a temp dir that
is removed at exit, and the command blocks until Ctrl+C or SIGTERM.

    check run files ─> plan nodes and ports ─> spawn nodes ─> wait ready (a line per node)
      ─> print nodes + exports, write run files ─> block ─> signal ─> stop nodes ─> remove run files/temp repo

Bad compute actors and the profiling files are Bacalhau test hooks that we do not implement: asking
for them is refused rather than silently ignored.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.devstack.plan import TEST_CONFIG_DEFAULTS, NodePlan, StackCounts, plan_stack, stack_info
from bacalhau.cli.devstack.ports import PortReservation, first_unavailable
from bacalhau.cli.devstack.run_files import RunFiles
from bacalhau.cli.devstack.supervisor import POLL_INTERVAL_S, Devstack, devstack_error, own_cli_command
from bacalhau.cli.output import OutputOptions, render_table
from bacalhau.models.errors import ErrorCode

F = TypeVar("F", bound=Callable[..., Any])

SHORT_HELP = "Start a cluster of bacalhau nodes for testing and development"
LONG_HELP = "Start a cluster of nodes and run a job on them."
# Bacalhau's examples, word for word; click rewraps paragraphs unless each starts with \b.
EXAMPLES = """\b
Examples:
  # Create a devstack cluster with a single requester node and 3 compute nodes (Default values)
  bacalhau devstack

\b
  # Create a devstack cluster with a two requester nodes and 10 compute nodes
  bacalhau devstack  --requester-nodes 2 --compute-nodes 10

\b
  # Create a devstack cluster with a single hybrid (requester and compute) nodes
  bacalhau devstack  --requester-nodes 0 --compute-nodes 0 --hybrid-nodes 1

\b
  # Run a devstack and create (or use) the config repo in a specific folder
  bacalhau devstack  --stack-repo ./my-devstack-configuration
"""


def _count_option(name: str, help_text: str, *, hidden: bool = False) -> Callable[[F], F]:
    # Every count defaults to None so that an old spelling (--compute-nodes) given alone still counts.
    return click.option(name, type=click.IntRange(min=0), default=None, hidden=hidden, help=help_text)


def _pick(new: int | None, old: int | None, default: int) -> int:
    """The new flag's value, else the old spelling's, else Bacalhau's default."""
    if new is not None:
        return new
    return old if old is not None else default


def _is_file_arg(arg: str) -> bool:
    """A `-c` argument naming a config file (the loader's own test: no `=`, a YAML/JSON name or a path)."""
    return "=" not in arg and (arg.endswith((".yaml", ".yml", ".json")) or os.sep in arg)


def user_config_args(config_args: tuple[str, ...], data_path: str) -> list[str]:
    """The user's `-c` settings for every node, plus their data dir's config.yaml when no file is named.

    The nodes have data dirs of their own, so the config file Bacalhau would read from the user's data
    dir is passed to them explicitly.
    """
    args = list(config_args)
    default_file = os.path.join(data_path, "config.yaml")
    if not any(_is_file_arg(arg) for arg in args) and os.path.exists(default_file):
        args.insert(0, default_file)
    return args


def node_table(nodes: list[NodePlan]) -> str:
    """Name, role, ports, data dir and log file of every node."""
    rows = [
        [
            n.name,
            str(n.role),
            str(n.api_port),
            "-" if n.nats_port is None else str(n.nats_port),
            str(n.data_dir),
            str(n.log_path),
        ]
        for n in nodes
    ]
    headers = ["Name", "Role", "API Port", "NATS Port", "Data Dir", "Log File"]
    return render_table(headers, rows, OutputOptions(no_style=True))


def _say(text: str) -> None:
    click.echo(text, err=True)


def _fixed_ports(nodes: list[NodePlan]) -> dict[int, str]:
    ports: dict[int, str] = {}
    for n in nodes:
        ports[n.api_port] = f"the API of {n.name}"
        if n.nats_port is not None:
            ports[n.nats_port] = f"the NATS server of {n.name}"
    return ports


@click.command("devstack", cls=BacalhauCommand, short_help=SHORT_HELP, help=LONG_HELP, epilog=EXAMPLES)
@_count_option("--computes", "Number of compute-only nodes to run  [default: 3]")
@_count_option("--orchestrators", "Number of orchestrator-only nodes to run  [default: 1]")
@_count_option("--hybrids", "Number of hybrid nodes (both compute and orchestrator) to run  [default: 0]")
@_count_option("--bad-computes", "Number of compute nodes that should be bad actors (not supported)")
@_count_option("--compute-nodes", "Number of compute-only nodes to run", hidden=True)
@_count_option("--requester-nodes", "Number of orchestrator-only nodes to run", hidden=True)
@_count_option("--hybrid-nodes", "Number of hybrid nodes (both compute and orchestrator) to run", hidden=True)
@_count_option("--bad-compute-actors", "Number of compute nodes that should be bad actors", hidden=True)
@click.option("--cpu-profiling-file", default="", help="File to save CPU profiling to (not supported)")
@click.option("--memory-profiling-file", default="", help="File to save memory profiling to (not supported)")
@click.option("--stack-repo", default="", help="Folder to act as the devstack configuration repo")
@click.option("--random-ports", is_flag=True, default=False,
              help="Use random ports for the nodes. Otherwise will start with standard ports (e.g. 1234). "
                   "Useful to avoid conflicts with active orchestrators")
@pass_cli
def devstack(
    cli: CliContext, /, computes: int | None, orchestrators: int | None, hybrids: int | None,
    bad_computes: int | None, compute_nodes: int | None, requester_nodes: int | None, hybrid_nodes: int | None,
    bad_compute_actors: int | None, cpu_profiling_file: str, memory_profiling_file: str, stack_repo: str,
    random_ports: bool,
) -> None:
    from bacalhau.config.loader import load_config

    counts = StackCounts(
        orchestrators=_pick(orchestrators, requester_nodes, 1),
        hybrids=_pick(hybrids, hybrid_nodes, 0),
        computes=_pick(computes, compute_nodes, 3),
    )
    counts.validate()
    bad = _pick(bad_computes, bad_compute_actors, 0)
    if bad > counts.computes + counts.hybrids:
        raise devstack_error(
            f"you cannot have more bad compute actors ({bad}) than there are nodes ({counts.computes + counts.hybrids})",
            code=ErrorCode.BadRequest,
        )
    if bad:
        raise devstack_error("bad compute actors (--bad-computes) are not supported", code=ErrorCode.NotImplemented)
    if cpu_profiling_file or memory_profiling_file:
        raise devstack_error("--cpu-profiling-file and --memory-profiling-file are not supported",
                             code=ErrorCode.NotImplemented)
    run_files = RunFiles()
    run_files.check_absent()
    user_config = user_config_args(cli.config_args, cli.data_path())
    # The settings every node will start with: a bad -c is refused here, before any node starts.
    config = load_config([*TEST_CONFIG_DEFAULTS, *user_config], data_dir=cli.data_dir)

    repo = Path(stack_repo).expanduser().resolve() if stack_repo else Path(tempfile.mkdtemp(prefix="bacalhau-devstack"))
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack: Devstack | None = None
    try:
        with PortReservation() as ports:
            nodes = plan_stack(
                counts, repo=repo, free_port=ports.take, random_ports=random_ports,
                api_base_port=config.api.port, nats_base_port=config.orchestrator.port,
            )
        taken = None if random_ports else first_unavailable(_fixed_ports(nodes))
        if taken is not None:
            port, purpose = taken
            raise devstack_error(
                f"port {port} (for {purpose}) is not available", code=ErrorCode.ResourceInUse,
                hint="stop what listens there, or run: bacalhau devstack --random-ports",
            )
        repo.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "BACALHAU_DIR"}
        env["PYTHONUNBUFFERED"] = "1"
        stack = Devstack(
            nodes, command=own_cli_command(), user_config=user_config, env=env, stop=stop, progress=_say,
            global_args=["--log-level", cli.log_level] if cli.log_level else [],
        )
        _say(f"Starting devstack: {counts.orchestrators} orchestrator(s), {counts.hybrids} hybrid(s),"
             f" {counts.computes} compute(s) in {repo}")
        stack.start()
        stack.wait_ready()
        _say("\n" + node_table(nodes).rstrip("\n"))
        _say(stack_info(nodes, api_host=config.api.host))
        # node-0 is an orchestrator or a hybrid (StackCounts.validate): the API the CLI is pointed at.
        run_files.write(api_port=nodes[0].api_port, pid=os.getpid())
        while not stop.wait(POLL_INTERVAL_S):
            for ended in stack.newly_exited():
                _say(f"Warning: {ended.plan.name} ({ended.plan.role}) exited with code {ended.exit_code};"
                     f" its log is {ended.plan.log_path}")
        _say("\nShutting down devstack")
    finally:
        try:
            if stack is not None:
                stack.stop()
            run_files.remove()
            if not stack_repo:
                shutil.rmtree(repo, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
