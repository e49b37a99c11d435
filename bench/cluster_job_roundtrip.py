"""A trivial WASM job, submit -> Completed, through a real cluster vs a hybrid node vs the pre-NATS hybrid node.

    .venv/bin/python bench/cluster_job_roundtrip.py --runs 20
    .venv/bin/python bench/cluster_job_roundtrip.py --quick       # 5 runs

Three setups, all started as subprocesses at the beginning and measured in turns (a, b, c, a, b, c ...)
so that the machine's other load falls on all three alike:
  (a) cluster   `serve --orchestrator` + a compute-only `serve --compute` joining it over NATS (2 processes);
  (b) hybrid    `serve --orchestrator --compute` of this tree (one process; its own compute is
                linked in process, transport/local_link.py: the NATS path is (a));
  (c) baseline  the hybrid node of commit 02a4aab, the last one before NATS (orchestrator and compute
                linked in-process), from a temporary `git worktree` run with this venv through
                PYTHONPATH=<worktree>/src (checked before use; the worktree is removed at exit).
The job is tests/wasm/build/hello.wasm (prints one line) carried inline, as bench/wasm_overhead.py does.
Each run: PUT /api/v1/orchestrator/jobs, then poll GET /jobs/:id until terminal (client round trip),
plus the job's own CreateTime -> ModifyTime (server side). Medians and p90 over --runs, the
difference and the ratio to (c). No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from hybrid_node import ROOT, ApiJobs, hello_module, inline_wasm_job, median_ms, print_table

from cluster_env import ServeProcess, children

PRE_NATS_COMMIT = "02a4aab"
HELLO_WASM = ROOT / "tests" / "wasm" / "build" / "hello.wasm"


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A detached `git worktree` of `commit` in a temp dir; yields its `src` and removes it at exit."""
    base = Path(tempfile.mkdtemp(prefix="bench-pre-nats-"))
    tree = base / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                   check=True, capture_output=True)
    try:
        yield tree / "src"
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)


def check_imports_from(src: Path) -> None:
    """Make sure PYTHONPATH=<src> really runs that tree's `bacalhau`, not this one's."""
    out = subprocess.run(
        [sys.executable, "-c", "import bacalhau; print(bacalhau.__file__)"],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"PYTHONPATH={src} still imports {out}: cannot run the pre-NATS commit")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wasm_module() -> bytes:
    """tests/wasm/build/hello.wasm, or examples/hello.wat compiled when the test build is absent."""
    return HELLO_WASM.read_bytes() if HELLO_WASM.is_file() else hello_module()


def main(argv: list[str]) -> int:
    """Start the three setups, time the job in turns, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per setup (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="client poll interval for job state (default 1)")
    parser.add_argument("--quick", action="store_true", help="5 runs, 1 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 5, 1
    job = inline_wasm_job(wasm_module())

    with contextlib.ExitStack() as stack:
        src = stack.enter_context(worktree(PRE_NATS_COMMIT))
        check_imports_from(src)
        orch = stack.enter_context(ServeProcess(orchestrator=True))
        compute = stack.enter_context(ServeProcess(compute=True, orchestrators=[orch.nats_url], name="bench-compute"))
        hybrid = stack.enter_context(ServeProcess(orchestrator=True, compute=True))
        legacy = stack.enter_context(ServeProcess(orchestrator=True, compute=True, python_path=str(src)))
        orch.wait_for_nodes([compute.name or ""])
        hybrid.wait_for_nodes(count=1)
        legacy.wait_for_nodes(count=1)
        if any(_comm(pid) == "nats-server" for pid in children(legacy.pid)):
            raise SystemExit(f"the {PRE_NATS_COMMIT} node started a nats-server: it is not running the pre-NATS tree")
        setups = {
            "(a) cluster: orchestrator + compute over NATS": orch,
            "(b) hybrid node (in-process link)": hybrid,
            f"(c) hybrid node of {PRE_NATS_COMMIT} (in-process, pre-NATS)": legacy,
        }
        runners = {}
        for name, node in setups.items():
            http = stack.enter_context(httpx.Client(base_url=node.url, timeout=30.0))
            runners[name] = ApiJobs(http, job, args.poll_ms / 1000.0)
        client: dict[str, list[float]] = {name: [] for name in setups}
        for i in range(args.warmup + args.runs):
            for name, run in runners.items():
                start = time.perf_counter()
                run()
                if i >= args.warmup:
                    client[name].append(time.perf_counter() - start)
        server = {name: run.server_side_s[args.warmup:] for name, run in runners.items()}

    rows = [(f"{name}: client round trip", client[name]) for name in setups]
    rows += [(f"{name}: server side", server[name]) for name in setups]
    print_table(f"WASM hello job, submit -> Completed: {args.runs} runs each ({args.warmup} warm-up), in turns", rows)
    names = list(setups)
    base_name = names[-1]
    for kind, samples in (("client round trip", client), ("server side", server)):
        base = median_ms(samples[base_name])
        for name in names[:-1]:
            value = median_ms(samples[name])
            print(f"  {name[:3]} vs (c), {kind:<17}: {value - base:+8.2f} ms  (ratio {value / base:5.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
