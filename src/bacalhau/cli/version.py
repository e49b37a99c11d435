"""`bacalhau version`: the client's version and the server's (columns CLIENT, SERVER, LATEST, UPDATE MESSAGE)."""

from __future__ import annotations

import platform
from typing import Any

import click

from bacalhau import __version__
from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options, pop_output
from bacalhau.cli.output import CSV, TABLE, emit, render_csv, render_object, render_table

# Go's names for architectures, as Bacalhau reports them.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386"}


def client_version() -> dict[str, str]:
    """This client's build info in Bacalhau's BuildVersionInfo shape."""
    major, minor = [*__version__.split("."), "0", "0"][:2]
    return {
        "Major": major,
        "Minor": minor,
        "GitVersion": f"v{__version__}",
        "GitCommit": "",
        "BuildDate": "",
        "GOOS": platform.system().lower(),
        "GOARCH": _GOARCH.get(platform.machine().lower(), platform.machine().lower()),
    }


@click.command("version", cls=BacalhauCommand)
@click.option("--client", "client_only", is_flag=True, help="Print only the client's version.")
@output_options()
@pass_cli
def version(cli: CliContext, /, client_only: bool, **kwargs: Any) -> None:
    """Print the client and server versions."""
    opts = pop_output(kwargs)
    data: dict[str, Any] = {"clientVersion": client_version()}
    if not client_only:
        with cli.client(authenticated=False) as client:
            data["serverVersion"] = client.version().to_wire()
    if opts.format not in (TABLE, CSV):
        emit(render_object(data, opts))
        return
    headers = ["Client"] if client_only else ["Client", "Server", "Latest", "Update Message"]
    row = [data["clientVersion"]["GitVersion"]]
    if not client_only:
        row += [data["serverVersion"].get("GitVersion", ""), "", ""]
    emit(render_csv(headers, [row], hide_header=opts.hide_header) if opts.format == CSV
         else render_table(headers, [row], opts))
