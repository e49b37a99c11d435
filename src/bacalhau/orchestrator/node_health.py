"""The node health monitor: the tasks that time out silent nodes and persist heartbeat times.

    every probe (1 s) ──> how late did we wake up? ──> late by more than the stall tolerance: add it up
    every check period (DisconnectTimeout/3 in [1 s, 30 s], as Bacalhau)
        the loop stalled since the last check? ──yes──> credit the stall to every node's deadline,
                                                        and disconnect nobody in this check
                                                └─no──> NodeManager.check_health(): timeouts, grace ends
    every persist interval (5 min, as Bacalhau) and at stop ──> NodeManager.flush()

Why the stall rule: if the orchestrator itself was paused (SIGSTOP, swap, a long blocking call), the
heartbeats of that time are still queued unread; judging nodes right then would declare every one of
them lost at once and re-run their work elsewhere. A fine probe catches a stall even when it ends
just before a check is due, which measuring the check's own wake-up would miss.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bacalhau.models.errors import BacalhauError
from bacalhau.orchestrator.nodes import NodeManager

log = logging.getLogger(__name__)

_CHECK_FREQUENCY_FACTOR = 3
_MIN_CHECK_INTERVAL_S = 1.0
_MAX_CHECK_INTERVAL_S = 30.0
DEFAULT_PERSIST_INTERVAL_S = 300.0


def default_check_interval_s(disconnect_timeout_s: float) -> float:
    """Bacalhau's health-check period: a third of the disconnect timeout, within [1 s, 30 s]."""
    return min(max(disconnect_timeout_s / _CHECK_FREQUENCY_FACTOR, _MIN_CHECK_INTERVAL_S), _MAX_CHECK_INTERVAL_S)


class MonitorStatus(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class HealthCheck:
    """What one check did."""

    stalled_s: float
    disconnected: tuple[str, ...]


class NodeHealthMonitor:
    """Owns the health-check task and the persistence task of a NodeManager."""

    def __init__(
        self,
        *,
        nodes: NodeManager,
        monotonic_s: Callable[[], float] = time.monotonic,
        check_interval_s: float | None = None,
        probe_interval_s: float = 1.0,
        stall_tolerance_s: float = 1.0,
        persist_interval_s: float = DEFAULT_PERSIST_INTERVAL_S,
    ) -> None:
        self._nodes = nodes
        self._monotonic_s = monotonic_s
        self.check_interval_s = check_interval_s or default_check_interval_s(nodes.disconnect_timeout_s)
        self._probe_interval_s = min(probe_interval_s, self.check_interval_s)
        self._stall_tolerance_s = stall_tolerance_s
        self._persist_interval_s = persist_interval_s
        self.status = MonitorStatus.CREATED
        self.last_check: HealthCheck | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the check and persistence tasks (on the running loop). Idempotent."""
        if self.status is not MonitorStatus.CREATED:
            return
        self.status = MonitorStatus.RUNNING
        self._tasks = [
            asyncio.create_task(self._check_loop(), name="node-health-check"),
            asyncio.create_task(self._persist_loop(), name="node-state-persistence"),
        ]

    async def stop(self) -> None:
        """Cancel the tasks, then write what is still only in memory. Idempotent."""
        if self.status is MonitorStatus.STOPPED:
            return
        self.status = MonitorStatus.STOPPED
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self._nodes.flush()
        except BacalhauError:
            log.exception("could not write the node states at stop")

    def check(self, *, stalled_s: float = 0.0) -> HealthCheck:
        """One health check. With a stall (`stalled_s` above the tolerance), extend every deadline by it
        and disconnect nobody this time; otherwise time out silent nodes."""
        if stalled_s > self._stall_tolerance_s:
            log.warning(
                "the orchestrator was stalled for %.1fs: node timeouts extended by as much, no node disconnected"
                " in this check", stalled_s,
            )
            self._nodes.extend_deadlines(stalled_s)
            result = HealthCheck(stalled_s, ())
        else:
            result = HealthCheck(stalled_s, tuple(self._nodes.check_health()))
        self.last_check = result
        return result

    async def _check_loop(self) -> None:
        stalled_s = 0.0
        next_check = self._monotonic_s() + self.check_interval_s
        while True:
            before = self._monotonic_s()
            await asyncio.sleep(self._probe_interval_s)
            now = self._monotonic_s()
            late_s = now - before - self._probe_interval_s
            if late_s > self._stall_tolerance_s:
                stalled_s += late_s
            if now >= next_check:
                try:
                    self.check(stalled_s=stalled_s)
                except Exception:
                    # A dead health loop would silently stop detecting lost nodes: log and keep checking.
                    log.exception("node health check failed")
                stalled_s = 0.0
                next_check = now + self.check_interval_s

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(self._persist_interval_s)
            try:
                await self._nodes.flush()
            except BacalhauError:
                # Only heartbeat times and node info are at stake; try again next time.
                log.exception("could not write the node states; retrying in %.0fs", self._persist_interval_s)
