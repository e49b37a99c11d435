"""API.Auth.Users end to end: a real hybrid `bacalhau serve` started with a config file holding three
users, reached over real HTTP and websockets, through the real CLI, our typed client and the unchanged
official Python SDK; nodes refusing to start on bad auth settings; where a node without users listens.

The users (Bacalhau v1.9's shapes, pkg/config/types/auth.go):
    full     Basic, username FullUser, a bcrypt hash made by `bacalhau auth hash-password`, actions ["*"]
    reader   Bearer API key, no alias (named "API key ending in ...<last 5>"), actions ["read:*"]
    writer   Basic, username jobwriter, plain password, actions ["write:job"] (no read:job, as in Bacalhau)
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from scenario_jobs import one_job_id, wasm_job

from bacalhau.client import Client
from bacalhau.models.errors import BacalhauError, ErrorCode
from serve_node import BacalhauNode, NodePool, _clean_env, find_free_port, missing_prerequisite

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"
JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
AGENT = "/api/v1/agent"
MISSING_JOB = "j-00000000-0000-0000-0000-000000000000"
MISSING_NODE = "n-00000000-0000-0000-0000-000000000000"

FULL_USERNAME, FULL_PASSWORD = "FullUser", "full-user-password-1"
READER_KEY = "reader-api-key-0123456789-TAIL5"
READER_NAME = "API key ending in ...TAIL5"
WRITER_USERNAME, WRITER_PASSWORD = "jobwriter", "writer-password-1"
UNAUTHORIZED = "Request Unauthorized: Missing Authorization header"
WAIT_S = 60.0
EXIT_WAIT_S = 60.0


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass(frozen=True)
class Identity:
    name: str
    authorization: str | None
    env: dict[str, str]
    # Which required capabilities it holds ("*" = every one)
    holds: Callable[[str], bool]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}


NOBODY = Identity("nobody", None, {}, lambda cap: False)
READER = Identity("reader", f"Bearer {READER_KEY}", {"BACALHAU_API_KEY": READER_KEY}, lambda cap: cap.startswith("read:"))
WRITER = Identity(
    "writer", basic(WRITER_USERNAME, WRITER_PASSWORD),
    {"BACALHAU_API_USERNAME": WRITER_USERNAME, "BACALHAU_API_PASSWORD": WRITER_PASSWORD}, lambda cap: cap == "write:job",
)
# The username in another case: Bacalhau looks usernames up case-insensitively.
FULL = Identity(
    "full", basic(FULL_USERNAME.lower(), FULL_PASSWORD),
    {"BACALHAU_API_USERNAME": FULL_USERNAME.upper(), "BACALHAU_API_PASSWORD": FULL_PASSWORD}, lambda cap: True,
)
IDENTITIES = (NOBODY, READER, WRITER, FULL)
WHO = {READER.name: READER_NAME, WRITER.name: WRITER_USERNAME}


# -- the node ------------------------------------------------------------------------------------------------
def hash_with_the_cli(bacalhau_bin: Path, password: str, home: Path) -> str:
    result = subprocess.run(
        [str(bacalhau_bin), "auth", "hash-password"], input=password + "\n", capture_output=True, text=True,
        timeout=60, check=False, env=_clean_env({"BACALHAU_DIR": str(home)}),
    )
    assert result.returncode == 0, result
    hashed = result.stdout.strip()
    assert hashed.startswith("$2a$10$") and len(hashed) == 60, result
    assert password not in result.stdout + result.stderr
    return hashed


def write_config(path: Path, users: list[dict[str, Any]], **api: Any) -> Path:
    path.write_text(yaml.safe_dump({"API": {"Auth": {"Users": users}, **api}}, sort_keys=False))
    return path


@dataclass
class AuthNode:
    node: BacalhauNode
    job_id: str  # a completed wasm job printing "hello from wasm"
    node_id: str

    def request(self, method: str, path: str, who: Identity, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.node.url, timeout=10.0) as http:
            return http.request(method, path, headers=who.headers, **kwargs)


@pytest.fixture(scope="module")
def auth(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, wasm_modules: dict[str, Path]) -> Iterator[AuthNode]:
    base = tmp_path_factory.mktemp("auth-config")
    full_hash = hash_with_the_cli(bacalhau_bin, FULL_PASSWORD, base / "hasher")
    config = write_config(
        base / "auth.yaml",
        [
            {"Username": FULL_USERNAME, "Password": full_hash, "Capabilities": [{"Actions": ["*"]}]},
            {"APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
            {"Username": WRITER_USERNAME, "Password": WRITER_PASSWORD, "Capabilities": [{"Actions": ["write:job"]}]},
        ],
    )
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(extra_config=[str(config)])
        with httpx.Client(base_url=node.url, timeout=10.0, headers=FULL.headers) as http:
            resp = http.put(JOBS, json={"Job": wasm_job(wasm_modules["hello"], name="auth-hello")})
            assert resp.status_code == 200, f"{resp.status_code} {resp.text}\n{node.log_excerpt()}"
            job_id = resp.json()["JobID"]
            deadline = time.monotonic() + WAIT_S
            state = ""
            while time.monotonic() < deadline:
                state = http.get(f"{JOBS}/{job_id}").json()["Job"]["State"]["StateType"]
                if state in ("Completed", "Failed", "Stopped"):
                    break
                time.sleep(0.1)  # poll interval, bounded by the deadline
            assert state == "Completed", f"job {job_id}: {state}\n{node.log_excerpt()}"
            node_id = http.get(f"{AGENT}/node").json()["NodeID"]
        yield AuthNode(node, job_id, node_id)
    finally:
        pool.close()


# -- the route matrix ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {job} and {node} are filled in
    needs: str  # "" = open
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", JOBS, "read:job"),
    Route("GET", JOBS + "/{job}", "read:job"),
    Route("GET", JOBS + "/{job}/history", "read:job"),
    Route("GET", JOBS + "/{job}/executions", "read:job"),
    Route("GET", JOBS + "/{job}/results", "read:job"),
    Route("GET", JOBS + "/{job}/versions", "read:job"),
    Route("WS", JOBS + "/{job}/logs", "read:job"),
    Route("PUT", JOBS, "write:job", {"Job": {"Type": "batch", "Tasks": []}}),
    Route("POST", JOBS, "write:job", {"Job": {"Type": "batch", "Tasks": []}}),
    Route("PUT", JOBS + "/diff", "write:job", {"Job": {"Type": "batch", "Tasks": []}}),
    Route("DELETE", f"{JOBS}/{MISSING_JOB}", "write:job"),
    Route("PUT", f"{JOBS}/{MISSING_JOB}/rerun", "write:job", {}),
    Route("HEAD", JOBS, "write:job"),
    Route("GET", NODES, "read:node"),
    Route("GET", NODES + "/{node}", "read:node"),
    Route("PUT", f"{NODES}/{MISSING_NODE}", "write:node", {"Action": "cordon"}),
    Route("POST", NODES, "write:node", {"Action": "cordon", "NodeID": MISSING_NODE}),
    Route("GET", AGENT + "/alive", ""),
    Route("GET", AGENT + "/version", ""),
    Route("GET", AGENT + "/authconfig", ""),
    Route("GET", "/api/v1/auth", ""),
    Route("GET", AGENT + "/node", "read:agent"),
    Route("GET", AGENT + "/config", "read:agent"),
    Route("GET", AGENT + "/debug", "read:agent"),
    Route("GET", "/no/such/route", "write:node"),
    Route("GET", JOBS + "XYZ", "read:job"),
]


def websocket_status(auth: AuthNode, path: str, who: Identity) -> tuple[int, str]:
    """(101, frames) when the handshake is accepted (frames read until the server closes), else (status, body)."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = auth.node.url.replace("http://", "ws://") + path
    try:
        ws = connect(url, additional_headers=who.headers, open_timeout=10, close_timeout=5)
    except InvalidStatus as exc:
        return exc.response.status_code, (exc.response.body or b"").decode()
    frames = []
    with ws:
        deadline = time.monotonic() + WAIT_S
        try:
            while time.monotonic() < deadline:
                frames.append(str(ws.recv(timeout=deadline - time.monotonic())))
        except ConnectionClosed:
            pass
    return 101, "\n".join(frames)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_route_answers_each_identity_as_bacalhau_would(auth: AuthNode, route: Route) -> None:
    path = route.path.format(job=auth.job_id, node=auth.node_id)
    problems = []
    for who in IDENTITIES:
        if route.method == "WS":
            status, text = websocket_status(auth, path, who)
        else:
            kwargs = {"json": route.body} if route.body is not None else {}
            resp = auth.request(route.method, path, who, **kwargs)
            status, text = resp.status_code, resp.text
        allowed = route.needs == "" or who.holds(route.needs)
        if allowed:
            ok = status not in (401, 403) and status < 500
        elif who is NOBODY:
            ok = status == 401 and (route.method == "HEAD" or "Missing Authorization header" in text)
        else:
            reason = f"user '{WHO.get(who.name, who.name)}' does not have the required capability '{route.needs}'"
            ok = status == 403 and (route.method == "HEAD" or reason in text)
        if not ok:
            problems.append(f"{who.name}: {'allowed' if allowed else 'refused'} expected, got {status} {text[:300]}")
    assert not problems, f"{route} ({route.needs or 'open'}):\n" + "\n".join(problems) + "\n" + auth.node.log_excerpt(40)


def test_allowed_reads_return_the_real_data(auth: AuthNode) -> None:
    got = auth.request("GET", f"{JOBS}/{auth.job_id}", READER)
    assert got.status_code == 200 and got.json()["Job"]["ID"] == auth.job_id, got.text
    nodes = auth.request("GET", NODES, READER)
    assert [n["Info"]["NodeID"] for n in nodes.json()["Nodes"]] == [auth.node_id], nodes.text
    status, frames = websocket_status(auth, f"{JOBS}/{auth.job_id}/logs", READER)
    assert status == 101 and "hello from wasm" in frames, frames
    assert auth.request("GET", "/no/such/route", FULL).status_code == 404
    config = auth.request("GET", f"{AGENT}/config", READER)
    assert FULL_PASSWORD not in config.text and READER_KEY not in config.text and WRITER_PASSWORD not in config.text
    users = config.json()["config"]["API"]["Auth"]["Users"]
    assert [(u["Username"], u["Password"], u["APIKey"]) for u in users] == [
        (FULL_USERNAME, "********", ""), ("", "", "********"), (WRITER_USERNAME, "********", "")
    ]
    assert auth.request("GET", "/api/v1/auth", NOBODY).json() == {"NextToken": "", "Methods": {}}
    assert auth.request("GET", f"{AGENT}/authconfig", NOBODY).json() == {"Version": "1.0.0", "Config": {}}


def test_the_401_body_over_the_wire_is_bacalhaus(auth: AuthNode) -> None:
    with httpx.Client(base_url=auth.node.url, timeout=10.0) as http:
        resp = http.get(JOBS, headers={"X-Request-Id": "wire-1"})
    body = resp.json()
    assert resp.status_code == 401
    assert {k: v for k, v in body.items() if k != "Hint"} == {
        "Status": 401, "Message": "Request Unauthorized", "RequestID": "wire-1", "Code": "Unauthorized",
        "Component": "Authorizer", "Details": {"reason": "Missing Authorization header"},
    }, body
    assert body["Hint"].startswith("Unauthorized principal. Event has been recorded."), body
    assert "API request refused: GET /api/v1/orchestrator/jobs" in auth.node.log_text()


# -- the CLI ---------------------------------------------------------------------------------------------------
def test_cli_job_list_with_an_api_key_and_with_a_username(auth: AuthNode) -> None:
    for who in (READER, FULL):
        result = auth.node.ok("job", "list", "--output", "json", env=who.env)
        assert auth.job_id in result.stdout, auth.node.describe_result(result)


def test_cli_without_credentials_is_unauthorized(auth: AuthNode) -> None:
    result = auth.node.cli("job", "list")
    assert result.returncode == 1, auth.node.describe_result(result)
    assert UNAUTHORIZED in result.stderr, auth.node.describe_result(result)
    assert "Traceback" not in result.stderr


def test_cli_wasm_run_with_the_full_user_completes(auth: AuthNode, wasm_modules: dict[str, Path]) -> None:
    result = auth.node.ok("wasm", "run", str(wasm_modules["hello"]), "--", "authorised", env=FULL.env)
    out = result.stdout + result.stderr
    assert "hello from wasm" in out and "arg1=authorised" in out, auth.node.describe_result(result)
    job_id = one_job_id(out)
    assert auth.request("GET", f"{JOBS}/{job_id}", FULL).json()["Job"]["State"]["StateType"] == "Completed"


def test_cli_wasm_run_with_the_read_only_key_is_forbidden(auth: AuthNode, wasm_modules: dict[str, Path]) -> None:
    before = auth.request("GET", JOBS, READER).json()["Items"]
    result = auth.node.cli("wasm", "run", str(wasm_modules["hello"]), env=READER.env)
    assert result.returncode == 1, auth.node.describe_result(result)
    assert "Request Forbidden" in result.stderr, auth.node.describe_result(result)
    assert f"user '{READER_NAME}' does not have the required capability 'write:job'" in result.stderr, result.stderr
    assert READER_KEY not in result.stderr + result.stdout
    assert len(auth.request("GET", JOBS, READER).json()["Items"]) == len(before)  # nothing was submitted


def test_cli_wasm_run_without_credentials_is_unauthorized(auth: AuthNode, wasm_modules: dict[str, Path]) -> None:
    result = auth.node.cli("wasm", "run", str(wasm_modules["hello"]))
    assert result.returncode == 1 and UNAUTHORIZED in result.stderr, auth.node.describe_result(result)


def test_cli_a_job_writer_without_read_can_submit_but_not_wait(auth: AuthNode, wasm_modules: dict[str, Path]) -> None:
    submitted = auth.node.ok("wasm", "run", "--wait=false", "--id-only", str(wasm_modules["hello"]), env=WRITER.env)
    job_id = submitted.stdout.strip()
    assert auth.request("GET", f"{JOBS}/{job_id}", FULL).status_code == 200, submitted.stdout
    waited = auth.node.cli("wasm", "run", str(wasm_modules["hello"]), env=WRITER.env)
    assert waited.returncode == 1, auth.node.describe_result(waited)
    assert f"user '{WRITER_USERNAME}' does not have the required capability 'read:job'" in waited.stderr, waited.stderr


def test_cli_job_logs_over_the_websocket(auth: AuthNode) -> None:
    refused = auth.node.cli("job", "logs", auth.job_id)
    assert refused.returncode == 1, auth.node.describe_result(refused)
    assert UNAUTHORIZED in refused.stderr, auth.node.describe_result(refused)
    forbidden = auth.node.cli("job", "logs", auth.job_id, env=WRITER.env)
    assert forbidden.returncode == 1 and "Request Forbidden" in forbidden.stderr, auth.node.describe_result(forbidden)
    assert "'read:job'" in forbidden.stderr
    allowed = auth.node.ok("job", "logs", auth.job_id, env=READER.env)
    assert "hello from wasm" in allowed.stdout, auth.node.describe_result(allowed)


def test_cli_refuses_conflicting_env_credentials(auth: AuthNode) -> None:
    result = auth.node.cli("job", "list", env={**READER.env, "BACALHAU_API_USERNAME": "x"})
    assert result.returncode == 1, auth.node.describe_result(result)
    assert "can't use both BACALHAU_API_KEY and BACALHAU_API_USERNAME/BACALHAU_API_PASSWORD simultaneously" in result.stderr
    half = auth.node.cli("job", "list", env={"BACALHAU_API_USERNAME": WRITER_USERNAME})
    assert half.returncode == 1 and "BACALHAU_API_USERNAME provided but not BACALHAU_API_PASSWORD" in half.stderr, half.stderr


def test_cli_auth_info(auth: AuthNode) -> None:
    bare = auth.node.ok("auth", "info")
    assert f"Target environment: {auth.node.url}" in bare.stdout, bare.stdout
    lines = [line.strip() for line in bare.stdout.splitlines()]
    assert "API Key: Not Set" in lines and "Password: Not Set" in lines, bare.stdout
    assert "Server does not support SSO login" in lines, bare.stdout
    assert any(line.startswith("Note: Environment variables take precedence") for line in lines), bare.stdout
    keyed = auth.node.ok("auth", "info", env=READER.env)
    assert "API Key: Set" in keyed.stdout and READER_KEY not in keyed.stdout, keyed.stdout
    with_password = auth.node.ok("auth", "info", "--output", "json", env=WRITER.env)
    as_json = json.loads(with_password.stdout)
    assert as_json["Environment"]["APIKey"] == "Not Set" and as_json["Environment"]["Password"] == "Set", as_json
    assert WRITER_PASSWORD not in with_password.stdout
    assert as_json["SSO"] == {} and as_json["Target"] == auth.node.url


@pytest.mark.parametrize(
    "args",
    [("auth", "info"), ("agent", "alive"), ("version",)],
    ids=" ".join,
)
def test_unauthenticated_commands_work_whatever_the_env_credentials(auth: AuthNode, args: tuple[str, ...]) -> None:
    result = auth.node.cli(*args, env={**READER.env, "BACALHAU_API_USERNAME": WRITER_USERNAME})
    assert result.returncode == 0, auth.node.describe_result(result)


def test_unauthenticated_commands_work_with_wrong_credentials(auth: AuthNode) -> None:
    wrong = {"BACALHAU_API_KEY": "not-a-key-0000000000000"}
    for args in (("auth", "info"), ("agent", "alive"), ("version",)):
        result = auth.node.cli(*args, env=wrong)
        assert result.returncode == 0, auth.node.describe_result(result)
    info = auth.node.ok("auth", "info", env=wrong)
    assert "API Key: Set" in info.stdout and "not-a-key" not in info.stdout, info.stdout

# -- our typed client -------------------------------------------------------------------------------------------
def test_typed_client_with_env_credentials(auth: AuthNode, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACALHAU_API_KEY", "BACALHAU_API_USERNAME", "BACALHAU_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with Client(base_url=auth.node.url, timeout_s=10) as client, pytest.raises(BacalhauError) as info:
        client.list_jobs()
    assert info.value.code is ErrorCode.Unauthorized
    assert info.value.message == UNAUTHORIZED

    monkeypatch.setenv("BACALHAU_API_KEY", READER_KEY)
    with Client(base_url=auth.node.url, timeout_s=10) as client:
        assert auth.job_id in [job.id for job in client.list_jobs().items]
        lines = [log.line for log in client.job_logs(auth.job_id)]
        assert any("hello from wasm" in line for line in lines), lines
        with pytest.raises(BacalhauError) as forbidden:
            client.stop_job(auth.job_id, reason="not allowed")
    assert forbidden.value.code is ErrorCode.Forbidden
    assert forbidden.value.message == (
        f"Request Forbidden: user '{READER_NAME}' does not have the required capability 'write:job'"
    )


def test_typed_client_websocket_refusal_carries_the_reason(auth: AuthNode, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACALHAU_API_KEY", "BACALHAU_API_USERNAME", "BACALHAU_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with Client(base_url=auth.node.url, timeout_s=10) as client, pytest.raises(BacalhauError) as info:
        list(client.job_logs(auth.job_id))
    assert info.value.code is ErrorCode.Unauthorized and info.value.message == UNAUTHORIZED


def test_typed_client_with_an_explicit_header_beats_the_env(
    auth: AuthNode, monkeypatch: pytest.MonkeyPatch, wasm_modules: dict[str, Path]
) -> None:
    monkeypatch.delenv("BACALHAU_API_USERNAME", raising=False)
    monkeypatch.delenv("BACALHAU_API_PASSWORD", raising=False)
    monkeypatch.setenv("BACALHAU_API_KEY", READER_KEY)  # read only: would be refused the write below
    with Client(base_url=auth.node.url, timeout_s=10, headers=FULL.headers) as client:
        put = client.put_job(wasm_job(wasm_modules["hello"], name="explicit-header"))
        assert client.get_job(put.job_id).job.id == put.job_id


# -- the official Python SDK, unchanged ----------------------------------------------------------------------
SDK_SCRIPT = r'''
import json
import sys

from bacalhau_apiclient.api.ops_api import OpsApi
from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
from bacalhau_apiclient.api_client import ApiClient
from bacalhau_apiclient.rest import ApiException
from bacalhau_sdk.config import init_config
from bacalhau_sdk.jobs import Jobs


def fact(key, value):
    print(f"FACT {key}={json.dumps(value, default=str)}", flush=True)


key, job_id = sys.argv[1], sys.argv[2]

jobs = Jobs()
fact("sdk_default_headers", sorted(jobs.orchestrator_service.api_client.default_headers))
fact("sdk_get_without_header", jobs.get(job_id) is None)
jobs.orchestrator_service.api_client.set_default_header("Authorization", "Bearer " + key)
got = jobs.get(job_id)
fact("sdk_get_with_header", got.job.id if got is not None else None)

bare = OrchestratorApi(ApiClient(init_config()))
try:
    bare.orchestratorlist_jobs()
    fact("apiclient_without_header", "returned")
except ApiException as exc:
    fact("apiclient_without_header", exc.status)
    fact("apiclient_without_header_body", json.loads(exc.body))
fact("apiclient_alive_without_header", OpsApi(ApiClient(init_config())).agentalive())

keyed = OrchestratorApi(ApiClient(init_config(), "Authorization", "Bearer " + key))
fact("apiclient_with_header_ids", [job.id for job in keyed.orchestratorlist_jobs().items or []])
try:
    keyed.orchestratorstop_job(job_id, reason="read-only key")
    fact("apiclient_stop_with_read_key", "returned")
except ApiException as exc:
    fact("apiclient_stop_with_read_key", exc.status)
    fact("apiclient_stop_with_read_key_body", json.loads(exc.body))
'''


def test_official_sdk_needs_a_header_added_by_hand(auth: AuthNode, tmp_path: Path) -> None:
    if not CLIENTS_PYTHON.is_file():
        missing_prerequisite(f"{CLIENTS_PYTHON} not found: the official clients are not installed (run: bash scripts/setup)")
    script = tmp_path / "sdk_auth.py"
    script.write_text(SDK_SCRIPT)
    client_dir = tmp_path / "sdk-home"
    client_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACALHAU_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({"BACALHAU_API_HOST": "127.0.0.1", "BACALHAU_API_PORT": str(auth.node.api_port),
                "BACALHAU_DIR": str(client_dir), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.run([str(CLIENTS_PYTHON), str(script), READER_KEY, auth.job_id], capture_output=True, text=True,
                          timeout=120, env=env, check=False, stdin=subprocess.DEVNULL)
    described = f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, described
    facts = {}
    for line in proc.stdout.splitlines():
        if line.startswith("FACT "):
            key, _, value = line.removeprefix("FACT ").partition("=")
            facts[key] = json.loads(value)
    # The SDK sends no Authorization header of its own (auth_settings are empty) ...
    assert "Authorization" not in facts["sdk_default_headers"], described
    # ... so a read is refused: Jobs().get prints the ApiException (401) and returns None.
    assert facts["sdk_get_without_header"] is True, described
    assert "(401)" in proc.stdout and "Missing Authorization header" in proc.stdout, described
    # With the header set by hand, the same call works.
    assert facts["sdk_get_with_header"] == auth.job_id, described
    assert facts["apiclient_without_header"] == 401, described
    assert facts["apiclient_without_header_body"]["Details"] == {"reason": "Missing Authorization header"}, described
    assert "OK" in facts["apiclient_alive_without_header"], described
    assert auth.job_id in facts["apiclient_with_header_ids"], described
    assert facts["apiclient_stop_with_read_key"] == 403, described
    assert facts["apiclient_stop_with_read_key_body"]["Details"]["reason"] == (
        f"user '{READER_NAME}' does not have the required capability 'write:job'"
    ), described


# -- nodes that must not start ---------------------------------------------------------------------------------
def serve_until_exit(bacalhau_bin: Path, data_dir: Path, *config: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(bacalhau_bin), "serve", "--orchestrator", "--compute"]
    for setting in ("API.Host=127.0.0.1", f"API.Port={find_free_port()}", "Orchestrator.Host=127.0.0.1",
                    "Orchestrator.Port=0", "Publishers.Types.Local.Port=0", *config):
        cmd += ["-c", setting]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=EXIT_WAIT_S, check=False,
                              stdin=subprocess.DEVNULL, env=_clean_env({"BACALHAU_DIR": str(data_dir)}))
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`bacalhau serve` kept running with a config it should refuse\n{exc.stdout!r}\n{exc.stderr!r}") from exc


def test_a_node_whose_user_breaks_a_rule_does_not_start(bacalhau_bin: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.yaml", [
        {"Username": "alice", "Password": "long-enough-password", "Capabilities": [{"Actions": ["*"]}]},
        {"Alias": "shorty", "APIKey": "too-short", "Capabilities": [{"Actions": ["read:*"]}]},
    ])
    result = serve_until_exit(bacalhau_bin, tmp_path / "node", str(config))
    assert result.returncode != 0, result
    assert "error initializing users:" in result.stderr, result.stderr
    assert "'shorty'" in result.stderr, result.stderr
    assert "too-short" not in result.stderr.replace("'shorty'", "")  # the key itself is not printed
    assert "API on http" not in result.stdout + result.stderr


def test_a_node_with_duplicate_usernames_does_not_start(bacalhau_bin: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "dup.yaml", [
        {"Username": "Alice", "Password": "long-enough-password", "Capabilities": [{"Actions": ["*"]}]},
        {"Username": "ALICE", "Password": "another-long-password", "Capabilities": [{"Actions": ["read:*"]}]},
    ])
    result = serve_until_exit(bacalhau_bin, tmp_path / "node", str(config))
    assert result.returncode != 0, result
    assert "error initializing users: duplicate username detected: 'Alice' and 'ALICE'" in result.stderr, result.stderr


def test_a_node_with_half_an_sso_setup_does_not_start(bacalhau_bin: Path, tmp_path: Path) -> None:
    result = serve_until_exit(
        bacalhau_bin, tmp_path / "node", "API.Auth.Oauth2.ProviderID=auth0", "API.Auth.Oauth2.Issuer=https://idp.test/"
    )
    assert result.returncode != 0, result
    assert "missing required OAuth2 fields for JWT authorization: JWKSUri, Audience, DeviceClientID" in result.stderr
    assert "API on http" not in result.stdout + result.stderr


# -- where a node without users listens --------------------------------------------------------------------------
def non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one other than loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent over UDP connect
            address: str = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class NoApiHostNode(BacalhauNode):
    """A node given neither API.Host (-c, file) nor BACALHAU_API_HOST: only its port."""

    @property
    def command(self) -> list[str]:
        cmd = [str(self.binary), "serve", "--orchestrator", "--compute"]
        for setting in (f"API.Port={self.api_port}", "Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0",
                        "Publishers.Types.Local.Port=0", *self.extra_config):
            cmd += ["-c", setting]
        return cmd

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.pop("BACALHAU_API_HOST")
        return env


def test_a_node_without_users_or_api_host_listens_on_loopback_only(bacalhau_bin: Path, tmp_path: Path) -> None:
    node = NoApiHostNode(binary=bacalhau_bin, data_dir=tmp_path / "node", log_path=tmp_path / "serve.log",
                         api_port=find_free_port())
    NodePool.live.append(node)
    try:
        node.start()
        log = node.log_text()
        assert f"API on http://127.0.0.1:{node.api_port}" in log, node.log_excerpt()
        assert "without authentication" not in log, node.log_excerpt()
        assert reachable("127.0.0.1", node.api_port)
        other = non_loopback_address()
        if other is not None:
            assert not reachable(other, node.api_port), f"the API answers on {other}\n{node.log_excerpt()}"
    finally:
        node.stop()
        NodePool.live.remove(node)


def test_a_node_without_users_told_to_listen_everywhere_warns(serve: Callable[..., BacalhauNode]) -> None:
    node = serve(extra_config=["API.Host=0.0.0.0"])
    log = node.log_text()
    assert f"API on http://0.0.0.0:{node.api_port}" in log, node.log_excerpt()
    warning = next((line for line in log.splitlines() if "without authentication" in line), "")
    assert "WARNING" in warning and "0.0.0.0" in warning and "API.Auth.Users" in warning, node.log_excerpt()
    other = non_loopback_address()
    if other is not None:
        assert reachable(other, node.api_port), f"0.0.0.0 but not reachable on {other}\n{node.log_excerpt()}"
    # And it really is open: no credentials needed.
    with node.http() as http:
        assert http.get(JOBS).status_code == 200


def test_a_node_with_users_listens_where_api_host_says_without_warning(auth: AuthNode) -> None:
    log = auth.node.log_text()
    assert f"API on http://127.0.0.1:{auth.node.api_port}" in log, auth.node.log_excerpt()
    assert "without authentication" not in log and "no API.Auth.Users" not in log, auth.node.log_excerpt()


def test_a_node_with_users_and_no_api_host_listens_everywhere_silently(bacalhau_bin: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "users.yaml", [{"APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]}])
    node = NoApiHostNode(binary=bacalhau_bin, data_dir=tmp_path / "node", log_path=tmp_path / "serve.log",
                         api_port=find_free_port(), extra_config=[str(config)])
    NodePool.live.append(node)
    try:
        node.start()
        log = node.log_text()
        assert f"API on http://0.0.0.0:{node.api_port}" in log, node.log_excerpt()
        assert "without authentication" not in log, node.log_excerpt()
        with node.http() as http:
            assert http.get(JOBS).status_code == 401
            assert http.get(JOBS, headers=READER.headers).status_code == 200
    finally:
        node.stop()
        NodePool.live.remove(node)


# -- bacalhau auth hash-password ----------------------------------------------------------------------------------
def hash_password_cli(bacalhau_bin: Path, tmp_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bacalhau_bin), "auth", "hash-password"], input=stdin, capture_output=True, text=True, timeout=60,
        check=False, env=_clean_env({"BACALHAU_DIR": str(tmp_path / "home")}),
    )


def test_hash_password_prints_one_go_style_hash_of_the_trimmed_line(bacalhau_bin: Path, tmp_path: Path) -> None:
    import bcrypt

    result = hash_password_cli(bacalhau_bin, tmp_path, "  my password 1  \nsecond line ignored\n")
    assert result.returncode == 0, result
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, result.stdout
    hashed = result.stdout.strip()
    assert hashed.startswith("$2a$10$") and len(hashed) == 60, hashed
    assert bcrypt.checkpw(b"my password 1", hashed.encode())
    assert not bcrypt.checkpw(b"  my password 1  ", hashed.encode())


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("\n", "password cannot be empty"), ("   \n", "password cannot be empty"),
     ("x" * 101 + "\n", "password exceeds maximum length of 100 characters")],
)
def test_hash_password_refuses_empty_and_over_100_characters(bacalhau_bin: Path, tmp_path: Path, stdin: str, message: str) -> None:
    result = hash_password_cli(bacalhau_bin, tmp_path, stdin)
    assert result.returncode == 1 and message in result.stderr, result
    assert result.stdout == "" and "Traceback" not in result.stderr, result


def test_hash_password_of_more_than_72_bytes_is_an_error_not_a_crash(bacalhau_bin: Path, tmp_path: Path) -> None:
    result = hash_password_cli(bacalhau_bin, tmp_path, "p" * 80 + "\n")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and "72" in result.stderr, result.stderr
