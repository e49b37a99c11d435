"""`bacalhau node approve|reject|delete ID`: change a node's membership."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError


def _node_action(action: str) -> click.Command:
    @click.command(action, cls=BacalhauCommand, help=f"{action.capitalize()} the node NODE_ID.")
    @click.argument("node_id")
    @click.option("-m", "--message", default="", help="Why (kept with the node's state).")
    @pass_cli
    def command(cli: CliContext, /, node_id: str, message: str) -> None:
        with cli.client() as client:
            resp = client.update_node(node_id, action, message)
        if not resp.success:
            raise CliError(resp.error or f"failed to {action} node {node_id}")
        # Bacalhau prints just "Ok"; refusals (already approved ...) arrive as errors, exit code 1.
        click.echo("Ok")

    return command


approve = _node_action("approve")
reject = _node_action("reject")
delete = _node_action("delete")
