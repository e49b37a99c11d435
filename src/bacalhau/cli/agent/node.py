"""`bacalhau agent node`: the NodeInfo of the node answering the API."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("node", cls=BacalhauCommand)
@output_options(tabular=False)
@pass_cli
def node(cli: CliContext, /, output_format: str, pretty: bool) -> None:
    """Print the agent's node info."""
    with cli.client() as client:
        info = client.node_info()
    emit(render_object(info.to_wire(), OutputOptions(format=output_format.lower(), pretty=pretty)))
