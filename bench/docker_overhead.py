"""What a Bacalhau job adds to running a trivial container, measured side by side with raw Docker.

    .venv/bin/python bench/docker_overhead.py --runs 20

`echo hi` in bacalhau-test/busybox:latest (imported from Debian's busybox-static, as the tests do), each
way `--runs` times after `--warmup` untimed runs, interleaved round by round so that drift of the
machine affects every way alike:
  1. raw `docker run --rm IMAGE echo hi` (Debian's /usr/bin/docker, a subprocess);
  2. the same with the executor's lock-down flags (no network, no capabilities, no-new-privileges,
     pids limit), the closest raw equivalent of what the executor asks the engine for;
  3. the Docker SDK: `client.containers.run(IMAGE, ["echo", "hi"], remove=True)`;
  4. a job through the API of a hybrid node started as a subprocess: PUT /jobs, then poll GET /jobs/:id
     until it is terminal (the client-side round trip); the job's own CreateTime -> ModifyTime is
     reported too (the server side, without the client's polling).
Prints medians, the difference in ms and the ratio to each raw baseline. Target (issue): at most 1.10x
raw `docker run --rm`. The like-for-like baseline is the lock-down one: `--network none` alone saves
the bridge set-up (tens of ms), which plain `docker run --rm` pays and a job does not. No assertion: this is a measurement. Needs a Docker engine (bash scripts/services start).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from hybrid_node import ApiJobs, HybridNode, median_ms, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from docker_env import BUSYBOX_IMAGE, EngineUnavailable, connect_engine, docker_cli, ensure_busybox_image

TARGET_RATIO = 1.10
LOCKED_DOWN_FLAGS = ["--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", "1024"]


def docker_job(image: str) -> dict[str, object]:
    """A batch docker job running `echo hi` (no publisher: nothing to upload)."""
    return {
        "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": image, "Parameters": ["echo", "hi"]}}}],
    }


def raw_cli(image: str, flags: list[str]) -> Callable[[], None]:
    """`docker run --rm [flags] IMAGE echo hi` as a subprocess; fails loudly on a wrong answer."""
    cmd = [docker_cli(), "run", "--rm", *flags, image, "echo", "hi"]

    def run() -> None:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        if out.returncode != 0 or out.stdout != "hi\n":
            raise SystemExit(f"{' '.join(cmd)} -> {out.returncode}: {out.stdout!r} {out.stderr!r}")

    return run


def raw_sdk(client: object, image: str) -> Callable[[], None]:
    """`client.containers.run(IMAGE, ["echo", "hi"], remove=True)`."""
    import docker

    assert isinstance(client, docker.DockerClient)

    def run() -> None:
        out = client.containers.run(image, ["echo", "hi"], remove=True)
        if out != b"hi\n":
            raise SystemExit(f"SDK run printed {out!r}")

    return run




def interleaved(ways: list[Callable[[], None]], runs: int, warmup: int) -> list[list[float]]:
    """Wall-clock seconds of each way, `runs` rounds of one call each after `warmup` untimed rounds."""
    for _ in range(warmup):
        for way in ways:
            way()
    samples: list[list[float]] = [[] for _ in ways]
    for _ in range(runs):
        for index, way in enumerate(ways):
            start = time.perf_counter()
            way()
            samples[index].append(time.perf_counter() - start)
    return samples


def main(argv: list[str]) -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="client poll interval for job state (default 2)")
    args = parser.parse_args(argv)

    try:
        client = connect_engine()
        image = ensure_busybox_image(client, BUSYBOX_IMAGE)
    except EngineUnavailable as exc:
        raise SystemExit(f"no Docker engine: {exc}") from exc

    with HybridNode() as node, httpx.Client(base_url=node.url, timeout=30.0) as http:
        jobs = ApiJobs(http, docker_job(image), args.poll_ms / 1000.0)
        cli, locked, sdk, api = interleaved(
            [raw_cli(image, []), raw_cli(image, LOCKED_DOWN_FLAGS), raw_sdk(client, image), jobs], args.runs, args.warmup
        )
        server_side = jobs.server_side_s[args.warmup:]
    client.close()

    print_table(
        f"Docker job overhead: `echo hi` in {image}, {args.runs} runs each ({args.warmup} warm-up rounds, interleaved)",
        [
            (f"raw `{docker_cli()} run --rm`", cli),
            ("raw `docker run --rm` + lock-down flags", locked),
            ("Docker SDK containers.run(remove=True)", sdk),
            ("API job: PUT -> client sees Completed", api),
            ("API job: server-side CreateTime -> ModifyTime", server_side),
        ],
    )
    for base_name, base_samples in (("docker run --rm", cli), ("lock-down docker run", locked), ("SDK run", sdk)):
        base = median_ms(base_samples)
        for name, samples in (("client round trip", api), ("server side", server_side)):
            value = median_ms(samples)
            print(f"  {name:<18} vs {base_name:<21}: {value - base:+8.1f} ms  (ratio {value / base:5.2f}x)")
    for base_name, base_samples in (("raw `docker run --rm`", cli), ("the lock-down `docker run` (like for like)", locked)):
        ratio = median_ms(api) / median_ms(base_samples)
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        print(f"  target: at most {TARGET_RATIO:.2f}x {base_name} -> the API round trip {verdict} it ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
