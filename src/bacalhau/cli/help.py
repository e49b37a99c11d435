"""`bacalhau help [COMMAND]...`: the help of any command, as cobra's built-in `help` verb gives it.

`bacalhau help job list` prints what `bacalhau job list --help` prints. As in cobra, words past the
deepest command found are ignored (`help job nosuch` is the help of `job`), and an unknown first word
prints "Unknown help topic [`word`]" followed by the root command's usage, with exit code 0.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from bacalhau.cli.command import BacalhauCommand, BacalhauGroup


def _go_quote(word: str) -> str:
    """Go's `%#q` of one string: `word` in backquotes when it can be, else double-quoted."""
    if "`" not in word and all(ch == "\t" or ch.isprintable() for ch in word):
        return f"`{word}`"
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def resolve(root: click.Context, names: tuple[str, ...]) -> tuple[click.Context, int]:
    """The context of the deepest command named by `names`, and how many names it used."""
    ctx = root
    for used, name in enumerate(names):
        command = ctx.command
        found = command.get_command(ctx, name) if isinstance(command, click.Group) else None
        if found is None:
            return ctx, used
        ctx = click.Context(found, info_name=name, parent=ctx)
    return ctx, len(names)


def root_usage(root: click.Context) -> str:
    """Cobra's `Usage()` of the root command: its help without the description."""
    formatter = root.make_formatter()
    root.command.format_usage(root, formatter)
    root.command.format_options(root, formatter)
    root.command.format_epilog(root, formatter)
    return formatter.getvalue().rstrip("\n")


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Subcommand names after the words already typed (`bacalhau help job l<TAB>` -> list, logs)."""
    target, used = resolve(ctx.find_root(), tuple(ctx.params.get("names") or ()))
    command = target.command
    if used < len(ctx.params.get("names") or ()) or not isinstance(command, BacalhauGroup):
        return []
    return command.command_items(target, incomplete)


@click.command("help", cls=BacalhauCommand, short_help="Help about any command.")
@click.argument("names", nargs=-1, metavar="[COMMAND]...", shell_complete=complete_names)
@click.pass_context
def help_command(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Help provides help for any command in the application.

    Simply type bacalhau help [path to command] for full details.
    """
    root = ctx.find_root()
    target, used = resolve(root, names)
    if names and used == 0:
        click.echo(f"Unknown help topic [{' '.join(_go_quote(name) for name in names)}]")
        click.echo(root_usage(root))
        return
    click.echo(target.get_help())
