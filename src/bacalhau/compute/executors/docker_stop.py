"""Ending a docker run early: the switch shared by the worker thread, the timeout timer and `cancel`.

    worker:  create ── start ── arm(client, id) ── wait ... exits
                                   │ stopped before? kill now
    timer / cancel:  stop(reason) ─┴─ remember the first reason; started? kill now

The worker checks `raise_if_stopped` before starting the container, so a container stopped before it
started is never started; `arm` comes after the start, so a stop in between is not lost either.
`kill` (SIGKILL) and not `stop`: Docker's stop would give the task 10 s of grace the user did not ask for.
"""

from __future__ import annotations

import logging
import threading

import docker
import docker.errors

from bacalhau.compute.executors.stopping import Stop, stop_error
from bacalhau.models.errors import ExecutionError

logger = logging.getLogger(__name__)


class StopSwitch:
    """One run's stop switch, shared by the worker thread, the timeout timer and `cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._container_id: str | None = None
        self.stop_reason: Stop | None = None
        self._exited = False

    def arm(self, client: docker.DockerClient, container_id: str) -> None:
        """Call once the container has started: a stop from now on kills it (one before, too)."""
        with self._lock:
            self._client, self._container_id = client, container_id
            stopped = self.stop_reason is not None
        if stopped:
            kill(client, container_id)

    def exited(self) -> None:
        """The container ended by itself: a timeout firing from now on is too late to count."""
        with self._lock:
            self._exited = True

    def stop(self, reason: Stop) -> None:
        """Kill the container; the first reason wins (a cancel after a timeout stays a timeout). Blocking.

        A cancel after the container exited still counts (the caller asked to discard the run, as with
        the wasm executor); a timeout does not: the task did finish within its time.
        """
        with self._lock:
            if reason is Stop.TIMEOUT and self._exited:
                return
            if self.stop_reason is None:
                self.stop_reason = reason
            client, container_id = self._client, self._container_id
        if client is not None and container_id is not None:
            kill(client, container_id)

    def error(self, timeout_s: float | None, details: dict[str, str]) -> ExecutionError:
        """The error `run` raises for the stop reason (same messages as the wasm executor)."""
        return stop_error(self.stop_reason, timeout_s, details)

    def raise_if_stopped(self, timeout_s: float | None, details: dict[str, str]) -> None:
        """Raise `error(...)` if a stop was asked for."""
        if self.stop_reason is not None:
            raise self.error(timeout_s, details)


def kill(client: docker.DockerClient, container_id: str) -> None:
    """SIGKILL the container; one that already exited or is gone is fine. Never raises."""
    try:
        client.api.kill(container_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: it is not running any more, which is what we wanted
            logger.warning("killing container %s failed: %s", container_id, engine_reason(exc))
    except (docker.errors.DockerException, OSError):
        logger.warning("killing container %s failed", container_id, exc_info=True)


def engine_reason(exc: BaseException) -> str:
    """The engine's own words when it gave some (its JSON `message`), else the exception text."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)
