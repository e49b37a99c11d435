"""Scheduler placements per second with locality ranking on vs off, over 1,000 simulated nodes.

    .venv/bin/python bench/scheduler_locality.py [--nodes 1000] [--evaluations 500] [--repeats 9]
    .venv/bin/python bench/scheduler_locality.py --profile on             # + cProfile of one case

The issue's target: ranking feasible nodes by the bytes of the job's input data they hold must cost the
scheduler less than 20 % of its placements/s. The scheduler is a pure function (schedule.py: evaluation
+ Snapshot -> Plan), so, as bench/scheduler_job_types.py does, this bench calls it directly, in this
process, with no store, broker or transport. The fleet is that bench's (build_fleet: the same seeded
1,000 NodeStates, ~44 % of them eligible for the jobs). Every job is batch Count=1, fresh, with two inputs: a
urlDownload and an s3 source (each job its own, so no two jobs share an input).

Ranking on means what the orchestrator's worker does per evaluation (orchestrator/worker.py):
    holdings = index.for_job(job)              the HoldingsIndex lookup of the job's input keys
    plan = schedule(evaluation, Snapshot(..., holdings=holdings, nodes_by_id=...))
    index.expect(node, holdings.keys)           for each execution placed (its node is staging them)
all three inside the clock. The index is fed one report per node (DataHoldings, as the compute nodes
send them), each of the full MAX_REPORTED_ENTRIES (256) entries: the keys of the bench's jobs' inputs
the node holds, then url / s3 / ipfs / local keys with sizes (40/30/20/10 %; a fifth of them from a
pool of 2,000 popular data every node may hold, the rest the node's own). Cases, over that fleet:
    off              ranking off (holdings=NO_HOLDINGS, no lookup, no expect): the baseline
    on               the same jobs, ranking on; ~5 % of the nodes hold one or both of each job's inputs
    on-cold          ranking on, no node holds the job's inputs (fresh data): the lookups alone
    on-many-holders  ranking on, ~30 % of the nodes hold one or both of each job's inputs

Each case runs `--repeats` rounds of `--evaluations` evaluations, one of each of its jobs (time.perf_counter
around the round), the cases interleaved round by round so that the machine's other load falls on all
of them alike. Evaluations/s is the median of the rounds; placements/s = evaluations/s (one each);
cost % = (1 - placements/s / off's) x 100. An expectation lasts 300 s (expect_ttl_s): the index's clock
is the bench's, moved past that at the end of each round (inside the clock, so each case pays for
expiring its own), so that a job meets no expectation of its own previous round (a cold job stays cold).
"on holder" = the share of placements on a node that reported one of the job's inputs (ranking off
picks one by chance: ~5 %), next to the share of jobs one of whose holders is eligible with a free slot
(the most ranking could do). The index's memory is what tracemalloc counts it retaining once fed (the
reports themselves are dropped, as the orchestrator drops their entries). Lookup and expect: the time
of `for_job` alone and of `job_input_keys + expect` alone per evaluation (medians of 3 rounds).
No target is asserted: the figures are for the notes (the JSON line at the end).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from scheduler_job_types import ENGINE, GIB, NOW_NS, SECOND_NS, Fleet, build_fleet

from bacalhau.locality.held import NO_HOLDINGS
from bacalhau.locality.index import DEFAULT_EXPECT_TTL_S, HoldingsIndex, job_input_keys
from bacalhau.locality.keys import KIND_IPFS, KIND_LOCAL, KIND_S3, KIND_URL, ipfs_key, local_key, url_key
from bacalhau.models.constants import STORAGE_S3, STORAGE_URL
from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES, DataHoldings, HeldData
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import InputSource, Job, JobState, LabelSelectorRequirement, SpecConfig, Task
from bacalhau.models.node import NodeState
from bacalhau.models.state import EvaluationTrigger, JobStateType
from bacalhau.orchestrator.scheduler.plan import Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule

MB = 1000**2
BASELINE = "off"
HOLDERS = {"on": 0.05, "on-cold": 0.0, "on-many-holders": 0.30}  # share of the nodes holding a job's inputs
POPULAR = 2_000  # data many nodes may hold (a shared base image's datasets, a popular bucket)
POPULAR_SHARE = 0.2  # of a node's other entries
KINDS = ((KIND_URL, 0.4), (KIND_S3, 0.3), (KIND_IPFS, 0.2), (KIND_LOCAL, 0.1))
KEEPS = [KIND_URL, KIND_S3, KIND_IPFS]  # what a node with an input cache keeps after staging
MAX_EVALUATIONS = 1_000  # bounds --evaluations (one job per evaluation: 30 % x 1,000 x 1.3 keys < 512 a node)
MAX_REPEATS = 50
MAX_NODES = 10_000  # bounds --nodes: feeding the index takes ~16 s a 1,000 nodes (512 entries each)


class BenchClock:
    """The index's clock: still, except when the bench moves it (to expire a round's expectations)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class JobSet:
    """The jobs of a case, one per evaluation of a round, and which nodes hold each one's inputs."""

    jobs: list[Job]
    evaluations: list[Evaluation]
    keys: list[list[str]]  # per job: its input keys (url, s3)
    sizes: list[list[int]]  # per job: their sizes, as every holder reports them
    holders: list[dict[str, list[int]]]  # per job: node ID -> which of its inputs (0: url, 1: s3) it holds



def build_job(rng: random.Random, n: int) -> Job:
    """A batch Count=1 WASM job constrained to zone=eu, 1 CPU / 2 GB, a urlDownload and an s3 input."""
    inputs = [
        InputSource(Source=SpecConfig(Type=STORAGE_URL, Params={"URL": f"https://data.example.com/sets/{n}/in.csv"}),
                    Target="/inputs/table"),
        InputSource(Source=SpecConfig(Type=STORAGE_S3, Params={"Bucket": "bench-data", "Key": f"runs/{n}/frames.parquet",
                                                         "Endpoint": "https://s3.example.com"}),
                    Target="/inputs/frames"),
    ]
    task = Task(
        Name="main",
        Engine=SpecConfig(Type=ENGINE, Params={"EntryModule": "/app/main.wasm"}),
        Publisher=SpecConfig(Type="local"),
        InputSources=inputs,
    )
    task.resources.cpu = "1"
    task.resources.memory = "2gb"
    return Job(
        ID=f"j-{uuid.UUID(int=rng.getrandbits(128))}", Name=f"bench-locality-{n}", Namespace="default", Type="batch",
        Count=1, Constraints=[LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])],
        Tasks=[task], State=JobState(StateType=JobStateType.Pending), Version=1,
        CreateTime=NOW_NS - 300 * SECOND_NS,
    )


def build_jobs(fleet: Fleet, count: int, share: float, rng: random.Random, first: int) -> JobSet:
    """`count` jobs (numbered from `first`); for each, round(share x nodes) nodes hold one or both inputs."""
    node_ids = [n.info.node_id for n in fleet.nodes]
    out = JobSet([], [], [], [], [])
    for n in range(first, first + count):
        job = build_job(rng, n)
        keys = job_input_keys(job)
        if len(keys) != 2:
            raise SystemExit(f"job {n}: its inputs have {len(keys)} keys, expected 2 (url, s3)")
        out.jobs.append(job)
        out.evaluations.append(Evaluation(
            ID=f"ev-{uuid.UUID(int=rng.getrandbits(128))}", Namespace=job.namespace, JobID=job.id,
            TriggeredBy=EvaluationTrigger.JobRegister, Type=job.type, CreateTime=NOW_NS, ModifyTime=NOW_NS))
        out.keys.append(keys)
        out.sizes.append([rng.randint(50, 2_000) * MB, rng.randint(50, 2_000) * MB])
        holders: dict[str, list[int]] = {}
        for node_id in rng.sample(node_ids, round(share * len(node_ids))):
            roll = rng.random()  # a third hold the URL's data, a third the S3 object's, a third both
            holders[node_id] = [0] if roll < 1 / 3 else [1] if roll < 2 / 3 else [0, 1]
        out.holders.append(holders)
    return out


def popular_keys(rng: random.Random) -> list[tuple[str, int]]:
    """The data many nodes may hold: keys made by the real key functions, with one size each."""
    found: list[tuple[str, int]] = []
    for i in range(POPULAR):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        if kind == KIND_URL:
            key = url_key(f"https://datasets.example.org/popular/{i}.tar.gz")
        elif kind == KIND_S3:
            key = f"{KIND_S3}:{rng.getrandbits(256):064x}"  # a hash, as s3_key's
        elif kind == KIND_IPFS:
            key = ipfs_key(f"bafybei{rng.getrandbits(250):063x}"[:59])
        else:
            key = local_key(f"/data/shared/{['models', 'images', 'genomes', 'weather'][i % 4]}/{i}")
        found.append((key, held_size(rng)))
    return found


def held_size(rng: random.Random) -> int:
    """A held entry's bytes: log-normal around ~25 MB, between 1 kB and 20 GB."""
    return int(min(20 * GIB, max(1_000, rng.lognormvariate(17.0, 2.5))))


def own_key(rng: random.Random, node_no: int, i: int) -> str:
    """A key only this node holds (hashed kinds as random hex of a SHA-256's length)."""
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    if kind in (KIND_URL, KIND_S3):
        return f"{kind}:{rng.getrandbits(256):064x}"
    if kind == KIND_IPFS:
        return f"{KIND_IPFS}:bafybei{rng.getrandbits(260):065x}"[:64]
    return f"{KIND_LOCAL}:/data/node{node_no}/{['in', 'scratch', 'cache'][i % 3]}/{i}"


def node_report(node_no: int, node_id: str, job_sets: list[JobSet], popular: list[tuple[str, int]],
                rng: random.Random) -> DataHoldings:
    """One node's DataHoldings: the bench's job inputs it holds first, then other data, 512 entries in all.
    Every key is a new string, as one parsed from the node's message is."""
    entries: list[HeldData] = []
    for js in job_sets:
        for keys, sizes, holders in zip(js.keys, js.sizes, js.holders, strict=True):
            for which in holders.get(node_id, ()):
                entries.append(HeldData(Key="".join((keys[which][:4], keys[which][4:])), Bytes=sizes[which]))
    while len(entries) < MAX_REPORTED_ENTRIES:
        if rng.random() < POPULAR_SHARE:
            key, size = popular[rng.randrange(len(popular))]
            entries.append(HeldData(Key="".join((key[:4], key[4:])), Bytes=size))
        else:
            entries.append(HeldData(Key=own_key(rng, node_no, len(entries)), Bytes=held_size(rng)))
    truncated = len(entries) > MAX_REPORTED_ENTRIES
    return DataHoldings(Keeps=KEEPS, Entries=entries[:MAX_REPORTED_ENTRIES], Truncated=truncated,
                        HeldEntries=len(entries), HeldBytes=sum(e.size for e in entries))


@dataclass
class Fed:
    """The index once fed, and what feeding it cost."""

    index: HoldingsIndex
    clock: BenchClock
    pairs: int
    bytes: int
    truncated: int
    seconds: float


def feed_index(fleet: Fleet, job_sets: list[JobSet], seed: int) -> Fed:
    """A HoldingsIndex fed one report per node, its retained memory counted by tracemalloc."""
    rng = random.Random(seed + 2)
    popular = popular_keys(rng)
    clock = BenchClock()
    gc.collect()
    t0 = time.perf_counter()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = HoldingsIndex(clock=clock)
    truncated = 0
    for node_no, node in enumerate(fleet.nodes):
        report = node_report(node_no, node.info.node_id, job_sets, popular, rng)
        truncated += report.truncated
        index.report(node.info.node_id, report)
        del report  # as the orchestrator keeps only its summary (data_holdings.summarised)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return Fed(index, clock, index.entries(), retained, truncated, time.perf_counter() - t0)


@dataclass
class Case:
    """One way of scheduling a set of jobs: ranking off (index None) or on."""

    name: str
    what: str
    js: JobSet
    index: HoldingsIndex | None
    clock: BenchClock
    rounds_s: list[float] = field(default_factory=list)
    evaluations: int = 0
    on_holder: list[float] = field(default_factory=list)  # per round: share of placements on a holder
    lookup_us: float = 0.0
    expect_us: float = 0.0
    last_placed: list[str] = field(default_factory=list)

    def run_round(self, nodes: tuple[NodeState, ...], count: int) -> list[str]:
        """`count` evaluations, one per job, as the worker runs them; the node ID of each placement."""
        js, index = self.js, self.index
        placed: list[str] = []
        # The worker hands over NodeManager.by_id(), a view kept with the nodes: built here once per round.
        by_id = {n.info.node_id: n for n in nodes}
        if index is None:
            for i in range(count):
                snap = Snapshot(job=js.jobs[i], executions=(), nodes=nodes, now_ns=NOW_NS, holdings=NO_HOLDINGS,
                                nodes_by_id=by_id)
                placed.extend(e.node_id for e in schedule(js.evaluations[i], snap).new_executions)
            return placed
        for i in range(count):
            job = js.jobs[i]
            holdings = index.for_job(job)
            snap = Snapshot(job=job, executions=(), nodes=nodes, now_ns=NOW_NS, holdings=holdings, nodes_by_id=by_id)
            created = schedule(js.evaluations[i], snap).new_executions
            for execution in created:
                index.expect(execution.node_id, holdings.keys)  # the keys for_job computed, as the worker
            placed.extend(e.node_id for e in created)
        self.settle()
        return placed

    def settle(self) -> None:
        """Let the round's expectations lapse (the next lookup expires them), as 300 s later they would."""
        if self.index is not None:
            self.clock.now += DEFAULT_EXPECT_TTL_S + 1
            self.index.for_job(self.js.jobs[0])


def build_cases(fleet: Fleet, count: int, seed: int) -> tuple[list[Case], Fed]:
    """The four cases of the module docstring, their jobs, and the index fed with the nodes' reports."""
    if len(fleet.eligible) < 12:
        raise SystemExit(f"only {len(fleet.eligible)} eligible nodes: use more --nodes (at least 100)")
    rng = random.Random(seed + 1)
    sets = {name: build_jobs(fleet, count, share, rng, first=k * count) for k, (name, share) in
            enumerate(HOLDERS.items())}
    fed = feed_index(fleet, list(sets.values()), seed)
    pct = {name: f"{100 * share:.0f} %" for name, share in HOLDERS.items()}
    cases = [
        Case(BASELINE, "ranking off: no lookup, no expect", sets["on"], None, fed.clock),
        Case("on", f"ranking on, {pct['on']} of nodes hold inputs", sets["on"], fed.index, fed.clock),
        Case("on-cold", "ranking on, no node holds inputs", sets["on-cold"], fed.index, fed.clock),
        Case("on-many-holders", f"ranking on, {pct['on-many-holders']} hold inputs", sets["on-many-holders"],
             fed.index, fed.clock),
    ]
    return cases, fed


def on_holder_share(c: Case, placed: list[str]) -> float:
    """The share of these placements (one per job, in order) on a node holding one of the job's inputs."""
    hits = sum(node_id in holders for node_id, holders in zip(placed, c.js.holders, strict=False))
    return hits / max(1, len(placed))


def measure(cases: list[Case], nodes: tuple[NodeState, ...], *, evaluations: int, repeats: int,
            budget_s: float) -> None:
    """Round by round, each case `evaluations` times (fewer for a slow case: `budget_s` per case in all)."""
    for c in cases:  # warm up (the first evaluations fill caches), and size the rounds
        c.run_round(nodes, 3)
        t0 = time.perf_counter()
        c.run_round(nodes, 5)
        per_eval_s = (time.perf_counter() - t0) / 5
        c.evaluations = max(5, min(evaluations, int(budget_s / repeats / max(per_eval_s, 1e-9))))
    for _ in range(repeats):
        for c in cases:
            gc.collect()
            t0 = time.perf_counter()
            placed = c.run_round(nodes, c.evaluations)
            c.rounds_s.append(time.perf_counter() - t0)
            if len(placed) != c.evaluations:  # after the clock: costs nothing measured
                raise SystemExit(f"{c.name}: placed {len(placed)} in {c.evaluations} evaluations, expected one each")
            c.on_holder.append(on_holder_share(c, placed))
            c.last_placed = placed


def per_call_us(fn: Callable[[], None], calls: int, rounds: int = 3) -> float:
    """Median over `rounds` of fn's time divided by `calls` (the calls it makes), in microseconds."""
    times = []
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times) / max(1, calls)


def measure_parts(cases: list[Case]) -> None:
    """For the ranking-on cases: the lookup alone (for_job), and the keys + expect after a placement alone."""
    for c in cases:
        index = c.index
        if index is None:
            continue
        jobs = c.js.jobs[:c.evaluations]
        placed = c.last_placed

        def lookups(index: HoldingsIndex = index, jobs: list[Job] = jobs) -> None:
            for job in jobs:
                index.for_job(job)

        def expects(c: Case = c, index: HoldingsIndex = index, jobs: list[Job] = jobs,
                    placed: list[str] = placed) -> None:
            for job, node_id in zip(jobs, placed, strict=True):
                index.expect(node_id, job_input_keys(job))
            c.settle()

        c.lookup_us = per_call_us(lookups, len(jobs))
        c.expect_us = per_call_us(expects, len(jobs))


def evals_per_s(c: Case) -> float:
    """The median round's rate."""
    return statistics.median(c.evaluations / s for s in c.rounds_s)


def print_table(cases: list[Case], fleet: Fleet, fed: Fed) -> dict[str, object]:
    """The table, ratios to ranking off; returns the JSON summary."""
    base = next(c for c in cases if c.name == BASELINE)
    base_pps = evals_per_s(base)
    print(f"\nScheduler placements over {len(fleet.nodes)} nodes ({len(fleet.eligible)} eligible: engine {ENGINE}, "
          f"zone=eu, fit 1 CPU / 2 GB, connected, approved); batch Count=1, 2 inputs (urlDownload, s3) each")
    head = (f"  {'case':<16} {'scheduling':<38} {'evals':>5} {'evals/s':>8} {'ms/eval':>8} {'placements/s':>12} "
            f"{'ratio':>7} {'cost':>7} {'lookup':>9} {'expect':>9} {'on holder':>9}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    summary: dict[str, object] = {}
    for c in cases:
        eps = evals_per_s(c)
        ratio = eps / base_pps
        cost = (1 - ratio) * 100
        holder = statistics.median(c.on_holder)
        ranked = c.index is not None
        lookup = f"{c.lookup_us:7.1f}us" if ranked else f"{'-':>9}"
        expect = f"{c.expect_us:7.1f}us" if ranked else f"{'-':>9}"
        hit = f"{100 * holder:8.1f}%" if c.name != "on-cold" else f"{'-':>9}"
        cost_s = f"{cost:6.1f}%" if c.name != BASELINE else f"{'-':>7}"
        print(f"  {c.name:<16} {c.what:<38} {c.evaluations:>5} {eps:>8.0f} {1000 / eps:>8.3f} {eps:>12.0f} "
              f"{ratio:>6.3f}x {cost_s} {lookup} {expect} {hit}")
        summary[c.name] = {
            "evals_s": round(eps, 1), "placements_s": round(eps, 1), "ms_per_eval": round(1000 / eps, 4),
            "ratio": round(ratio, 4), "cost_pct": round(cost, 2),
            **({"lookup_us": round(c.lookup_us, 2), "expect_us": round(c.expect_us, 2)} if ranked else {}),
            **({"on_holder": round(holder, 4)} if c.name != "on-cold" else {}),
        }
    spread = max((max(c.rounds_s) / min(c.rounds_s) for c in cases), default=1.0)
    print(f"  (median of {len(base.rounds_s)} rounds, cases interleaved; widest spread between a case's rounds "
          f"{spread:.2f}x; cost = 1 - ratio; lookup = for_job alone, expect = job_input_keys + expect alone, per "
          "evaluation; on holder = placements on a node reporting one of the job's inputs)")
    free_holders = free_eligible_holders(fleet, base.js)
    print(f"  jobs of off/on with a free eligible node holding an input: {100 * free_holders:.1f} % "
          "(what bounds on's on-holder share)")
    print(f"  HoldingsIndex: {fed.pairs:,} (key, node) pairs from {len(fleet.nodes)} reports of "
          f"{MAX_REPORTED_ENTRIES} entries ({fed.truncated} truncated): {fed.bytes / 1e6:.1f} MB retained "
          f"(tracemalloc), {fed.bytes / max(1, fed.pairs):.0f} B a pair; fed in {fed.seconds:.1f}s under tracemalloc")
    summary["_index"] = {"pairs": fed.pairs, "bytes": fed.bytes, "bytes_per_pair": round(fed.bytes / max(1, fed.pairs)),
                         "truncated_reports": fed.truncated}
    summary["_jobs_with_free_eligible_holder"] = round(free_holders, 4)
    return summary


def free_eligible_holders(fleet: Fleet, js: JobSet) -> float:
    """The share of jobs at least one of whose holders could run them and has a free slot."""
    eligible = set(fleet.eligible)
    free = {n.info.node_id for n in fleet.nodes
            if (info := n.info.compute_node_info) is not None and info.enqueued_executions == 0
            and info.queue_capacity.is_zero()}
    usable = eligible & free
    return sum(bool(usable.intersection(h)) for h in js.holders) / max(1, len(js.holders))


def profile(c: Case, nodes: tuple[NodeState, ...], evaluations: int, top: int = 30) -> None:
    """cProfile of one round of `evaluations` evaluations of one case, by own time and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    c.run_round(nodes, evaluations)
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\ncProfile of {c.name}, {evaluations} evaluations, by {order}:")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:7000])


def main(argv: list[str]) -> int:
    """Build the fleet, the jobs and the index, measure, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000,
                        help=f"simulated nodes (default 1,000, at most {MAX_NODES:,})")
    parser.add_argument("--evaluations", type=int, default=500,
                        help=f"evaluations (jobs) per case per round (default 500, at most {MAX_EVALUATIONS:,})")
    parser.add_argument("--repeats", type=int, default=9, help=f"rounds; the median is shown (default 9, at most "
                                                                f"{MAX_REPEATS})")
    parser.add_argument("--budget-s", type=float, default=15.0,
                        help="time a case may take over all rounds; a slower one runs fewer evaluations per round "
                             "(default 15 s)")
    parser.add_argument("--seed", type=int, default=7, help="the fleet's and the jobs' random seed (default 7)")
    parser.add_argument("--profile", metavar="CASE", default="",
                        help="after the table, cProfile one round of CASE (off, on, on-cold, on-many-holders)")
    args = parser.parse_args(argv)
    evaluations = max(5, min(args.evaluations, MAX_EVALUATIONS))
    repeats = max(1, min(args.repeats, MAX_REPEATS))
    started = time.perf_counter()
    fleet = build_fleet(max(1, min(args.nodes, MAX_NODES)), seed=args.seed)
    cases, fed = build_cases(fleet, evaluations, args.seed)
    if args.profile and args.profile not in {c.name for c in cases}:
        parser.error(f"--profile: unknown case {args.profile!r} (one of: {', '.join(c.name for c in cases)})")
    print(f"built {len(fleet.nodes)} nodes, {len(cases) - 1} x {evaluations} jobs and the index in "
          f"{time.perf_counter() - started:.1f}s")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    measure(cases, fleet.nodes, evaluations=evaluations, repeats=repeats, budget_s=args.budget_s)
    measure_parts(cases)
    cpu_share = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    summary = print_table(cases, fleet, fed)
    # Wall-clock rates: on a busy machine they fall with this share, the ratios (interleaved rounds) much less.
    print(f"  this process had {100 * cpu_share:.0f} % of a core while measuring (other load on the machine "
          "lowers every rate alike)")
    if args.profile:
        chosen = next(c for c in cases if c.name == args.profile)
        profile(chosen, fleet.nodes, chosen.evaluations)
    print(f"  total {time.perf_counter() - started:.1f}s")
    print(json.dumps({"bench": "scheduler_locality", "nodes": len(fleet.nodes), "eligible": len(fleet.eligible),
                      "evaluations": evaluations, "repeats": repeats, "cpu_share": round(cpu_share, 2),
                      "baseline": BASELINE, "target_cost_pct": 20, "cases": summary},
                     separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
