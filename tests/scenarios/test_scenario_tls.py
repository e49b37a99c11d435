"""TLS end to end with real processes.

API: a hybrid node with `-c API.TLS.SelfSigned=true` serves https with a certificate kept in
<DataDir>/api-tls; the CLI reaches it with API.TLS.UseTLS + CAFile (or Insecure), never silently.

NATS: an orchestrator-only node with Orchestrator.Auth.Token and Orchestrator.TLS.ServerCert/ServerKey (a
test CA's certificate for 127.0.0.1, from tests/tls_certs.py); compute-only nodes join with
Compute.Auth.Token and Compute.TLS.CACert. A wrong token or an untrusted certificate stops the compute
node at once, and the orchestrator's log says why it refused the client.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from scenario_jobs import JobWatch, one_job_id, wasm_job

from cluster_env import Cluster, ClusterNode
from serve_node import BacalhauNode, NodePool, NodeStartError, _clean_env, find_free_port
from tls_certs import CertAuthority, CertPair, make_ca

pytestmark = pytest.mark.scenario

TOKEN = "tls-scenario-token"
REFUSAL_WAIT_S = 8.0  # nats-server logs the refusal, our follower polls that log every second
EXIT_TIMEOUT_S = 45.0


# -- the API over TLS ------------------------------------------------------------------------------------
class TLSNode(BacalhauNode):
    """A hybrid node serving its API over https (its readiness probe does not check the certificate)."""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def cert_file(self) -> Path:
        return self.data_dir / "api-tls" / "cert.pem"

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(timeout=2.0, verify=False) as http:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise NodeStartError(f"bacalhau serve exited before it was ready\n{self.log_excerpt()}")
                try:
                    if http.get(f"{self.url}/api/v1/agent/alive").status_code == 200:
                        return
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.05)  # poll interval, bounded by the deadline
        self.stop()
        raise NodeStartError(f"no https answer within {timeout_s:.0f}s ({last})\n{self.log_excerpt()}")


@pytest.fixture(scope="module")
def tls_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSNode]:
    base = tmp_path_factory.mktemp("tls-node")
    node = TLSNode(binary=bacalhau_bin, data_dir=base / "bacalhau", log_path=base / "serve.log",
                   api_port=find_free_port(), extra_config=["API.TLS.SelfSigned=true"])
    NodePool.live.append(node)
    try:
        yield node.start()
    finally:
        node.stop()
        NodePool.live.remove(node)


def trusted(node: TLSNode) -> list[str]:
    return ["-c", "API.TLS.UseTLS=true", "-c", f"API.TLS.CAFile={node.cert_file}"]


def test_the_start_line_says_https_and_the_certificate_is_kept(tls_node: TLSNode) -> None:
    log = tls_node.log_text()
    assert f"API on https://127.0.0.1:{tls_node.api_port}" in log, tls_node.log_excerpt()
    assert "http://127.0.0.1" not in log.split("API on", 1)[1].split("\n", 1)[0]
    assert tls_node.cert_file.is_file()
    assert (tls_node.cert_file.parent / "key.pem").stat().st_mode & 0o077 == 0
    assert f"API.TLS.CAFile={tls_node.cert_file}" in log  # the start-up log tells clients how to trust it


def test_the_cli_refuses_an_untrusted_certificate_and_says_how_to_trust_it(tls_node: TLSNode) -> None:
    result = tls_node.fails("agent", "alive", "-c", "API.TLS.UseTLS=true", timeout=30)

    assert "certificate verification failed" in result.stderr, tls_node.describe_result(result)
    assert "API.TLS.CAFile" in result.stderr
    assert "Status: OK" not in result.stdout


def test_the_cli_with_the_ca_file_works_and_runs_a_wasm_job_with_logs_over_wss(
    tls_node: TLSNode, wasm_modules: dict[str, Path]
) -> None:
    alive = tls_node.ok("agent", "alive", *trusted(tls_node), timeout=30)
    assert "OK" in alive.stdout

    run = tls_node.ok("wasm", "run", *trusted(tls_node), "--follow", str(wasm_modules["hello"]), "--", "tls",
                      timeout=60)
    out = run.stdout + run.stderr
    assert "hello from wasm" in out and "arg1=tls" in out, tls_node.describe_result(run)
    job_id = one_job_id(out)

    logs = tls_node.ok("job", "logs", *trusted(tls_node), job_id, timeout=30)  # a wss:// websocket
    assert "hello from wasm" in logs.stdout, tls_node.describe_result(logs)
    described = tls_node.ok("job", "describe", *trusted(tls_node), job_id, timeout=30)
    assert "Completed" in described.stdout


def test_the_cli_with_use_tls_and_insecure_from_the_environment_works(tls_node: TLSNode) -> None:
    result = tls_node.ok("agent", "alive", env={"BACALHAU_API_TLS_USETLS": "true", "BACALHAU_API_TLS_INSECURE": "true"},
                         timeout=30)

    assert "OK" in result.stdout


def test_plain_http_to_the_tls_port_gets_no_answer(tls_node: TLSNode) -> None:
    with httpx.Client(timeout=5.0) as http:
        try:
            status: int | None = http.get(f"http://127.0.0.1:{tls_node.api_port}/api/v1/agent/alive").status_code
        except httpx.HTTPError:
            status = None
    assert status != 200
    # And the CLI without UseTLS does not reach it either.
    result = tls_node.fails("agent", "alive", timeout=30)
    assert "Status: OK" not in result.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("API.TLS.CertFile", "invalid config: TLS cert specified without corresponding private key"),
        ("API.TLS.KeyFile", "invalid config: private key specified without corresponding TLS certificate"),
    ],
    ids=["CertFile only", "KeyFile only"],
)
def test_a_node_with_half_a_certificate_pair_does_not_start(
    bacalhau_bin: Path, tmp_path: Path, setting: str, message: str
) -> None:
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")
    path = pair.cert_path if setting.endswith("CertFile") else pair.key_path
    result = subprocess.run(
        [str(bacalhau_bin), "serve", "--orchestrator", "--compute", "-c", "API.Host=127.0.0.1",
         "-c", f"API.Port={find_free_port()}", "-c", "Orchestrator.Host=127.0.0.1", "-c", "Orchestrator.Port=0",
         "-c", "Publishers.Types.Local.Port=0", "-c", f"{setting}={path}"],
        env=_clean_env({"BACALHAU_DIR": str(tmp_path / "data")}), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=EXIT_TIMEOUT_S, check=False,
    )

    assert result.returncode != 0, result
    assert message in result.stderr, result


# -- the NATS link over TLS -------------------------------------------------------------------------------
class TLSCluster:
    """A Cluster whose orchestrator requires TLS and a token, with its certificates."""

    def __init__(self, cluster: Cluster, ca: CertAuthority, server: CertPair, other_ca: CertAuthority) -> None:
        self.cluster, self.ca, self.server, self.other_ca = cluster, ca, server, other_ca

    def compute_config(self, *, token: str = TOKEN, ca_file: Path | None = None) -> list[str]:
        config = [f"Compute.Auth.Token={token}"]
        if ca_file is not None:
            config.append(f"Compute.TLS.CACert={ca_file}")
        return config

    def run_to_exit(self, node: ClusterNode) -> subprocess.CompletedProcess[str]:
        """Run a compute node that must stop by itself; its output, or a failure naming the logs."""
        node.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return subprocess.run(node.command, env=node.env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=EXIT_TIMEOUT_S, check=False, cwd=node.data_dir.parent)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"compute node {node.name} still running after {EXIT_TIMEOUT_S:.0f}s: {exc.stderr!r}\n"
                                 f"{self.cluster.orchestrator.log_excerpt(40)}") from exc

    def wait_orchestrator_log(self, text: str, since: int) -> str:
        deadline = time.monotonic() + REFUSAL_WAIT_S
        while time.monotonic() < deadline:
            new = self.cluster.orchestrator.log_text()[since:]
            if text in new:
                return new
            time.sleep(0.1)  # poll interval, bounded by the deadline
        raise AssertionError(f"{text!r} not in the orchestrator's log within {REFUSAL_WAIT_S:.0f}s\n"
                             f"{self.cluster.orchestrator.log_excerpt(40)}")


@pytest.fixture(scope="module")
def tls_cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSCluster]:
    root = tmp_path_factory.mktemp("tls-cluster")
    ca = make_ca(root / "certs" / "ca")
    server = ca.issue(root / "certs" / "orchestrator")
    other_ca = make_ca(root / "certs" / "other", "unrelated CA")
    cluster = Cluster(bacalhau_bin, root, orchestrator_config=[
        f"Orchestrator.Auth.Token={TOKEN}",
        f"Orchestrator.TLS.ServerCert={server.cert_path}",
        f"Orchestrator.TLS.ServerKey={server.key_path}",
    ])
    try:
        cluster.start()
        yield TLSCluster(cluster, ca, server, other_ca)
    finally:
        cluster.close()


def test_a_compute_node_trusting_the_ca_joins_and_runs_a_job(
    tls_cluster: TLSCluster, wasm_modules: dict[str, Path]
) -> None:
    cluster = tls_cluster.cluster
    cluster.add_compute("tls-member", extra_config=tls_cluster.compute_config(ca_file=tls_cluster.ca.cert_path))

    listed = cluster.ok("node", "list", "--output", "json", "--filter-status", "CONNECTED")
    assert '"tls-member"' in listed.stdout
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    job_id = watch.submit(wasm_job(wasm_modules["hello"], args=["over", "tls"]))
    watch.wait_state(job_id, "Completed", timeout_s=45)
    executions = watch.executions(job_id)
    assert [e["NodeID"] for e in executions] == ["tls-member"]
    assert "hello from wasm" in executions[0]["RunOutput"]["Stdout"]
    # The NATS server's own view (its loopback monitoring port, from its ports file): the member's link is TLS.
    store = cluster.orchestrator.data_dir / "orchestrator" / "nats-store"
    assert f'cert_file: "{tls_cluster.server.cert_path}"' in (store / "nats-server.conf").read_text()
    ports = json.loads(next(store.glob("*.ports")).read_text())
    connz = httpx.get(f"{ports['monitoring'][0]}/connz", timeout=10.0).json()
    member = [c for c in connz["connections"] if c.get("name") == "tls-member"]
    assert member and member[0].get("tls_version", "").startswith("1."), connz


def test_a_compute_node_with_the_wrong_token_stops_and_the_orchestrator_says_why(tls_cluster: TLSCluster) -> None:
    cluster = tls_cluster.cluster
    since = len(cluster.orchestrator.log_text())
    node = cluster.add_compute("tls-intruder", start=False,
                               extra_config=tls_cluster.compute_config(token="wrong", ca_file=tls_cluster.ca.cert_path))

    result = tls_cluster.run_to_exit(node)

    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "authorization violation" in out
    assert "Compute.Auth.Token" in out
    assert TOKEN not in out
    tls_cluster.wait_orchestrator_log("wrong or missing token", since)
    assert "tls-intruder" not in cluster.nodes()


def test_a_compute_node_without_the_ca_stops_and_the_orchestrator_sees_the_failed_handshake(
    tls_cluster: TLSCluster,
) -> None:
    cluster = tls_cluster.cluster
    since = len(cluster.orchestrator.log_text())
    node = cluster.add_compute("tls-stranger", start=False, extra_config=tls_cluster.compute_config())

    started = time.monotonic()
    result = tls_cluster.run_to_exit(node)
    elapsed = time.monotonic() - started

    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "cannot trust the TLS certificate of the NATS server" in out
    assert "Compute.TLS.CACert" in out
    assert elapsed < 30, f"took {elapsed:.0f}s to give up"
    tls_cluster.wait_orchestrator_log("TLS handshake error", since)
    assert "tls-stranger" not in cluster.nodes()


def test_a_compute_node_trusting_another_ca_stops_too(tls_cluster: TLSCluster) -> None:
    node = tls_cluster.cluster.add_compute(
        "tls-other-ca", start=False, extra_config=tls_cluster.compute_config(ca_file=tls_cluster.other_ca.cert_path))

    result = tls_cluster.run_to_exit(node)

    assert result.returncode != 0
    assert "cannot trust the TLS certificate" in result.stdout + result.stderr


def test_a_hybrid_node_reaches_its_own_tls_server_over_loopback(
    serve: Callable[..., BacalhauNode], tmp_path: Path, wasm_modules: dict[str, Path]
) -> None:
    # The certificate names the orchestrator's public name only; the node's own orchestrator and compute
    # links run over 127.0.0.1 to the nats-server it embeds, where that name cannot be checked.
    ca = make_ca(tmp_path / "ca")
    public = ca.issue(tmp_path / "public", hosts=["orchestrator.example.test"])
    node = serve(extra_config=[f"Orchestrator.Auth.Token={TOKEN}", f"Orchestrator.TLS.ServerCert={public.cert_path}",
                               f"Orchestrator.TLS.ServerKey={public.key_path}"])

    run = node.ok("wasm", "run", str(wasm_modules["hello"]), "--", "loopback", timeout=60)

    assert "arg1=loopback" in run.stdout + run.stderr, node.describe_result(run)
