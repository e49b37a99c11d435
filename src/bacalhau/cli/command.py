"""Click command and group classes with Bacalhau's habits: lazy verbs, Go-style `--flag=false`, errors.

Verbs are imported only when invoked (`lazy` maps a name to "module:attribute" and its one-line help),
so `bacalhau --help` and `bacalhau job list` do not pay for modules they never use. Bacalhau's Go CLI
accepts `--wait=false` for boolean flags; click does not, so such tokens are rewritten before parsing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

_TRUE = ("true", "t", "1", "yes", "y", "on")
_FALSE = ("false", "f", "0", "no", "n", "off")
# Set by the scripts of `bacalhau completion SHELL --no-descriptions` when they ask for completions.
NO_DESCRIPTIONS_ENV = "_BACALHAU_COMPLETE_NO_DESC"


def _described(items: list[CompletionItem]) -> list[CompletionItem]:
    """The completions, without their descriptions when the shell script asked for none."""
    if os.environ.get(NO_DESCRIPTIONS_ENV) != "1":
        return items
    from click.shell_completion import CompletionItem

    return [CompletionItem(item.value, type=item.type) for item in items]


class BacalhauCommand(click.Command):
    """A command whose boolean flags also accept Go's `--flag=true|false` spelling."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_bool_flags(self.params, args))

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        return _described(super().shell_complete(ctx, incomplete))


class BacalhauGroup(click.Group):
    """A group whose subcommands may be lazily imported; also rewrites Go-style boolean flags."""

    command_class = BacalhauCommand

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_bool_flags(self.params, args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        module_name, _, attribute = self.lazy[cmd_name][0].partition(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{self.lazy[cmd_name][0]} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded

    def command_items(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Completions for a subcommand name starting with `incomplete`, without importing lazy verbs."""
        from click.shell_completion import CompletionItem

        items: list[CompletionItem] = []
        for name in self.list_commands(ctx):
            if not name.startswith(incomplete):
                continue
            if name in self.lazy and name not in self.commands:
                items.append(CompletionItem(name, help=self.lazy[name][1]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                items.append(CompletionItem(name, help=command.get_short_help_str()))
        return items

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # click.Group's version imports every matching subcommand for its help line; options come
        # from click.Command's.
        items = self.command_items(ctx, incomplete) + click.Command.shell_complete(self, ctx, incomplete)
        return _described(items)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help from the lazy table avoids importing every verb just to print one line each.
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def rewrite_bool_flags(params: list[click.Parameter], args: list[str]) -> list[str]:
    """Turn `--flag=true` into `--flag` and `--flag=false` into `--no-flag` (or nothing), before `--`."""
    flags: set[str] = set()
    opposite: dict[str, str] = {}
    for param in params:
        if isinstance(param, click.Option) and param.is_flag and not param.count:
            longs = [o for o in param.opts if o.startswith("--")]
            negs = [o for o in param.secondary_opts if o.startswith("--")]
            flags.update(longs, negs)
            for opt in longs:
                if negs:
                    opposite[opt] = negs[0]
            for opt in negs:
                if longs:
                    opposite[opt] = longs[0]
    out: list[str] = []
    for index, token in enumerate(args):
        if token == "--":
            out.extend(args[index:])
            break
        name, sep, value = token.partition("=")
        if not sep or name not in flags:
            out.append(token)
            continue
        lowered = value.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise click.BadParameter(f"invalid boolean {value!r} for {name}; use true or false")
        if lowered in _TRUE:
            out.append(name)
        elif name in opposite:
            out.append(opposite[name])
        # A false value for a flag without a --no- form is its default: drop the token.
    return out
