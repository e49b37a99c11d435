"""`bacalhau agent alive`: is the node answering the API healthy?"""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("alive", cls=BacalhauCommand)
@output_options(tabular=False)
@pass_cli
def alive(cli: CliContext, /, output_format: str, pretty: bool) -> None:
    """Print the agent's liveness (`Status: OK`)."""
    with cli.client(authenticated=False) as client:
        resp = client.alive()
    emit(render_object(resp.to_wire(), OutputOptions(format=output_format.lower(), pretty=pretty)))
