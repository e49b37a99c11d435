"""`bacalhau agent ...`: ask the node answering the API about itself."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.agent."
agent = BacalhauGroup(
    name="agent",
    help="Commands to query the agent (node) answering the API.",
    lazy={
        "alive": (_P + "alive:alive", "Check that the agent is alive."),
        "config": (_P + "config:config", "Print the agent's configuration."),
        "node": (_P + "node:node", "Print the agent's node info."),
        "version": (_P + "version:version", "Print the agent's version."),
    },
)
