"""Retry policy: when a failed execution is tried again, how often, and how soon.

Bacalhau retries every failure on every other node ("always retry"), so a typo in an image name fails
N times on N nodes. Here each failure is classified by the node that saw it (`Retryable` in the
execution's ComputeState.Details, set from the error: a lost node, an unreachable registry, a crashed
executor or a publisher that could not upload are the node's fault; a missing image, an invalid module,
a missing input, a timeout or an out-of-memory kill are the job's):

    strategy "classified" (default)                     strategy "always" (Bacalhau's behaviour)
      job's fault  -> job Failed at once, reason + hint   every failure retried
      node's fault -> retried on a node that has not      on any node, the failed ones included
                      failed that partition
    both: at most `attempts` executions per partition (batch, ops), the next one not before
          backoff * 2^(failures-1), capped at max_backoff (service and daemon replicas are replaced
          with that backoff for as long as the job runs: long-running work has no attempt cap)

The node default is `Orchestrator.Scheduler.Retry` (Strategy, Attempts, Backoff, MaxBackoff); a job
overrides any of them with Meta keys `retry.strategy`, `retry.attempts`, `retry.backoff`,
`retry.max-backoff` (checked at submit: a bad value is a 400 naming the key).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bacalhau.models.duration import parse_duration_s

NS_PER_S = 1_000_000_000
META_STRATEGY = "retry.strategy"
META_ATTEMPTS = "retry.attempts"
META_BACKOFF = "retry.backoff"
META_MAX_BACKOFF = "retry.max-backoff"
META_KEYS = (META_STRATEGY, META_ATTEMPTS, META_BACKOFF, META_MAX_BACKOFF)
# Bounds of the per-job values: what a retry loop may cost is the node's business, not the job's.
MAX_ATTEMPTS = 100
MAX_BACKOFF_S = 24 * 3600.0


class RetryStrategy(enum.StrEnum):
    """Which failures are retried: the node's only (classified), or all (always, Bacalhau's)."""

    CLASSIFIED = "classified"
    ALWAYS = "always"


@dataclass(frozen=True)
class RetryPolicy:
    """How a job's failed executions are tried again (the module docstring says when)."""

    strategy: RetryStrategy = RetryStrategy.CLASSIFIED
    # Executions per partition (per node for ops), the first one included.
    attempts: int = 3
    backoff_ns: int = 1 * NS_PER_S
    max_backoff_ns: int = 60 * NS_PER_S

    def delay_ns(self, failures: int) -> int:
        """How long after the last ended attempt the next one may start, after `failures` in a row."""
        if failures <= 0 or self.backoff_ns <= 0:
            return 0
        # 2**62 would overflow nothing in Python, but bound the exponent anyway: the cap is reached long before.
        return min(self.backoff_ns * (1 << min(failures - 1, 40)), max(self.max_backoff_ns, self.backoff_ns))

    def retries(self, retryable: bool) -> bool:
        """Whether a failure is worth another attempt at all (attempts aside)."""
        return retryable or self.strategy is RetryStrategy.ALWAYS

    def for_job(self, meta: Mapping[str, str]) -> RetryPolicy:
        """This policy with the job's `retry.*` Meta overrides applied. Raises ValueError naming the key."""
        policy = self
        if META_STRATEGY in meta:
            value = meta[META_STRATEGY].strip().lower()
            try:
                policy = replace(policy, strategy=RetryStrategy(value))
            except ValueError:
                raise ValueError(
                    f"Meta[{META_STRATEGY!r}]: unknown retry strategy {meta[META_STRATEGY]!r} "
                    f"(one of: {', '.join(s.value for s in RetryStrategy)})"
                ) from None
        if META_ATTEMPTS in meta:
            raw = meta[META_ATTEMPTS].strip()
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_ATTEMPTS:
                raise ValueError(f"Meta[{META_ATTEMPTS!r}]: {raw!r} is not a whole number from 1 to {MAX_ATTEMPTS}")
            policy = replace(policy, attempts=int(raw))
        if META_BACKOFF in meta:
            policy = replace(policy, backoff_ns=_duration_ns(META_BACKOFF, meta[META_BACKOFF]))
        if META_MAX_BACKOFF in meta:
            policy = replace(policy, max_backoff_ns=_duration_ns(META_MAX_BACKOFF, meta[META_MAX_BACKOFF]))
        return policy


DEFAULT_RETRY = RetryPolicy()


def _duration_ns(key: str, raw: str) -> int:
    try:
        seconds = parse_duration_s(raw)
    except ValueError as exc:
        raise ValueError(f"Meta[{key!r}]: {exc}") from None
    if not 0 <= seconds <= MAX_BACKOFF_S:
        raise ValueError(f"Meta[{key!r}]: {raw!r} is outside 0s to 24h")
    return int(seconds * NS_PER_S)
