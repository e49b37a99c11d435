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
        "drain": (_P + "action:drain", "Cordon a node for maintenance; move its work off it after a deadline."),
        "list": (_P + "list:list_nodes", "List the nodes of the cluster."),
        "reject": (_P + "action:reject", "Reject a node from the cluster."),
        "uncordon": (_P + "action:uncordon", "Let a drained node take new work again."),
    },
)
