"""A trivial WASM job on two hybrid nodes side by side, jobs alternating: this checkout against another one.

    .venv/bin/python bench/wasm_ab.py --against /path/to/other/checkout [--runs 300] [--rounds 2] [--blocks --pause-ms 2]
    .venv/bin/python bench/wasm_ab.py --b-config Compute.SeparateProcess=true   # this checkout, two configs

Two `bacalhau serve --orchestrator --compute` nodes run at once: A with the other checkout's `src` first
on PYTHONPATH (its code), B with this one's. The same job (bench/hybrid_node.py's `inline_wasm_job` of
examples/hello.wat) goes to A and B in turn, `--runs` times each, A first on even runs and B first on odd
ones, each waited for as the CLI waits (ApiJobs). Printed per round: both nodes' medians of the server
side (CreateTime -> ModifyTime) and of the client round trip (PUT -> sees Completed), B's change in %,
and the requests each job took.

Why side by side: on a small VM the speed of the same code drifts by 10-30 % from one minute to the
next (other tenants, the disk, the CPU's clock), more than most single changes are worth. Runs that
alternate see the same drift, so the difference between A and B is what the code changed. Alternating
job by job hides a gain made while a node is idle (work done ahead in a thread, such as results folders
made ahead): the other node's job runs in that time and competes for the CPU and the disk. For such a
change, `--blocks --pause-ms 2` runs each node's jobs as a block while the other node idles, the order
flipping per round (use 4 rounds or more: blocks see more of the drift). A checkout
made with `git worktree add /tmp/old <commit>` (then `.venv/bin/python -m compileall -q /tmp/old/src`,
so that neither node compiles its modules at start) is the usual "other". No assertion: a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
from hybrid_node import ApiJobs, HybridNode, hello_module, inline_wasm_job


class _NodeOf(HybridNode):
    """A hybrid node whose Python code comes from `src` (put first on PYTHONPATH)."""

    def __init__(self, src: Path, config: list[str]) -> None:
        super().__init__(extra_config=config)
        self._src = src

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env["PYTHONPATH"] = str(self._src)
        return env


class _Counted:
    """An httpx event hook counting the requests a client makes."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, _request: httpx.Request) -> None:
        self.n += 1


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def _round(
    a: HybridNode, b: HybridNode, wasm: bytes, runs: int, warmup: int, *, blocks: bool, pause_s: float, flip: bool
) -> dict[str, dict[str, float]]:
    counters = {"A": _Counted(), "B": _Counted()}
    with httpx.Client(base_url=a.url, timeout=30.0, event_hooks={"request": [counters["A"]]}) as http_a, \
         httpx.Client(base_url=b.url, timeout=30.0, event_hooks={"request": [counters["B"]]}) as http_b:
        jobs = {"A": ApiJobs(http_a, inline_wasm_job(wasm), 0.0), "B": ApiJobs(http_b, inline_wasm_job(wasm), 0.0)}
        for _ in range(warmup):
            jobs["A"]()
            jobs["B"]()
        for name in jobs:
            jobs[name].server_side_s.clear()
            counters[name].n = 0
        client: dict[str, list[float]] = {"A": [], "B": []}
        if blocks:  # all of one node's jobs, then all of the other's (the first flips from round to round)
            order = [name for name in (("B", "A") if flip else ("A", "B")) for _ in range(runs)]
        else:  # alternating job by job, A first on even runs
            order = [name for i in range(runs) for name in (("A", "B") if i % 2 == 0 else ("B", "A"))]
        for name in order:
            start = time.perf_counter()
            jobs[name]()
            client[name].append(time.perf_counter() - start)
            if pause_s:
                time.sleep(pause_s)
    return {
        name: {"server": _median_ms(jobs[name].server_side_s), "client": _median_ms(client[name]),
               "requests": counters[name].n / runs}
        for name in ("A", "B")
    }


def main(argv: list[str]) -> int:
    """Start both nodes, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the other checkout (its src/ runs node A; default: this one)")
    parser.add_argument("--a-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a -c setting for node A only (repeatable): compare two configs of one checkout")
    parser.add_argument("--b-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a -c setting for node B only (repeatable)")
    parser.add_argument("--runs", type=int, default=300, help="jobs per node per round (default 300)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each with both nodes (default 2)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed jobs per node first (default 10)")
    parser.add_argument("--blocks", action="store_true",
                        help="each round runs all of A's jobs, then all of B's (order flips per round), instead "
                             "of alternating job by job: for a change that works while its node is idle")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="idle time after each job (default 0)")
    args = parser.parse_args(argv)
    other_src = args.against.resolve() / "src"
    if not (other_src / "bacalhau").is_dir():
        raise SystemExit(f"{args.against} has no src/bacalhau: give the root of another checkout")
    this_src = Path(__file__).resolve().parent.parent / "src"
    wasm = hello_module()
    print(f"A: {other_src} {' '.join(args.a_config)}\nB: {this_src} (this checkout) {' '.join(args.b_config)}")
    print(f"  {'round':>5}  {'A server ms':>11}  {'B server ms':>11}  {'change':>7}  "
          f"{'A client ms':>11}  {'B client ms':>11}  {'change':>7}  {'requests/job A / B':>18}")
    with _NodeOf(other_src, args.a_config) as a, _NodeOf(this_src, args.b_config) as b:
        for n in range(1, args.rounds + 1):
            got = _round(a, b, wasm, args.runs, args.warmup if n == 1 else 0,
                         blocks=args.blocks, pause_s=args.pause_ms / 1000.0, flip=n % 2 == 0)
            ra, rb = got["A"], got["B"]
            print(f"  {n:>5}  {ra['server']:>11.2f}  {rb['server']:>11.2f}  {rb['server'] / ra['server'] - 1:>+7.1%}  "
                  f"{ra['client']:>11.2f}  {rb['client']:>11.2f}  {rb['client'] / ra['client'] - 1:>+7.1%}  "
                  f"{ra['requests']:>8.2f} / {rb['requests']:<8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
