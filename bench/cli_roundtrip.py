"""How long `bacalhau wasm run hello.wasm` takes end to end, next to the cost of starting Python at all.

    .venv/bin/python bench/cli_roundtrip.py --runs 20

Against a hybrid node started as a subprocess, each run is a whole CLI process: start, submit the module
inline, wait, print the job's output, exit. Side by side, in the same run: `python -c pass` (the floor
any Python CLI pays) and `bacalhau version --client` (the CLI's own import cost, no server call).
Prints medians and ratios. Target (issue 17): the round trip <= 200 ms. No assertion: this is a measurement.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hybrid_node import ROOT, HybridNode, bacalhau_bin, hello_module, median_ms, print_table

TARGET_MS = 200.0


def timed_command(cmd: list[str], env: dict[str, str], runs: int, warmup: int, expect: str = "") -> list[float]:
    """Wall-clock seconds of `runs` executions of `cmd` (process start to exit, output read)."""
    samples = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if result.returncode != 0 or expect not in result.stdout + result.stderr:
            raise SystemExit(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        if i >= warmup:
            samples.append(elapsed)
    return samples


def hello_wasm_file(tmp: Path) -> tuple[Path, str]:
    """The module `bacalhau wasm run` is timed with, and a line of what it prints: examples/hello.wasm when
    built, else examples/hello.wat compiled into `tmp`."""
    built = ROOT / "examples" / "hello.wasm"
    if built.exists():
        return built, "Hello from bacalhau-py WASM!"
    module = tmp / "hello.wasm"  # no clang build yet: the WAT hello works just as well
    module.write_bytes(hello_module())
    return module, "Hello from a Bacalhau WASM job!"


def main(argv: list[str]) -> int:
    """Time the three commands and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    args = parser.parse_args(argv)

    bacalhau = str(bacalhau_bin())
    with tempfile.TemporaryDirectory() as tmp, HybridNode() as node:
        module, expect = hello_wasm_file(Path(tmp))
        env = node.env
        python = timed_command([sys.executable, "-c", "pass"], env, args.runs, args.warmup)
        version = timed_command([bacalhau, "version", "--client"], env, args.runs, args.warmup)
        roundtrip = timed_command([bacalhau, "wasm", "run", str(module)], env, args.runs, args.warmup, expect)

    print_table(
        f"CLI round trip against a local hybrid node, {args.runs} runs each ({args.warmup} warm-up)",
        [
            ("python -c pass", python),
            ("bacalhau version --client", version),
            (f"bacalhau wasm run {module.name} (submit, wait, print output)", roundtrip),
        ],
    )
    base, value = median_ms(python), median_ms(roundtrip)
    print(f"  wasm run vs python -c pass: +{value - base:.1f} ms (ratio {value / base:.1f}x)")
    verdict = "meets" if value <= TARGET_MS else "misses"
    print(f"  target: round trip <= {TARGET_MS:.0f} ms -> median {value:.0f} ms {verdict} it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
