"""`bacalhau node ...`: list, describe and manage the cluster's nodes."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.node."
node = BacalhauGroup(
    name="node",
    help="Commands to query and manage nodes.",
    lazy={
        "approve": (_P + "action:approve", "Approve a node waiting to join the cluster."),
        "delete": (_P + "action:delete", "Delete a node from the cluster."),
        "describe": (_P + "describe:describe", "Get the info of a node by ID."),
        "list": (_P + "list:list_nodes", "List the nodes of the cluster."),
        "reject": (_P + "action:reject", "Reject a node from the cluster."),
    },
)
