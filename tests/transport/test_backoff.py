"""Jittered exponential backoff: grows, caps, spreads, resets."""

from __future__ import annotations

import random

from bacalhau.transport.backoff import Backoff


def test_delays_double_up_to_the_cap_and_stay_within_jitter_bounds() -> None:
    backoff = Backoff(base_s=1.0, max_s=8.0, rng=random.Random(1))
    nominal = [1, 2, 4, 8, 8, 8]
    for expected in nominal:
        delay = backoff.next_delay_s()
        assert expected / 2 <= delay <= expected


def test_jitter_spreads_nodes_that_fail_together() -> None:
    delays = {round(Backoff(base_s=10.0, max_s=120.0, rng=random.Random(seed)).next_delay_s(), 3) for seed in range(50)}
    assert len(delays) > 40  # 50 nodes failing at once do not retry at the same instant


def test_reset_starts_again_from_the_base() -> None:
    backoff = Backoff(base_s=1.0, max_s=60.0, rng=random.Random(2))
    for _ in range(5):
        backoff.next_delay_s()
    backoff.reset()
    assert backoff.next_delay_s() <= 1.0
