"""Who holds what: the orchestrator's index of the data its compute nodes report (and are about to hold).

    node info (DataHoldings) ──report()──►  key -> {node: bytes}      (what each node said it holds)
    a placement          ──expect()──►   key -> {node: expiry}     (it will hold it once staged, if
                                                                    it keeps that kind of data)
    a job ──for_job()──► JobHoldings: per node, the job's inputs it holds and their bytes

`expect` is what makes a burst of jobs on one input fetch it once: the first job's node has not
reported the data yet when the second job is placed, but it was just given it and keeps what it
stages (its `Keeps` says so); an expectation lasts `expect_ttl_s`, by which time the node has
reported it (or failed to fetch it, and then it should not attract more jobs for it).

Bounded whatever nodes send: a node's report is read up to MAX_REPORTED_ENTRIES entries, and at most
`max_expected` expectations are kept (the oldest dropped first). Not thread-safe: the orchestrator's
event loop is its only user. Pure data: no I/O, so the scheduler's input stays a pure function of it.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Iterable

from bacalhau.locality.held import NO_HOLDINGS, Held, JobHoldings
from bacalhau.locality.keys import KIND_LOCAL, ancestors, input_key, kind_of
from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES, DataHoldings
from bacalhau.models.job import Job

DEFAULT_EXPECT_TTL_S = 300.0
LOCAL_PREFIX = KIND_LOCAL + ":"
_new_held = tuple.__new__  # Held((inputs, size)) without NamedTuple's Python-level __new__
# Holders of one input looked at per job (the first reported, then the expected): what a placement costs
# stays bounded however many nodes hold a popular input; the scheduler checks at most 8 holders anyway (the
# scheduler takes at most half its sample from them).
MAX_HOLDERS_PER_INPUT = 8
DEFAULT_MAX_EXPECTED = 100_000


def job_input_keys(job: Job) -> list[str]:
    """The keys of the job's inputs that name data (inline and malformed sources have none)."""
    keys = (input_key(src.source) for src in job.task.input_sources)
    return [k for k in keys if k is not None]


# A job is evaluated several times (placed, then completed, retried...); its keys (a parse and a hash
# per input) are computed once per version. Keyed by ID and version: a new version may change inputs.
_KEYS_CACHED = 4096


class HoldingsIndex:
    """Key -> nodes holding it, reported and expected (see the module docstring); bounded."""

    def __init__(
        self,
        *,
        expect_ttl_s: float = DEFAULT_EXPECT_TTL_S,
        max_expected: int = DEFAULT_MAX_EXPECTED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = expect_ttl_s
        self._max_expected = max(0, max_expected)
        self._clock = clock
        self._by_key: dict[str, dict[str, int]] = {}  # key -> node -> bytes it reported
        self._reported: dict[str, list[str]] = {}  # node -> the keys of its last report
        self._keeps: dict[str, frozenset[str]] = {}  # node -> key kinds it keeps after staging
        self._expected: dict[str, dict[str, float]] = {}  # key -> node -> until (clock seconds)
        self._expiries: collections.deque[tuple[float, str, str]] = collections.deque()
        self._keys: collections.OrderedDict[tuple[str, int], tuple[str, ...]] = collections.OrderedDict()

    def report(self, node_id: str, holdings: DataHoldings | None) -> None:
        """Replace what `node_id` holds with its latest report (None: it reports nothing, e.g. a Go node)."""
        self._drop_reported(node_id)
        if holdings is None:
            self._keeps.pop(node_id, None)
            return
        self._keeps[node_id] = frozenset(holdings.keeps)
        keys: list[str] = []
        for entry in holdings.entries[:MAX_REPORTED_ENTRIES]:
            if not entry.key:
                continue
            self._by_key.setdefault(entry.key, {})[node_id] = max(0, entry.size)
            keys.append(entry.key)
        self._reported[node_id] = keys

    def forget(self, node_id: str) -> None:
        """The node is gone (deleted): nothing of it is ranked any more."""
        self._drop_reported(node_id)
        self._keeps.pop(node_id, None)
        for key in [k for k, nodes in self._expected.items() if node_id in nodes]:
            del self._expected[key][node_id]
            if not self._expected[key]:
                del self._expected[key]

    def expect(self, node_id: str, keys: Iterable[str]) -> None:
        """`node_id` was just given these inputs: count it as holding those it keeps (see the module doc)."""
        keeps = self._keeps.get(node_id)
        if not keeps:
            return
        until = self._clock() + self._ttl_s
        for key in keys:
            if kind_of(key) not in keeps:
                continue
            self._expected.setdefault(key, {})[node_id] = until
            self._expiries.append((until, key, node_id))
        while len(self._expiries) > self._max_expected:
            self._expire_one()

    def for_job(self, job: Job) -> JobHoldings:
        """What each node holds of `job`'s inputs. O(inputs x (path depth + MAX_HOLDERS_PER_INPUT))."""
        keys = self._keys_of(job)
        if not keys:
            return NO_HOLDINGS
        if not (self._by_key or self._expected):
            return JobHoldings(inputs=len(keys), keys=keys)
        self._expire(self._clock())
        by_key, expected = self._by_key, self._expected
        held: dict[str, Held] = {}
        total = 0
        for key in keys:
            holders: dict[str, int] = {}
            exact = by_key.get(key)
            if exact:
                holders.update(itertools.islice(exact.items(), MAX_HOLDERS_PER_INPUT))
            size = max(holders.values(), default=0)
            total += size
            if key.startswith(LOCAL_PREFIX):
                for container in ancestors(key)[1:]:
                    # An enclosing folder's size is not the input's: counted as held, size unknown.
                    for node_id, _ in itertools.islice(by_key.get(container, {}).items(), MAX_HOLDERS_PER_INPUT):
                        holders.setdefault(node_id, 0)
            coming = expected.get(key)
            if coming:
                for node_id in itertools.islice(coming, MAX_HOLDERS_PER_INPUT):
                    holders.setdefault(node_id, size)
            for node_id, held_size in holders.items():
                before = held.get(node_id)
                if before is None:
                    held[node_id] = _new_held(Held, (1, held_size))
                else:
                    held[node_id] = _new_held(Held, (before.inputs + 1, before.size + held_size))
        if not held:
            return JobHoldings(inputs=len(keys), total_size=total, keys=keys)
        ranked = tuple(sorted(held, key=lambda n: (-held[n].size, -held[n].inputs)))
        return JobHoldings(by_node=held, inputs=len(keys), total_size=total, ranked=ranked, keys=keys)

    def _keys_of(self, job: Job) -> tuple[str, ...]:
        if not job.id:
            return tuple(job_input_keys(job))
        slot = (job.id, job.version)
        keys = self._keys.get(slot)
        if keys is None:
            keys = self._keys[slot] = tuple(job_input_keys(job))
            if len(self._keys) > _KEYS_CACHED:
                self._keys.popitem(last=False)
        return keys

    def entries(self) -> int:
        """How many (key, node) pairs are indexed, reported and expected (for debug output and tests)."""
        return sum(len(n) for n in self._by_key.values()) + sum(len(n) for n in self._expected.values())

    def _drop_reported(self, node_id: str) -> None:
        for key in self._reported.pop(node_id, ()):
            nodes = self._by_key.get(key)
            if nodes is not None:
                nodes.pop(node_id, None)
                if not nodes:
                    del self._by_key[key]

    def _expire(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            self._expire_one()

    def _expire_one(self) -> None:
        until, key, node_id = self._expiries.popleft()
        nodes = self._expected.get(key)
        # A later expect() of the same pair moved its expiry: only the newest entry removes it.
        if nodes is not None and nodes.get(node_id) == until:
            del nodes[node_id]
            if not nodes:
                del self._expected[key]
