"""How tests share the machine when pytest-xdist runs them in several worker processes at once.

scripts/test runs the suite with `-n` workers, whole test files to a worker. Whatever two tests could
both claim at the same moment is kept apart:

- a TCP port picked by number, a veth subnet: each worker draws from its own slice, so two workers
  never pick the same one (`worker_slice`, `worker_subnet`);
- a compute node's name, which is its ID: a compute node removes, as it starts, every Docker container
  labelled with its ID that it does not know (leftovers of its own earlier run). The files whose compute
  nodes have the generic names node-0, node-1, ... would kill each other's containers if two workers
  ran them at once, so they form one scope that one worker runs (`scope_of`, used by conftest's
  scheduler).

Without xdist there is one worker, index 0, and it gets everything.
"""

from __future__ import annotations

import os

# Test files that start compute nodes named node-0, node-1, ... (the devstack's naming too).
GENERIC_NODE_NAMES = frozenset({
    "tests/scenarios/test_scenario_cluster.py",
    "tests/scenarios/test_scenario_devstack.py",
    "tests/scenarios/test_scenario_graceful_stop.py",
    "tests/scenarios/test_scenario_job_types.py",
    "tests/scenarios/test_scenario_relabel.py",
})
GENERIC_NODE_NAMES_SCOPE = "compute nodes named node-N"


def scope_of(nodeid: str) -> str:
    """The unit xdist gives one worker for test `nodeid`: its file, or the one scope of GENERIC_NODE_NAMES."""
    path = nodeid.split("::", 1)[0]
    return GENERIC_NODE_NAMES_SCOPE if path in GENERIC_NODE_NAMES else path


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


def _slot(size: int) -> tuple[int, int]:
    """(this worker's slot, slots) for `size` things to share: as many slots as workers, at most `size`."""
    slots = max(1, min(worker_count(), size))
    return worker_index() % slots, slots


def worker_slice(low: int, high: int) -> tuple[int, int]:
    """This worker's share [low', high') of the range [low, high): equal, disjoint slices, one per worker."""
    if high - low < 1:
        return low, high
    slot, slots = _slot(high - low)
    size = (high - low) // slots
    return low + slot * size, low + (slot + 1) * size if slot < slots - 1 else high


def worker_subnet(index: int, *, first: int, span: int) -> int:
    """A /24's third octet in [first, first + span) for the `index`-th link a test makes: in a block of
    this worker's own, so never one another worker's test uses at the same time; placed in that block by
    the process ID too, as a leftover link of an interrupted run (named after its own process) may still
    hold an address."""
    slot, slots = _slot(span)
    per_worker = span // slots
    return first + slot * per_worker + (os.getpid() + index) % per_worker
