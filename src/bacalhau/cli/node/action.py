"""`bacalhau node approve|reject|delete|drain|uncordon ID`: change a node's membership or cordon."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError


def _run(cli: CliContext, node_id: str, action: str, message: str, deadline: str = "") -> None:
    with cli.client() as client:
        resp = client.update_node(node_id, action, message, deadline)
    if not resp.success:
        raise CliError(resp.error or f"failed to {action} node {node_id}")
    # Bacalhau prints just "Ok"; refusals (already approved ...) arrive as errors, exit code 1.
    click.echo("Ok")


def _node_action(action: str) -> click.Command:
    @click.command(action, cls=BacalhauCommand, help=f"{action.capitalize()} the node NODE_ID.")
    @click.argument("node_id")
    @click.option("-m", "--message", default="", help="Why (kept with the node's state).")
    @pass_cli
    def command(cli: CliContext, /, node_id: str, message: str) -> None:
        _run(cli, node_id, action, message)

    return command


approve = _node_action("approve")
reject = _node_action("reject")
delete = _node_action("delete")


@click.command("drain", cls=BacalhauCommand)
@click.argument("node_id")
@click.option(
    "--deadline",
    default="",
    metavar="DURATION",
    help="Move the work still running on the node off it after this long (e.g. 10m, 1h30m; 0: at once). "
    "Without it, that work finishes on the node.",
)
@click.option("-m", "--message", default="", help="Why (shown with the node's cordon).")
@pass_cli
def drain(cli: CliContext, /, node_id: str, deadline: str, message: str) -> None:
    """Cordon the node NODE_ID for maintenance: it takes no new work.

    Its daemon executions stop; its batch and service executions finish there, or are moved to other
    nodes once the --deadline passes. Draining a cordoned node again sets a new deadline. The node stays
    cordoned (across its restarts and the orchestrator's) until `bacalhau node uncordon`.
    """
    _run(cli, node_id, "drain", message, deadline)


@click.command("uncordon", cls=BacalhauCommand)
@click.argument("node_id")
@click.option("-m", "--message", default="", help="Why.")
@pass_cli
def uncordon(cli: CliContext, /, node_id: str, message: str) -> None:
    """Let the cordoned (or drained) node NODE_ID take new work again."""
    _run(cli, node_id, "uncordon", message)
