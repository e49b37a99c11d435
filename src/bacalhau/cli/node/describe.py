"""`bacalhau node describe ID`: one node's full state as YAML (or JSON)."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("describe", cls=BacalhauCommand)
@click.argument("node_id")
@output_options(tabular=False)
@pass_cli
def describe(cli: CliContext, /, node_id: str, output_format: str, pretty: bool) -> None:
    """Describe the node NODE_ID (an ID or a unique prefix)."""
    with cli.client() as client:
        node = client.get_node(node_id).node
    emit(render_object(node.to_wire(), OutputOptions(format=output_format.lower(), pretty=pretty)))
