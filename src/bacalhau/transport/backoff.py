"""Exponential backoff with jitter, for every retry loop of the transport.

Bacalhau's backoffs have no jitter (NCL.md §1.6, §1.8): after an orchestrator restart every compute
node retries in lockstep. Ours spread each delay uniformly over [delay/2, delay] ("equal jitter"), so
retries never bunch and never retry sooner than half the nominal delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays `base_s * 2**(n-1)` capped at `max_s`, jittered; `reset()` after a success."""

    base_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay_s(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self.failures += 1
        nominal = min(self.max_s, self.base_s * (2.0 ** min(self.failures - 1, 30)))
        return nominal / 2 + self.rng.uniform(0, nominal / 2)

    def reset(self) -> None:
        """The last attempt succeeded: start again from `base_s`."""
        self.failures = 0
