"""`bacalhau config set KEY VALUE...`: write one key into the config file.

The file is `$BACALHAU_DIR/config.yaml` (default `~/.bacalhau/config.yaml`), or the YAML file named
with the global `-c/--config`. The key and value are checked against the config schema before
anything is written, so a typo is an error naming the key rather than a setting silently ignored.
"""

from __future__ import annotations

import os
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.output import to_yaml

CONFIG_FILE = "config.yaml"


def config_file(cli: CliContext) -> str:
    """The file `config set` writes: a -c YAML file, else config.yaml in the data dir."""
    for arg in cli.config_args:
        if "=" not in arg and arg.endswith((".yaml", ".yml")):
            return arg
    data_dir = cli.data_dir or os.environ.get("BACALHAU_DIR") or os.path.join(os.path.expanduser("~"), ".bacalhau")
    return os.path.join(data_dir, CONFIG_FILE)


def canonical_parts(tree: dict[str, Any], key: str) -> list[str]:
    """The key's path with the schema's spelling (`api.port` -> [API, Port]); free-form map keys kept."""
    parts: list[str] = []
    node: Any = tree
    for part in key.split("."):
        match = next((k for k in node if k.lower() == part.lower()), None) if isinstance(node, dict) else None
        parts.append(match or part)
        node = node.get(match) if isinstance(node, dict) and match else None
    return parts


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


@click.command("set", cls=BacalhauCommand)
@click.argument("key")
@click.argument("values", nargs=-1, required=True)
@pass_cli
def set_config(cli: CliContext, /, key: str, values: tuple[str, ...]) -> None:
    """Set KEY (a dot path such as API.Port) to VALUE; several values make a list."""
    import yaml

    from bacalhau.config.loader import load_config

    raw = ",".join(values)
    # Validate against the schema exactly as `-c KEY=VALUE` would be, then read the typed value back.
    checked = load_config((f"{key}={raw}",), data_dir=cli.data_dir).to_wire()
    parts = canonical_parts(checked, key)
    value: Any = checked
    for part in parts:
        value = value[part]
    path = config_file(cli)
    tree: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise click.ClickException(f"{path} does not hold a mapping of config keys")
        tree = loaded
    set_in(tree, parts, value)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(to_yaml(tree))
