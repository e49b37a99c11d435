"""Retries around any publisher: a publish that fails for a passing reason is tried again with backoff.

    publish ──ok──────────────────────────────> PublishedResult
       │
       └─ PublishError(retryable) ─ wait 1s, 2s, 4s ... ─ publish again (at most `attempts` times)
                                                          └─ still failing ─> PublishError naming the
                                                             attempts and the last cause

Errors that are not retryable (a missing bucket, denied access, bad params) fail at once: trying again
cannot help. The execution's results folder is left in place whatever happens, so results are never lost
on the node while they are unpublished. This wraps the Publisher protocol instead of living inside each
publisher, so every publisher gets the same policy (STYLE rule 11).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bacalhau.compute.publishers.base import Publisher
from bacalhau.models.errors import PublishError
from bacalhau.models.job import SpecConfig

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


class RetryingPublisher:
    """A Publisher that retries the retryable failures of the one it wraps."""

    def __init__(
        self,
        inner: Publisher,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._sleep = sleep

    async def start(self) -> None:
        """Start the wrapped publisher if it has a lifespan (e.g. the local publisher's server)."""
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start()

    async def stop(self) -> None:
        """Stop the wrapped publisher if it has a lifespan."""
        stop = getattr(self.inner, "stop", None)
        if stop is not None:
            await stop()

    def is_installed(self) -> bool:
        """Whatever the wrapped publisher says."""
        return self.inner.is_installed()

    def validate(self, spec: SpecConfig) -> None:
        """Whatever the wrapped publisher says."""
        self.inner.validate(spec)

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        """Publish through the wrapped publisher, retrying retryable PublishErrors with exponential backoff."""
        for attempt in range(1, self._attempts + 1):
            try:
                return await self.inner.publish(spec, execution_id, job_id, results_dir, node_id=node_id)
            except PublishError as exc:
                if not exc.retryable or attempt == self._attempts:
                    if attempt > 1:
                        raise PublishError(
                            f"{exc.message} (gave up after {attempt} attempts)",
                            code=exc.code,
                            hint=exc.hint or "the results are kept on the compute node; rerun the job to try again",
                            retryable=exc.retryable,
                        ) from exc
                    raise
            await self._sleep(min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
        raise AssertionError("unreachable: the loop returns or raises")
