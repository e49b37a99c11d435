"""`bacalhau config set KEY=VALUE` (or the deprecated `KEY VALUE...`): write one key into a config file.

As in Bacalhau (cmd/cli/config/set.go):

  - the file is `$BACALHAU_DIR/config.yaml` (default `~/.bacalhau/config.yaml`; the data dir is created
    if needed), or the one YAML file given with `-c/--config`, which must already exist. Within
    `config set`, `-c` names the file to write wherever it appears on the command line (Bacalhau's
    `set` replaces the root's persistent `--config` with its own), so `-c Key=value` is refused;
  - `KEY=VALUE` is the form to use; `KEY VALUE...` still works after a DEPRECATED notice, and is the
    way to give a list as separate words (`compute.orchestrators a b`); `KEY=a,b` gives one too;
  - the value is typed by the key (see values.py) and the whole config is validated before writing,
    so a typo is an error naming the key rather than a setting silently ignored;
  - it prints `Writing config to <file>` on stdout; keys already in the file are kept.
"""

from __future__ import annotations

import os
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.errors import CliError
from bacalhau.cli.output import to_yaml

CONFIG_FILE = "config.yaml"
_FLAG = '"-c, --config" flag'


def write_target(files: tuple[str, ...]) -> str | None:
    """The file named with `-c` for writing (None: use the default), checked as Bacalhau's write-mode flag."""
    chosen: str | None = None
    for value in files:
        if chosen is not None:
            raise CliError(f'invalid argument "{value}" for {_FLAG}: single config file can be set')
        if not value.endswith((".yaml", ".yml")):
            raise CliError(f"invalid argument \"{value}\" for {_FLAG}: config file must end with '.yaml' or '.yml'")
        if not os.path.exists(value):
            raise CliError(f'invalid argument "{value}" for {_FLAG}: specified configuration file doesn\'t exist: {value}',
                           hint=f"create it first (e.g. touch {value}), or leave out --config to write "
                                f"$BACALHAU_DIR/{CONFIG_FILE}")
        if os.path.isdir(value):
            raise CliError(f'invalid argument "{value}" for {_FLAG}: '
                           f"specified configuration file is a directory, must be a file: {value}")
        chosen = value
    return chosen


def default_file(cli: CliContext) -> str:
    """`config.yaml` in the data dir (--data-dir, else BACALHAU_DIR, else ~/.bacalhau)."""
    data_dir = cli.data_dir or os.environ.get("BACALHAU_DIR") or os.path.join(os.path.expanduser("~"), ".bacalhau")
    return os.path.join(data_dir, CONFIG_FILE)


def split_args(args: tuple[str, ...]) -> tuple[str, list[str]]:
    """KEY and its value words from `KEY=VALUE` (words after it are ignored, as in Bacalhau) or `KEY VALUE...`."""
    if "=" in args[0]:
        key, _, value = args[0].partition("=")
        return key, [value]
    if len(args) < 2:
        raise CliError("must provide both key and value, or key=value")
    click.echo("DEPRECATED: use key=value instead of space-separated key value")
    return args[0], list(args[1:])


def set_in(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set a nested key, creating (or case-insensitively reusing) the mappings on the way."""
    node = tree
    for part in parts[:-1]:
        existing = next((k for k in node if str(k).lower() == part.lower()), part)
        child = node.get(existing)
        if not isinstance(child, dict):
            child = {}
        node[existing] = child
        node = child
    for k in [k for k in node if str(k).lower() == parts[-1].lower()]:
        del node[k]
    node[parts[-1]] = value


def read_tree(path: str) -> dict[str, Any]:
    """The mapping already in `path` (empty when the file is missing or empty)."""
    import yaml

    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        try:
            loaded = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise CliError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise CliError(f"{path} does not hold a mapping of config keys")
    return loaded


@click.command("set", cls=BacalhauCommand)
@click.option("-c", "--config", "config_files", multiple=True, metavar="FILE",
              help="Path to the config file (default is $BACALHAU_DIR/config.yaml).")
@click.argument("args", nargs=-1, required=True, metavar="KEY=VALUE")
@pass_cli
def set_config(cli: CliContext, /, config_files: tuple[str, ...], args: tuple[str, ...]) -> None:
    """Set a value in the config file: KEY=VALUE, where KEY is a dot path such as API.Port.

    \b
    Examples:
      bacalhau config set api.host=127.0.0.1
      bacalhau config set compute.orchestrators=nats://127.0.0.1:4222,nats://1.1.1.1:4222
      bacalhau config set labels=foo=bar,baz=buz
      bacalhau config set --config ./my-config.yaml api.port=4321
    """
    from bacalhau.cli.config.values import cast_value, find_key
    from bacalhau.config.loader import leaf_paths, load_config
    from bacalhau.config.types import BacalhauConfig

    # The root group hoists -c/--config from anywhere on the line; inside `config set` it names the
    # file to write, never a file to read or a Key=value override.
    explicit = write_target((*cli.config_args, *config_files))
    # Bacalhau reports (and writes) the file by its absolute path.
    path = os.path.abspath(explicit) if explicit else default_file(cli)
    if explicit is None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    key, values = split_args(args)
    click.echo(f"Writing config to {path}")
    config_key = find_key(key, leaf_paths(BacalhauConfig().to_wire()))
    value = cast_value(config_key, values)
    # Validate the whole config with the new value, as `serve` would load it, then write the value
    # as the schema normalised it.
    checked: Any = load_config((explicit,) if explicit else (), overrides={config_key.path: value},
                               data_dir=cli.data_dir).to_wire()
    parts = config_key.path.split(".")
    for part in parts:
        checked = checked[part]
    tree = read_tree(path)
    set_in(tree, parts, checked)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(to_yaml(tree))
