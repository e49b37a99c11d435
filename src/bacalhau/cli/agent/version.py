"""`bacalhau agent version`: the build version of the node answering the API."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("version", cls=BacalhauCommand)
@output_options(tabular=False)
@pass_cli
def version(cli: CliContext, /, output_format: str, pretty: bool) -> None:
    """Print the agent's version."""
    with cli.client(authenticated=False) as client:
        info = client.version()
    emit(render_object(info.to_wire(), OutputOptions(format=output_format.lower(), pretty=pretty)))
