"""Finding the container an earlier process of this node started, so a restarted node can take it back.

After a kill -9 of the node its containers keep running (or finish) on their own. The restarted node
looks each one up by name, `bacalhau-<execution id>`, and takes it only if its labels say this node
started it for that execution::

    inspect bacalhau-<execution id>
      missing, or another node's ──────────> None: nothing to take back (the result is lost)
      created, never started ──────────────> NEVER_STARTED: removed, nothing ran (lost, safe to re-run)
      running / paused / restarting ───────> wait for it; the rest of its timeout counts from StartedAt
      exited / dead ───────────────────────> collect it; timed out if it ran longer than its timeout

Times come from the engine's clock (RFC 3339, UTC, nanoseconds) and are compared with this host's:
the engine runs on this host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import docker.errors

from bacalhau.compute.executors.docker_container import (
    LABEL_EXECUTION_ID,
    LABEL_MANAGED,
    LABEL_NODE_ID,
    container_name,
)

_RUNNING = frozenset({"running", "paused", "restarting"})
_ENDED = frozenset({"exited", "dead"})
# The shortest timer worth arming: a task already past its timeout is killed at once.
_MIN_REMAINING_S = 0.01
_RFC3339 = re.compile(r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$")


@dataclass(frozen=True)
class FoundContainer:
    """A container of this node for one execution, as the engine describes it now."""

    container_id: str
    status: str
    image: str
    image_id: str
    started_at_s: float | None
    finished_at_s: float | None

    @property
    def running(self) -> bool:
        """Still going: wait for it."""
        return self.status in _RUNNING

    @property
    def ended(self) -> bool:
        """Ran and exited (by itself or killed) while nobody watched: collect it."""
        return self.status in _ENDED

    def remaining_s(self, timeout_s: float | None, now_s: float) -> float | None:
        """What is left of the task's timeout (None: no limit); a task past it gets a token instant."""
        if timeout_s is None or self.started_at_s is None:
            return timeout_s
        return max(timeout_s - (now_s - self.started_at_s), _MIN_REMAINING_S)

    def overran(self, timeout_s: float | None) -> bool:
        """It ended, but later than its timeout allowed: the node would have killed it."""
        if timeout_s is None or self.started_at_s is None or self.finished_at_s is None:
            return False
        return self.finished_at_s - self.started_at_s > timeout_s


def find_container(client: docker.DockerClient, *, execution_id: str, node_id: str) -> FoundContainer | None:
    """The container this node started for `execution_id`, or None (gone, or not this node's to take).

    Raises the SDK's errors other than NotFound (the caller translates them)."""
    try:
        info: dict[str, Any] = client.api.inspect_container(container_name(execution_id))
    except docker.errors.NotFound:
        return None
    labels = (info.get("Config") or {}).get("Labels") or {}
    if (
        labels.get(LABEL_MANAGED) != "true"
        or labels.get(LABEL_NODE_ID) != node_id
        or labels.get(LABEL_EXECUTION_ID) != execution_id
    ):
        return None
    state = info.get("State") or {}
    return FoundContainer(
        container_id=str(info["Id"]),
        status=str(state.get("Status", "")),
        image=str((info.get("Config") or {}).get("Image", "")),
        image_id=str(info.get("Image", "")),
        started_at_s=engine_time_s(str(state.get("StartedAt", ""))),
        finished_at_s=engine_time_s(str(state.get("FinishedAt", ""))),
    )


def engine_time_s(text: str) -> float | None:
    """Seconds since the epoch for an engine timestamp; None for its zero time ("0001-01-01...") or junk."""
    match = _RFC3339.match(text.strip())
    if match is None or text.startswith("0001-"):
        return None
    try:
        base = datetime.fromisoformat(match["base"] + (match["zone"] or "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    fraction = float(f"0.{match['frac']}") if match["frac"] else 0.0
    return base.timestamp() + fraction
