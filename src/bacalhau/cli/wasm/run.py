"""`bacalhau wasm run MODULE [-- ARGS...]`: run a WebAssembly module as a job (CONTRACT.md section 4.3).

MODULE is a storage URI (the `-i` syntax; default target /main.wasm) or a local file `path[:target]`,
which travels inside the job as an inline input at /<file name>. Import modules (-I) work the same way.
"""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import job_options, pop_run, run_options, string_slice_option, task_options
from bacalhau.cli.inputs import inline_file, is_uri, parse_input
from bacalhau.cli.jobspec import build_job, run_job
from bacalhau.models import constants as c

DEFAULT_URI_TARGET = "/main.wasm"


def module_input(raw: str, *, flag: str, default_target: str) -> dict[str, Any]:
    """A module argument as an input source: a storage URI, or a local file sent inline."""
    if is_uri(raw):
        return parse_input(raw, default_target=default_target)
    return inline_file(raw, flag=flag)


@click.command("run", cls=BacalhauCommand, context_settings={"ignore_unknown_options": False})
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--entry-point", default=c.WASM_DEFAULT_ENTRYPOINT, show_default=True,
              help="The function of the module to call.")
@string_slice_option("-I", "--import-modules",
                     help="Modules the entry module imports: URIs or local files path[:target] (repeatable, or a comma list).")
@job_options
@task_options
@run_options()
@pass_cli
def run(cli: CliContext, /, module: str, args: tuple[str, ...], entry_point: str, import_modules: tuple[str, ...],
        **kwargs: Any) -> None:
    """Run the WebAssembly MODULE with ARGS (put `--` before arguments that start with a dash)."""
    flags = pop_run(kwargs)
    entry = module_input(module, flag="MODULE", default_target=DEFAULT_URI_TARGET)
    imports = [
        module_input(raw, flag="'-I' / '--import-modules'", default_target=f"/imports/module_{i}.wasm")
        for i, raw in enumerate(import_modules)
    ]
    engine = {
        "Type": c.ENGINE_WASM,
        "Params": {
            "EntryModule": entry["Target"],
            "Entrypoint": entry_point,
            "Parameters": list(args),
            "ImportModules": [i["Target"] for i in imports],
        },
    }
    run_job(cli, build_job(engine, kwargs, inputs=[entry, *imports]), flags)
