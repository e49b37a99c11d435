"""`bacalhau config ...`: show and change the configuration in the data dir."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.config."
config = BacalhauGroup(
    name="config",
    help="Interact with the Bacalhau configuration.",
    lazy={
        "list": (_P + "list:list_config", "List every config key with its value."),
        "set": (_P + "set:set_config", "Set a config key in the config file."),
    },
)
