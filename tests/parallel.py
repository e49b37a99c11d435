"""How tests share the machine when pytest-xdist runs them in several worker processes at once.

scripts/test runs the suite with `-n` workers. Whatever two tests could both claim at the same moment
(a TCP port picked by number, a veth subnet) is split by worker: each worker draws from its own slice,
so two workers never pick the same one, whatever their process IDs. Without xdist there is one worker,
index 0, and it gets everything.
"""

from __future__ import annotations

import os


def worker_index() -> int:
    """0 for xdist's worker gw0 (or a run without xdist), 1 for gw1, ..."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


def worker_count() -> int:
    """How many xdist workers run at once (1 without xdist)."""
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def worker_slice(low: int, high: int) -> tuple[int, int]:
    """This worker's share [low', high') of the range [low, high): equal, disjoint slices, one per worker."""
    count = min(worker_count(), high - low)
    index = worker_index() % count
    size = (high - low) // count
    return low + index * size, low + (index + 1) * size if index < count - 1 else high


def worker_subnet(index: int, *, first: int, span: int) -> int:
    """A /24's third octet in [first, first + span) for the `index`-th link a test makes: never one another
    worker's test uses at the same time (each worker has its own block of them, reused test after test)."""
    per_worker = max(1, span // worker_count())
    return first + (worker_index() % worker_count()) * per_worker + index % per_worker
