"""JobAdmissionControl.Locality on a real cluster (an orchestrator, two compute nodes, separate processes):
a node set to `local` takes only jobs whose every input it holds, and says so when it refuses.

    node-local (Locality=local, label site=edge)      node-any (Locality=anywhere, the default)
    job with a URL input, any node          ──> runs on node-any (node-local refuses: 1 input to download)
    job with a URL input, site=edge only    ──> Failed; the job says node-local "does not have all input
                                                data locally (1 of 2 inputs require downloading: ...)" (the module is inline)
    job with an allow-listed folder input   ──> node-local takes it (the folder is here)
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import EXEC_COMPLETED, JobWatch, job_executions, submit_file, wasm_job

from cluster_env import Cluster
from http_env import http_server

pytestmark = pytest.mark.scenario

WAIT_S = 60.0
PAYLOAD = b"sagres,19\n"


class _Payload(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with http_server(_Payload) as base:
        yield base + "/weather.csv"


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    (folder / "weather.csv").write_bytes(PAYLOAD)
    return folder


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, shared_folder: Path) -> Iterator[Cluster]:
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        allow = f"Compute.AllowListedLocalPaths={shared_folder}"
        made.add_compute("node-local", labels={"site": "edge"}, extra_config=["JobAdmissionControl.Locality=local", allow])
        made.add_compute("node-any", labels={"site": "core"}, extra_config=[allow])
        yield made
    finally:
        made.close()


def cat_job(wasm_modules: dict[str, Path], source: dict[str, Any], *, site: str | None = None) -> dict[str, Any]:
    job = wasm_job(wasm_modules["cat"], args=["/inputs/weather.csv"], publisher="noop",
                   extra_inputs=[{"Target": "/inputs", "Source": source}])
    if site:
        job["Constraints"] = [{"Key": "site", "Operator": "=", "Values": [site]}]
    return job


def url_source(url: str) -> dict[str, Any]:
    return {"Type": "urlDownload", "Params": {"URL": url}}


def test_a_local_node_refuses_data_it_would_download_and_says_so(
    cluster: Cluster, wasm_modules: dict[str, Path], url: str, tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    # The URL is not on either node; only node-any takes it. Count 2 would need both: one runs, the
    # orchestrator learns node-local's refusal and, with nowhere else to go, fails the job saying why.
    anywhere = cat_job(wasm_modules, {"Type": "urlDownload", "Params": {"URL": url + "?a"}})
    anywhere_id = submit_file(cluster, tmp_path, anywhere, "anywhere")
    watch.wait_state(anywhere_id, "Completed", timeout_s=WAIT_S)
    done = [e for e in job_executions(cluster, anywhere_id) if int(e["ComputeState"]["StateType"]) == EXEC_COMPLETED]
    assert [e["NodeID"] for e in done] == ["node-any"], done

    edge_only = cat_job(wasm_modules, url_source(url), site="edge")
    edge_id = submit_file(cluster, tmp_path, edge_only, "edge")
    failed = watch.wait_state(edge_id, "Failed", timeout_s=WAIT_S)
    message = failed["State"]["Message"]
    assert "does not have all input data locally (1 of 2 inputs require downloading: urlDownload http" in message, message  # the module travels inline
    assert "JobAdmissionControl.Locality=local" in message
    described = cluster.ok("job", "describe", edge_id).stdout
    assert "Why Not Scheduled" in described and "node-local" in described, described


def test_a_local_node_takes_a_job_whose_folder_it_holds(
    cluster: Cluster, wasm_modules: dict[str, Path], shared_folder: Path, tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    folder = {"Type": "localDirectory", "Params": {"SourcePath": str(shared_folder)}}
    job_id = submit_file(cluster, tmp_path, cat_job(wasm_modules, folder, site="edge"), "folder")
    watch.wait_state(job_id, "Completed", timeout_s=WAIT_S)
    assert PAYLOAD.decode() in cluster.ok("job", "logs", job_id).stdout
    [execution] = job_executions(cluster, job_id)
    assert execution["NodeID"] == "node-local"
