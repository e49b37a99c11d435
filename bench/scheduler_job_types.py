"""Scheduler evaluations per second for each job type over 1,000 simulated nodes, vs batch Count=1.

    .venv/bin/python bench/scheduler_job_types.py [--nodes 1000] [--evaluations 200] [--repeats 5]
    .venv/bin/python bench/scheduler_job_types.py --profile ops-fresh     # + cProfile of one type

The scheduler is a pure function (orchestrator/scheduler/schedule.py: evaluation + Snapshot -> Plan), so
this bench calls it directly, in this process, with no store, broker or transport: what it measures is
the decision alone. One fleet of `--nodes` NodeStates in node-ID order (as NodeManager.list hands them
over), varied the way a real fleet is (seeded, so every run sees the same one):
    10 % without the job's engine (wasm)       ~50 % with label zone=eu (the jobs' constraint)
     5 % too small for the job (1 CPU, 2 GB)     2 % disconnected, 1 % not approved yet
    capacities of 2-16 CPU / 4-32 GB, part of them in use; 0-3 executions queued (what ranking reads)
and, over that fleet, one evaluation per case:
    batch-1          batch Count=1, fresh (the baseline: what the cluster placements bench pays per job)
    batch-10         batch Count=10, fresh
    service-10       service Count=10, fresh
    ops-fresh        ops, fresh: one execution on every eligible node
    daemon-fresh     daemon, fresh: one execution on every eligible node
    daemon-join      daemon, steady state: executions on every eligible node, one more node joins (the
                     node-join evaluation places one)
    service-replace  service Count=10, one replica exited a minute ago (its replacement evaluation)
    batch-retry      batch Count=1, its execution failed a minute ago, retryable (the retry evaluation)

Each case runs `--repeats` rounds of `--evaluations` evaluations (time.perf_counter around the round),
the cases interleaved round by round so that the machine's other load falls on all of them alike.
Evaluations/s is the median of the rounds; ratios are to batch-1 measured in the same run. Placements/s
= evaluations/s x executions placed per evaluation. The per-node cases (ops, daemon) must look at every
node, so their cost is also given per node (us per node per evaluation). A case whose evaluation is slow
runs fewer evaluations per round (`--budget-s`), so the whole run stays within about two minutes.
No target, no assertion: the figures are for the notes (the JSON line at the end).
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
import uuid
from dataclasses import dataclass, field

from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import DesiredState, Execution, ExecutionState
from bacalhau.models.job import InputSource, Job, JobState, LabelSelectorRequirement, SpecConfig, Task
from bacalhau.models.node import ComputeNodeInfo, ConnectionStatus, Membership, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.state import (
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobStateType,
)
from bacalhau.orchestrator.scheduler.plan import Snapshot
from bacalhau.orchestrator.scheduler.schedule import schedule

NOW_NS = 1_800_000_000 * 1_000_000_000
SECOND_NS = 1_000_000_000
GIB = 1024**3
ENGINE = "wasm"
BASELINE = "batch-1"
PER_NODE = ("ops-fresh", "daemon-fresh", "daemon-join")
MAX_EVALUATIONS = 10_000  # bounds --evaluations: a round never runs away
MAX_REPEATS = 50


@dataclass
class Fleet:
    """The simulated nodes, in node-ID order, and which of them can run the bench's jobs."""

    nodes: tuple[NodeState, ...]
    eligible: list[str]


def build_fleet(count: int, seed: int = 7) -> Fleet:
    """`count` nodes with varied labels, engines, capacities and states (see the module docstring)."""
    rng = random.Random(seed)
    nodes: list[NodeState] = []
    eligible: list[str] = []
    for i in range(count):
        node_id = f"n-{uuid.UUID(int=rng.getrandbits(128))}"
        has_engine = rng.random() >= 0.10
        in_eu = rng.random() < 0.5
        small = rng.random() < 0.05
        roll = rng.random()
        connected, approved = roll >= 0.02, not 0.02 <= roll < 0.03
        cpu = 0.5 if small else float(rng.choice((2, 4, 8, 16)))
        memory = 1 * GIB if small else rng.choice((4, 8, 16, 32)) * GIB
        used = rng.random() * 0.8
        cap = Resources(CPU=cpu, Memory=memory, Disk=200 * GIB)
        free = Resources(CPU=round(cpu * (1 - used), 2), Memory=int(memory * (1 - used)), Disk=150 * GIB)
        labels = {
            "zone": "eu" if in_eu else "us",
            "arch": rng.choice(("amd64", "arm64")),
            "rack": f"r{i % 40:02d}",
            "tier": rng.choice(("spot", "on-demand", "reserved")),
            "team": rng.choice(("ml", "etl", "web", "research")),
        }
        engines = ["docker", ENGINE, "noop"] if has_engine else ["docker", "noop"]
        info = NodeInfo(
            NodeID=node_id,
            Labels=labels,
            ComputeNodeInfo=ComputeNodeInfo(
                ExecutionEngines=engines,
                Publishers=["local", "noop", "s3", "ipfs"],
                StorageSources=["inline", "local", "urlDownload", "s3", "ipfs"],
                MaxCapacity=cap,
                AvailableCapacity=free,
                RunningExecutions=rng.randint(0, 8),
                EnqueuedExecutions=rng.choice((0, 0, 0, 1, 2, 3)),
            ),
        )
        state = NodeState(Info=info, Membership=Membership.APPROVED if approved else Membership.PENDING)
        if not connected:
            state.connection_state.status = ConnectionStatus.DISCONNECTED
        nodes.append(state)
        if has_engine and in_eu and not small and connected and approved:
            eligible.append(node_id)
    nodes.sort(key=lambda n: n.info.node_id)
    return Fleet(nodes=tuple(nodes), eligible=sorted(eligible))


def build_job(job_type: str, *, count: int | None, state: JobStateType = JobStateType.Pending) -> Job:
    """A WASM job of `job_type` constrained to zone=eu, 1 CPU / 2 GB, one URL input, published locally."""
    task = Task(
        Name="main",
        Engine=SpecConfig(Type=ENGINE, Params={"EntryModule": "/app/main.wasm"}),
        Publisher=SpecConfig(Type="local"),
        InputSources=[InputSource(Source=SpecConfig(Type="urlDownload", Params={"URL": "https://example.com/in.csv"}),
                                  Target="/inputs")],
    )
    task.resources.cpu = "1"
    task.resources.memory = "2gb"
    return Job(
        ID=f"j-{uuid.uuid4()}", Name=f"bench-{job_type}", Namespace="default", Type=job_type, Count=count,
        Constraints=[LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])],
        Tasks=[task], State=JobState(StateType=state), Version=1, CreateTime=NOW_NS - 300 * SECOND_NS,
    )


def build_execution(job: Job, node_id: str, state: ExecutionStateType, *, partition: int = 0,
                    retryable: bool = False, ended_s_ago: int = 60) -> Execution:
    """An execution of `job` on `node_id`; a terminal one ended `ended_s_ago` (past the default backoff)."""
    created = NOW_NS - 600 * SECOND_NS
    return Execution(
        ID=f"e-{uuid.uuid4()}", Namespace=job.namespace, JobID=job.id, NodeID=node_id, JobVersion=job.version,
        PartitionIndex=partition,
        ComputeState=ExecutionState(StateType=state, Details={"Retryable": "true"} if retryable else {}),
        DesiredState=DesiredState(StateType=ExecutionDesiredStateType.Running),
        CreateTime=created, ModifyTime=NOW_NS - ended_s_ago * SECOND_NS if state.is_terminal else created,
    )


@dataclass
class Case:
    """One evaluation to repeat: its snapshot, and how many executions it must place."""

    name: str
    what: str
    evaluation: Evaluation
    snapshot: Snapshot
    expected: int
    rounds_s: list[float] = field(default_factory=list)
    evaluations: int = 0

    def run(self) -> int:
        """One evaluation; the number of executions it placed."""
        return len(schedule(self.evaluation, self.snapshot).new_executions)


def build_cases(fleet: Fleet) -> list[Case]:
    """The eight cases of the module docstring, over `fleet`."""
    eligible = fleet.eligible
    if len(eligible) < 12:
        raise SystemExit(f"only {len(eligible)} eligible nodes: use more --nodes (at least 100)")

    def case(name: str, what: str, job: Job, executions: list[Execution], expected: int,
             trigger: EvaluationTrigger = EvaluationTrigger.JobRegister) -> Case:
        evaluation = Evaluation(ID=f"ev-{uuid.uuid4()}", Namespace=job.namespace, JobID=job.id, TriggeredBy=trigger,
                                Type=job.type, CreateTime=NOW_NS, ModifyTime=NOW_NS)
        snap = Snapshot(job=job, executions=tuple(executions), nodes=fleet.nodes, now_ns=NOW_NS)
        return Case(name, what, evaluation, snap, expected)

    # Steady state of a daemon: it runs on every eligible node but one, which joins now (mid-fleet).
    daemon = build_job("daemon", count=None, state=JobStateType.Running)
    joiner = eligible[len(eligible) // 2]
    running = [build_execution(daemon, n, ExecutionStateType.Running) for n in eligible if n != joiner]
    # A service at Count=10 with replica 3 exited a minute ago; a batch job whose one execution failed.
    service = build_job("service", count=10, state=JobStateType.Running)
    replicas = [build_execution(service, n, ExecutionStateType.Running, partition=p) for p, n in enumerate(eligible[:10])]
    replicas[3] = build_execution(service, eligible[3], ExecutionStateType.Completed, partition=3)
    retried = build_job("batch", count=1, state=JobStateType.Running)
    failed = [build_execution(retried, eligible[0], ExecutionStateType.Failed, retryable=True)]
    return [
        case(BASELINE, "batch Count=1, fresh", build_job("batch", count=1), [], 1),
        case("batch-10", "batch Count=10, fresh", build_job("batch", count=10), [], 10),
        case("service-10", "service Count=10, fresh", build_job("service", count=10), [], 10),
        case("ops-fresh", "ops, fresh: every eligible node", build_job("ops", count=None), [], len(eligible)),
        case("daemon-fresh", "daemon, fresh: every eligible node", build_job("daemon", count=None), [], len(eligible)),
        case("daemon-join", f"daemon on {len(running)} nodes, 1 joins", daemon, running, 1, EvaluationTrigger.NodeJoin),
        case("service-replace", "service Count=10, 1 replica ended", service, replicas, 1,
             EvaluationTrigger.ExecFailure),
        case("batch-retry", "batch Count=1, retryable failure", retried, failed, 1, EvaluationTrigger.ExecFailure),
    ]


def check(cases: list[Case]) -> None:
    """Each case places what it should, and again on a second run (the snapshot is not changed by it)."""
    for c in cases:
        for _ in range(2):
            placed = c.run()
            if placed != c.expected:
                plan = schedule(c.evaluation, c.snapshot)
                raise SystemExit(f"{c.name}: placed {placed}, expected {c.expected} ({plan.comment!r}, "
                                 f"{plan.job_transition})")


def measure(cases: list[Case], *, evaluations: int, repeats: int, budget_s: float) -> None:
    """Round by round, each case `evaluations` times (fewer for a slow case: `budget_s` per case in all)."""
    for c in cases:  # warm up, and size the rounds
        t0 = time.perf_counter()
        for _ in range(3):
            c.run()
        per_eval_s = (time.perf_counter() - t0) / 3
        c.evaluations = max(5, min(evaluations, int(budget_s / repeats / max(per_eval_s, 1e-9))))
    for _ in range(repeats):
        for c in cases:
            gc.collect()
            placed = 0
            t0 = time.perf_counter()
            for _ in range(c.evaluations):
                placed += c.run()
            c.rounds_s.append(time.perf_counter() - t0)
            if placed != c.expected * c.evaluations:  # after the clock: costs nothing measured
                raise SystemExit(f"{c.name}: placed {placed} in {c.evaluations} evaluations, expected "
                                 f"{c.expected * c.evaluations}")


def evals_per_s(c: Case) -> float:
    """The median round's rate."""
    return statistics.median(c.evaluations / s for s in c.rounds_s)


def print_table(cases: list[Case], fleet: Fleet) -> dict[str, object]:
    """The table, ratios to the baseline; returns the JSON summary."""
    base = next(c for c in cases if c.name == BASELINE)
    base_eps = evals_per_s(base)
    base_pps = base_eps * base.expected
    nodes = len(fleet.nodes)
    print(f"\nScheduler evaluations over {nodes} nodes ({len(fleet.eligible)} eligible: engine {ENGINE}, zone=eu, "
          f"fit 1 CPU / 2 GB, connected, approved); baseline {BASELINE}")
    head = (f"  {'case':<16} {'evaluation':<34} {'evals':>5} {'placed':>6} {'evals/s':>9} {'ratio':>7} "
            f"{'ms/eval':>8} {'placements/s':>12} {'ratio':>7} {'us/node':>8}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    summary: dict[str, object] = {}
    for c in cases:
        eps = evals_per_s(c)
        pps = eps * c.expected
        us_node = 1e6 / eps / nodes
        per_node = f"{us_node:8.2f}" if c.name in PER_NODE else f"{'-':>8}"
        print(f"  {c.name:<16} {c.what:<34} {c.evaluations:>5} {c.expected:>6} {eps:>9.0f} {eps / base_eps:>6.3f}x "
              f"{1000 / eps:>8.3f} {pps:>12.0f} {pps / base_pps:>6.2f}x {per_node}")
        summary[c.name] = {
            "evals_s": round(eps, 1), "placed": c.expected, "placements_s": round(pps, 1),
            "ratio": round(eps / base_eps, 4), "ms_per_eval": round(1000 / eps, 4),
            **({"us_per_node": round(us_node, 3)} if c.name in PER_NODE else {}),
        }
    spread = max((max(c.rounds_s) / min(c.rounds_s) for c in cases), default=1.0)
    print(f"  (median of {len(base.rounds_s)} rounds, cases interleaved; widest spread between a case's rounds "
          f"{spread:.2f}x; us/node = the evaluation's time / {nodes} nodes)")
    return summary


def profile(c: Case, evaluations: int, top: int = 25) -> None:
    """cProfile of `evaluations` evaluations of one case, by own time and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(evaluations):
        c.run()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\ncProfile of {c.name}, {evaluations} evaluations, by {order}:")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def main(argv: list[str]) -> int:
    """Build the fleet and the cases, measure, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000, help="simulated nodes (default 1,000)")
    parser.add_argument("--evaluations", type=int, default=200,
                        help=f"evaluations per case per round (default 200, at most {MAX_EVALUATIONS:,})")
    parser.add_argument("--repeats", type=int, default=5, help=f"rounds; the median is shown (default 5, at most "
                                                                f"{MAX_REPEATS})")
    parser.add_argument("--budget-s", type=float, default=12.0,
                        help="time a case may take over all rounds; a slower one runs fewer evaluations per round "
                             "(default 12 s)")
    parser.add_argument("--seed", type=int, default=7, help="the fleet's random seed (default 7)")
    parser.add_argument("--profile", metavar="CASE", default="",
                        help="after the table, cProfile CASE (e.g. ops-fresh, daemon-join)")
    args = parser.parse_args(argv)
    evaluations = max(1, min(args.evaluations, MAX_EVALUATIONS))
    repeats = max(1, min(args.repeats, MAX_REPEATS))
    started = time.perf_counter()
    fleet = build_fleet(max(1, args.nodes), seed=args.seed)
    cases = build_cases(fleet)
    if args.profile and args.profile not in {c.name for c in cases}:
        parser.error(f"--profile: unknown case {args.profile!r} (one of: {', '.join(c.name for c in cases)})")
    check(cases)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    measure(cases, evaluations=evaluations, repeats=repeats, budget_s=args.budget_s)
    cpu_share = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    summary = print_table(cases, fleet)
    # Wall-clock rates: on a busy machine they fall with this share, the ratios (interleaved rounds) much less.
    print(f"  this process had {100 * cpu_share:.0f} % of a core while measuring (other load on the machine "
          "lowers every rate alike)")
    if args.profile:
        chosen = next(c for c in cases if c.name == args.profile)
        profile(chosen, min(chosen.evaluations, evaluations))
    print(f"  total {time.perf_counter() - started:.1f}s")
    print(json.dumps({"bench": "scheduler_job_types", "nodes": len(fleet.nodes), "eligible": len(fleet.eligible),
                      "evaluations": evaluations, "repeats": repeats, "cpu_share": round(cpu_share, 2),
                      "baseline": BASELINE, "cases": summary},
                     separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
