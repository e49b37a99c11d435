"""Job Env values as secrets, and the API's guards against web pages (an in-process app on a real orchestrator
with SQLite stores, reached through httpx's ASGI transport).

Secrets (orchestrator/api/secrets.py): with API.Auth.Users, a caller whose capabilities do not grant
`reveal:env` (`*` and `write:*` do, `read:*` does not) reads every task Env value as `********` wherever a
job appears, except `env:NAME` forwards; without users every caller sees everything.

Browsers: request bodies only as JSON (415 for what a page can send cross-origin without a preflight), CORS
answered only for API.CORS.AllowedOrigins, and Host headers limited to API.AllowedHosts when it is set.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bacalhau.auth.authorizer import build_authorizer
from bacalhau.auth.capabilities import REVEAL_ENV, grants
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.models.secrets import masked
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.service import Orchestrator
from factories import make_execution, make_node_info

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
MASK = "********"
SECRET = "s3cret"
NEW_SECRET = "n3w-s3cret-value"
ENV = {"TOKEN": SECRET, "HOME2": "env:HOME"}
MASKED_ENV = {"TOKEN": MASK, "HOME2": "env:HOME"}

KEYS = {
    "full": "full-key-0123456789-AAAAA",
    "reader": "reader-key-0123456789-BBBBB",
    "writer": "writer-key-0123456789-CCCCC",
    "revealer": "reveal-key-0123456789-DDDDD",
    "allwriter": "allwriter-key-0123456789-EEEEE",
}
ACTIONS = {
    "full": ["*"],
    "reader": ["read:*"],
    "writer": ["write:job", "read:job"],
    "revealer": ["reveal:env", "read:job"],
    "allwriter": ["write:*", "read:job"],
}
USERS = [{"Alias": name, "APIKey": KEYS[name], "Capabilities": [{"Actions": ACTIONS[name]}]} for name in KEYS]
MASKED_FOR = ("reader", "writer")
SHOWN_TO = ("full", "revealer", "allwriter")


def who(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def job_spec(name: str = "secretive", env: dict[str, str] | None = None, image: str = "busybox:1.36") -> dict[str, Any]:
    return {
        "Name": name, "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": image}}, "Env": dict(env or ENV)}],
    }


def app_for(orchestrator: Orchestrator, users: list[dict[str, Any]] = USERS, **api: Any) -> FastAPI:
    cfg = BacalhauConfig.from_user({"API": {"Auth": {"Users": users}, **api}})
    return create_app(ApiContext(
        version=BuildVersionInfo(GitVersion="v1.9.0"), node_info=NodeInfo, config=cfg.redacted,
        orchestrator=orchestrator, authorizer=build_authorizer(cfg.api.auth),
        cors_origins=tuple(cfg.api.cors.allowed_origins), allowed_hosts=tuple(cfg.api.allowed_hosts),
    ))


def client_of(app: FastAPI, base_url: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def envs_in(data: Any) -> list[dict[str, Any]]:
    """Every task Env in a JSON answer (wherever a job appears in it)."""
    found: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            tasks = node.get("Tasks")
            if isinstance(tasks, list):
                found.extend(task["Env"] for task in tasks if isinstance(task, dict) and "Env" in task)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return found


def assert_env_as_seen_by(name: str, resp: httpx.Response, *, at_least: int = 1) -> None:
    assert resp.status_code == 200, resp.text
    envs = envs_in(resp.json())
    assert len(envs) >= at_least, f"{name}: expected {at_least}+ jobs in the answer: {resp.text[:500]}"
    if name in MASKED_FOR:
        assert all(env == MASKED_ENV for env in envs), f"{name}: {envs}"
        assert SECRET not in resp.text, f"{name} read the secret: {resp.text[:500]}"
    else:
        assert all(env == ENV for env in envs), f"{name}: {envs}"



@pytest.fixture
async def http(orchestrator: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app_for(orchestrator)) as client:
        yield client


@pytest.fixture
async def job_id(http: httpx.AsyncClient, orchestrator: Orchestrator) -> str:
    """A job with a secret Env, two versions (the image changed), and an execution of the current one."""
    first = await http.put(JOBS, headers=who("full"), json={"Job": job_spec()})
    assert first.status_code == 200, first.text
    second = await http.put(JOBS, headers=who("full"), json={"Job": job_spec(image="busybox:1.37")})
    assert second.status_code == 200, second.text
    jid: str = first.json()["JobID"]
    assert second.json()["JobID"] == jid
    stored = await orchestrator.store.get_job(jid)
    assert stored.version == 2 and stored.tasks[0].env == ENV  # stored as given: masking is in the answers only
    await orchestrator.store.create_execution(make_execution(stored, node_id=make_node_info().node_id), [])
    return jid


# -- capabilities ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("actions", "reveals"),
    [(["*"], True), (["write:*"], True), (["reveal:env"], True), (["read:*"], False), (["write:job"], False),
     (["read:job", "write:job", "write:node"], False), (["reveal:*"], False), (["read:env"], False), ([], False)],
)
def test_which_capabilities_grant_reveal_env(actions: list[str], reveals: bool) -> None:
    assert REVEAL_ENV == "reveal:env"
    assert grants(actions, REVEAL_ENV) is reveals


def test_reveal_env_alone_grants_no_route() -> None:
    from bacalhau.auth.capabilities import required_capability

    for method, path in (("GET", JOBS), ("PUT", JOBS), ("GET", NODES), ("GET", "/api/v1/agent/node")):
        assert not grants(["reveal:env"], required_capability(method, path)), (method, path)


# -- Env values in every answer -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*MASKED_FOR, *SHOWN_TO])
async def test_get_job_shows_env_by_capability(http: httpx.AsyncClient, job_id: str, name: str) -> None:
    assert_env_as_seen_by(name, await http.get(f"{JOBS}/{job_id}", headers=who(name)))
    # An older version asked for explicitly, and the job named by its name
    assert_env_as_seen_by(name, await http.get(f"{JOBS}/{job_id}", headers=who(name), params={"job_version": 1}))
    assert_env_as_seen_by(name, await http.get(f"{JOBS}/secretive", headers=who(name)))


@pytest.mark.parametrize("name", [*MASKED_FOR, *SHOWN_TO])
async def test_describe_with_executions_and_history(http: httpx.AsyncClient, job_id: str, name: str) -> None:
    resp = await http.get(f"{JOBS}/{job_id}", headers=who(name), params={"include": "executions,history"})
    body = resp.json()
    assert body.get("Executions") and body["Executions"]["Items"], resp.text
    # The job itself and the execution's embedded job
    assert_env_as_seen_by(name, resp, at_least=2)


@pytest.mark.parametrize("name", [*MASKED_FOR, *SHOWN_TO])
async def test_list_versions_and_executions(http: httpx.AsyncClient, job_id: str, name: str) -> None:
    assert_env_as_seen_by(name, await http.get(JOBS, headers=who(name)))
    versions = await http.get(f"{JOBS}/{job_id}/versions", headers=who(name))
    assert len(versions.json()["Items"]) == 2
    assert_env_as_seen_by(name, versions, at_least=2)
    executions = await http.get(f"{JOBS}/{job_id}/executions", headers=who(name))
    assert len(executions.json()["Items"]) == 1, executions.text
    assert_env_as_seen_by(name, executions)


async def test_history_and_results_carry_no_secret(http: httpx.AsyncClient, job_id: str) -> None:
    for path in (f"{JOBS}/{job_id}/history", f"{JOBS}/{job_id}/results"):
        resp = await http.get(path, headers=who("reader"))
        assert resp.status_code == 200 and SECRET not in resp.text, resp.text


async def test_the_put_answer_carries_no_secret(http: httpx.AsyncClient) -> None:
    resp = await http.put(JOBS, headers=who("writer"), json={"Job": job_spec("writers-job")})
    assert resp.status_code == 200 and SECRET not in resp.text, resp.text
    # The writer submitted the value, and still reads it masked: the capability decides, not authorship.
    got = await http.get(f"{JOBS}/{resp.json()['JobID']}", headers=who("writer"))
    assert_env_as_seen_by("writer", got)


async def test_a_writers_diff_does_not_leak_old_or_new_values(http: httpx.AsyncClient, job_id: str) -> None:
    changed = job_spec(env={"TOKEN": NEW_SECRET, "HOME2": "env:HOME", "EXTRA": "another-value"}, image="alpine:3.20")
    diff = await http.put(f"{JOBS}/diff", headers=who("writer"), json={"Job": changed})
    assert diff.status_code == 200, diff.text
    text = diff.json()["Diff"]
    assert SECRET not in diff.text and NEW_SECRET not in diff.text and "another-value" not in diff.text, text
    # The rest of the change is shown, the Env as the writer may see it
    assert "-      Image: busybox:1.37" in text and "+      Image: alpine:3.20" in text, text
    assert f"+    EXTRA: '{MASK}'" in text or f"+    EXTRA: {MASK}" in text, text
    assert "HOME2: env:HOME" in text, text
    # Revealers see the same diff with the values
    shown = (await http.put(f"{JOBS}/diff", headers=who("allwriter"), json={"Job": changed})).json()["Diff"]
    assert f"-    TOKEN: {SECRET}" in shown and f"+    TOKEN: {NEW_SECRET}" in shown, shown


async def test_a_writers_diff_of_a_changed_secret_is_not_empty(http: httpx.AsyncClient, job_id: str) -> None:
    changed = job_spec(env={"TOKEN": NEW_SECRET, "HOME2": "env:HOME"}, image="busybox:1.37")
    diff = await http.put(f"{JOBS}/diff", headers=who("writer"), json={"Job": changed})
    assert diff.status_code == 200 and NEW_SECRET not in diff.text and SECRET not in diff.text, diff.text
    # test_submit_takes_a_changed_secret_as_a_new_version: submit does take it as a change
    assert diff.json()["Diff"] != "", diff.json()


async def test_a_writer_cannot_confirm_a_guessed_secret(
    http: httpx.AsyncClient, job_id: str, orchestrator: Orchestrator
) -> None:
    # Without reveal:env, the answers to a right guess and a wrong one must be the same: a diff that is
    # empty only when the guess is right, or "no changes" only then, would confirm the secret.
    def guess(value: str) -> dict[str, Any]:
        return job_spec(env={"TOKEN": value, "HOME2": "env:HOME"}, image="busybox:1.37")

    right = (await http.put(f"{JOBS}/diff", headers=who("writer"), json={"Job": guess(SECRET)})).json()["Diff"]
    wrong = (await http.put(f"{JOBS}/diff", headers=who("writer"), json={"Job": guess("wr0ng-guess")})).json()["Diff"]
    assert right == wrong and "values given (hidden and not compared" in right, (right, wrong)
    for attempt, value in enumerate((SECRET, "wr0ng-guess", SECRET), start=3):
        put = await http.put(JOBS, headers=who("writer"), json={"Job": guess(value)})
        assert put.status_code == 200, put.text  # never "no changes detected"
        assert (await orchestrator.store.get_job(job_id)).version == attempt
    # A caller who may read the values gets Bacalhau's answer: an identical spec is no change.
    same = await http.put(JOBS, headers=who("full"), json={"Job": guess(SECRET)})
    assert same.status_code == 400 and "no changes" in same.json()["Message"].lower(), same.text
    assert (await http.put(f"{JOBS}/diff", headers=who("full"), json={"Job": guess(SECRET)})).json()["Diff"] == ""


async def test_submit_takes_a_changed_secret_as_a_new_version(http: httpx.AsyncClient, job_id: str) -> None:
    changed = job_spec(env={"TOKEN": NEW_SECRET, "HOME2": "env:HOME"}, image="busybox:1.37")
    put = await http.put(JOBS, headers=who("writer"), json={"Job": changed})
    assert put.status_code == 200, put.text
    versions = (await http.get(f"{JOBS}/{job_id}/versions", headers=who("full"))).json()["Items"]
    assert [v["Tasks"][0]["Env"]["TOKEN"] for v in versions] == [SECRET, SECRET, NEW_SECRET]


async def test_resubmitting_a_masked_job_keeps_the_stored_secrets(
    http: httpx.AsyncClient, job_id: str, orchestrator: Orchestrator
) -> None:
    # A writer edits the job as it was shown to them (TOKEN masked) and changes a job-level field only.
    seen = (await http.get(f"{JOBS}/{job_id}", headers=who("writer"))).json()["Job"]
    assert seen["Tasks"][0]["Env"]["TOKEN"] == MASK
    edited = {**job_spec(env=seen["Tasks"][0]["Env"], image="busybox:1.37"), "Labels": {"team": "b"}}
    put = await http.put(JOBS, headers=who("writer"), json={"Job": edited})
    assert put.status_code == 200, put.text
    stored = await orchestrator.store.get_job(job_id)
    assert stored.version == 3 and stored.tasks[0].env == ENV and stored.labels == {"team": "b"}
    # The masked spec unchanged is no change at all (not a new version storing the mask).
    again = await http.put(JOBS, headers=who("writer"), json={"Job": edited})
    assert again.status_code == 400 and "no changes" in again.json()["Message"].lower(), again.text


async def test_a_masked_secret_is_not_kept_for_a_changed_task(http: httpx.AsyncClient, job_id: str,
                                                              orchestrator: Orchestrator) -> None:
    # The exfiltration a review found: resubmit with the masked value and a task that prints it.
    seen = (await http.get(f"{JOBS}/{job_id}", headers=who("writer"))).json()["Job"]
    attack = job_spec(env=seen["Tasks"][0]["Env"], image="busybox:1.37")
    attack["Tasks"][0]["Engine"]["Params"]["Entrypoint"] = ["sh", "-c", "echo $TOKEN"]
    put = await http.put(JOBS, headers=who("writer"), json={"Job": attack})
    assert put.status_code == 400, put.text
    assert "TOKEN read ******** (masked for you) but the task changed" in put.json()["Message"]
    assert (await orchestrator.store.get_job(job_id)).version == 2
    # A masked key the stored job never had is taken as written.
    extra = job_spec(env={"TOKEN": "given-now", "NEW": MASK}, image="busybox:1.38")
    assert (await http.put(JOBS, headers=who("writer"), json={"Job": extra})).status_code == 200
    assert (await orchestrator.store.get_job(job_id)).tasks[0].env == {"TOKEN": "given-now", "NEW": MASK}


async def test_a_full_users_diff_shows_both_values(http: httpx.AsyncClient, job_id: str) -> None:
    changed = job_spec(env={"TOKEN": NEW_SECRET, "HOME2": "env:HOME"}, image="busybox:1.37")
    diff = await http.put(f"{JOBS}/diff", headers=who("full"), json={"Job": changed})
    assert diff.status_code == 200, diff.text
    text = diff.json()["Diff"]
    assert f"-    TOKEN: {SECRET}" in text and f"+    TOKEN: {NEW_SECRET}" in text, text


async def test_without_users_every_value_is_shown(orchestrator: Orchestrator) -> None:
    async with client_of(app_for(orchestrator, users=[])) as open_http:
        put = await open_http.put(JOBS, json={"Job": job_spec("open")})
        assert put.status_code == 200, put.text
        jid = put.json()["JobID"]
        stored = await orchestrator.store.get_job(jid)
        await orchestrator.store.create_execution(make_execution(stored), [])
        for path, params in ((f"{JOBS}/{jid}", {"include": "executions"}), (JOBS, {}),
                             (f"{JOBS}/{jid}/versions", {}), (f"{JOBS}/{jid}/executions", {})):
            resp = await open_http.get(path, params=params)
            assert resp.status_code == 200, resp.text
            envs = envs_in(resp.json())
            assert envs and all(env == ENV for env in envs), (path, envs)


async def test_docker_environment_variables_are_masked_too(http: httpx.AsyncClient) -> None:
    spec = job_spec("docker-env", env={})
    spec["Tasks"][0]["Engine"]["Params"]["EnvironmentVariables"] = [f"TOKEN={SECRET}"]
    put = await http.put(JOBS, headers=who("full"), json={"Job": spec})
    assert put.status_code == 200, put.text
    got = await http.get(f"{JOBS}/{put.json()['JobID']}", headers=who("reader"))
    assert got.status_code == 200
    assert SECRET not in got.text, got.json()["Job"]["Tasks"][0]["Engine"]


# -- masked() ----------------------------------------------------------------------------------------------------
def test_masked_masks_every_task_env_wherever_it_is() -> None:
    data = {
        "Job": {"Tasks": [{"Name": "a", "Env": {"A": "1", "B": "env:PATH"}}, {"Name": "b", "Env": {}}]},
        "Executions": {"Items": [{"Job": {"Tasks": [{"Env": {"C": "x"}}]}}, {"Job": None}]},
        "Items": [[{"Tasks": [{"Env": {"D": "y"}}]}]],  # lists of lists too
        "Other": {"Env": {"E": "not a task: kept"}},
    }
    out = masked(data)
    assert out is data  # in place
    assert data["Job"]["Tasks"][0]["Env"] == {"A": MASK, "B": "env:PATH"}
    assert data["Job"]["Tasks"][1]["Env"] == {}
    assert data["Executions"]["Items"][0]["Job"]["Tasks"][0]["Env"] == {"C": MASK}
    assert data["Items"][0][0]["Tasks"][0]["Env"] == {"D": MASK}
    assert data["Other"] == {"Env": {"E": "not a task: kept"}}


def test_masked_handles_non_string_values_and_odd_shapes() -> None:
    data: dict[str, Any] = {"Tasks": [
        {"Env": {"N": 5, "F": 1.5, "B": True, "Z": None, "L": ["a"], "O": {"k": "v"}, "FWD": "env:HOME"}},
        {"Env": None}, {"Env": ["K=V"]}, "not a task", {"NoEnv": 1},
    ]}
    masked(data)
    assert data["Tasks"][0]["Env"] == {"N": MASK, "F": MASK, "B": MASK, "Z": MASK, "L": MASK, "O": MASK,
                                       "FWD": "env:HOME"}
    assert data["Tasks"][1:] == [{"Env": None}, {"Env": ["K=V"]}, "not a task", {"NoEnv": 1}]
    # Keys are stringified; an empty value is masked too (a secret's length is not told)
    numeric = {"Tasks": [{"Env": {1: "x", "EMPTY": ""}}]}
    masked(numeric)
    assert numeric["Tasks"][0]["Env"] == {"1": MASK, "EMPTY": MASK}


def test_masked_leaves_scalars_and_tasks_that_are_not_a_list() -> None:
    for value in (None, 1, "text", [], {}, {"Tasks": None}, {"Tasks": {"Env": {"A": "1"}}}):
        before = copy.deepcopy(value)
        assert masked(value) == before


def test_masked_walks_deep_answers_without_recursion() -> None:
    deep: dict[str, Any] = {"Tasks": [{"Env": {"A": "secret"}}]}
    node = deep
    for _ in range(5000):  # far past Python's recursion limit
        node = {"Next": node}
    masked(node)
    assert deep["Tasks"][0]["Env"] == {"A": MASK}


# -- request bodies: JSON only -----------------------------------------------------------------------------------
UNSUPPORTED = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "text/json", "application/json-seq", "application/xml"]
ACCEPTED = ["application/json", "application/vnd.api+json", "application/json; charset=utf-8", "Application/JSON", None]


def assert_415(resp: httpx.Response, media: str) -> None:
    assert resp.status_code == 415, resp.text
    body = resp.json()
    assert body["Status"] == 415 and body["Component"] == "APIServer", body
    assert body["Message"] == f"unsupported request body type {media!r}: the API takes application/json", body
    assert body["Hint"] == "send the body with Content-Type: application/json", body


async def jobs_count(orchestrator: Orchestrator) -> int:
    from bacalhau.orchestrator.jobstore.base import JobQuery

    jobs, _ = await orchestrator.store.list_jobs(JobQuery(limit=1000))
    return len(jobs)


@pytest.mark.parametrize("content_type", UNSUPPORTED)
async def test_put_jobs_in_another_media_type_is_415(http: httpx.AsyncClient, orchestrator: Orchestrator,
                                                    content_type: str) -> None:
    payload = json.dumps({"Job": job_spec("form")}).encode()
    for method in ("PUT", "POST"):
        resp = await http.request(method, JOBS, content=payload, headers={**who("full"), "Content-Type": content_type})
        assert_415(resp, content_type.split(";")[0].strip().lower())
    assert await jobs_count(orchestrator) == 0


@pytest.mark.parametrize("content_type", ACCEPTED)
async def test_json_media_types_and_none_are_accepted(http: httpx.AsyncClient, orchestrator: Orchestrator,
                                                     content_type: str | None) -> None:
    headers = who("full") | ({"Content-Type": content_type} if content_type else {})
    resp = await http.put(JOBS, content=json.dumps({"Job": job_spec("typed")}).encode(), headers=headers)
    assert resp.status_code == 200, resp.text
    assert await jobs_count(orchestrator) == 1


async def test_no_content_type_header_really_is_absent(http: httpx.AsyncClient) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    http.event_hooks["request"].append(record)
    await http.put(JOBS, content=b"{}", headers=who("full"))
    assert "content-type" not in seen[0].headers


async def test_the_other_body_routes_refuse_forms_too(http: httpx.AsyncClient, orchestrator: Orchestrator, job_id: str) -> None:
    form = {**who("full"), "Content-Type": "application/x-www-form-urlencoded"}
    info = make_node_info()
    assert orchestrator.nodes.handshake(info).accepted
    for method, path, body in (
        ("PUT", f"{JOBS}/diff", {"Job": job_spec()}),
        ("PUT", f"{JOBS}/{job_id}/rerun", {}),
        ("DELETE", f"{JOBS}/{job_id}", {"Reason": "x"}),
        ("PUT", f"{NODES}/{info.node_id}", {"Action": "drain"}),
        ("POST", NODES, {"Action": "drain", "NodeID": info.node_id}),
    ):
        resp = await http.request(method, path, content=json.dumps(body).encode(), headers=form)
        assert_415(resp, "application/x-www-form-urlencoded")
    # Nothing happened: the job runs on, the node is not cordoned
    assert (await orchestrator.store.get_job(job_id)).state.state_type.name not in ("Stopped",)
    node = (await http.get(f"{NODES}/{info.node_id}", headers=who("full"))).json()["Node"]
    assert not node.get("Cordon"), node


async def test_a_node_action_posted_as_json_is_accepted(http: httpx.AsyncClient, orchestrator: Orchestrator) -> None:
    info = make_node_info()
    assert orchestrator.nodes.handshake(info).accepted
    resp = await http.post(NODES, headers={**who("full"), "Content-Type": "application/json; charset=utf-8"},
                           content=json.dumps({"Action": "drain", "NodeID": info.node_id}).encode())
    assert resp.status_code == 200, resp.text


async def test_a_refused_caller_gets_the_gates_answer_not_415(http: httpx.AsyncClient) -> None:
    resp = await http.put(JOBS, content=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 401, resp.text
    resp = await http.put(JOBS, content=b"x=1", headers={**who("reader"), "Content-Type": "text/plain"})
    assert resp.status_code == 403, resp.text


async def test_a_cross_site_post_without_content_type_cannot_submit_a_job(orchestrator: Orchestrator) -> None:
    async with client_of(app_for(orchestrator, users=[]), base_url="http://127.0.0.1:1234") as open_http:
        resp = await open_http.post(
            JOBS, content=json.dumps({"Job": job_spec("csrf")}).encode(),
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        )
    assert resp.status_code >= 400, resp.text
    assert await jobs_count(orchestrator) == 0


# -- CORS --------------------------------------------------------------------------------------------------------
DASH = "https://dash.example.org"


def preflight(origin: str, method: str = "PUT") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type"}


async def test_without_allowed_origins_no_origin_is_allowed(orchestrator: Orchestrator) -> None:
    for users in (USERS, []):
        async with client_of(app_for(orchestrator, users=users)) as client:
            for origin in (DASH, "https://evil.example", "null", "http://localhost:3000"):
                pre = await client.options(JOBS, headers=preflight(origin))
                assert "access-control-allow-origin" not in pre.headers, (users, origin, pre.headers)
                assert pre.status_code != 200 or not pre.headers.get("access-control-allow-methods"), pre.headers
                got = await client.get(JOBS, headers={**who("reader"), "Origin": origin})
                assert "access-control-allow-origin" not in got.headers, got.headers


async def test_with_allowed_origins_only_the_listed_origin_is_answered(orchestrator: Orchestrator) -> None:
    app = app_for(orchestrator, CORS={"AllowedOrigins": [DASH]})
    async with client_of(app) as client:
        # The preflight carries no credentials: answered before the gate, not 401.
        pre = await client.options(JOBS, headers=preflight(DASH))
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == DASH
        assert "PUT" in pre.headers["access-control-allow-methods"]
        allowed_headers = pre.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        other = await client.options(JOBS, headers=preflight("https://evil.example"))
        assert other.status_code != 200 and "access-control-allow-origin" not in other.headers, other.headers
        sub = await client.options(JOBS, headers=preflight("https://evil.dash.example.org"))
        assert "access-control-allow-origin" not in sub.headers
        # The actual request: the gate still applies, and the answer names the origin only for the listed one.
        got = await client.get(JOBS, headers={**who("reader"), "Origin": DASH})
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == DASH
        refused = await client.get(JOBS, headers={"Origin": DASH})
        assert refused.status_code == 401
        foreign = await client.get(JOBS, headers={**who("reader"), "Origin": "https://evil.example"})
        assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers


def test_cors_origins_come_from_the_config() -> None:
    cfg = BacalhauConfig.from_user({"API": {"CORS": {"AllowedOrigins": [DASH, "http://localhost:8080"]},
                                            "AllowedHosts": ["node.example.org"]}})
    assert cfg.api.cors.allowed_origins == [DASH, "http://localhost:8080"]
    assert cfg.api.allowed_hosts == ["node.example.org"]
    default = BacalhauConfig.from_user({})
    assert default.api.cors.allowed_origins == [] and default.api.allowed_hosts == []


# -- Host headers ---------------------------------------------------------------------------------------------------
@pytest.fixture
def hosts_app(orchestrator: Orchestrator) -> Iterator[FastAPI]:
    yield app_for(orchestrator, AllowedHosts=["node.example.org", "*.example.org", "127.0.0.1", "::1"])


@pytest.mark.parametrize(
    "host",
    ["node.example.org", "NODE.example.org:1234", "a.example.org", "deep.sub.example.org:80", "127.0.0.1:1234",
     "[::1]:1234"],
)
async def test_a_listed_host_passes(hosts_app: FastAPI, host: str) -> None:
    async with client_of(hosts_app) as client:
        resp = await client.get(JOBS, headers={**who("reader"), "Host": host})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("host", ["evil.example", "example.org", "evil-example.org", "example.org.evil.net",
                                  "localhost", "10.0.0.1:1234", ""])
async def test_an_unknown_host_is_400_before_anything_else(hosts_app: FastAPI, host: str) -> None:
    async with client_of(hosts_app) as client:
        for headers in ({"Host": host}, {"Host": host, **who("reader")}):
            resp = await client.get(JOBS, headers=headers)
            assert resp.status_code == 400, resp.text
            assert resp.headers["content-type"] == "application/json"
            body = resp.json()
            assert body["Message"] == "invalid Host header" and body["Status"] == 400, body
            assert body["Code"] == "BadRequest" and body["Component"] == "APIServer", body
            assert "API.AllowedHosts" in body["Hint"]
        # Open routes too: a rebinding page learns nothing
        assert (await client.get("/api/v1/agent/alive", headers={"Host": host})).status_code == 400


async def test_an_ipv6_entry_in_brackets_matches(orchestrator: Orchestrator) -> None:
    async with client_of(app_for(orchestrator, AllowedHosts=["[::1]"])) as client:
        resp = await client.get(JOBS, headers={**who("reader"), "Host": "[::1]:1234"})
    assert resp.status_code == 200, resp.text


async def test_without_allowed_hosts_any_host_passes(orchestrator: Orchestrator) -> None:
    async with client_of(app_for(orchestrator)) as client:
        resp = await client.get(JOBS, headers={**who("reader"), "Host": "rebound.evil.example"})
    assert resp.status_code == 200, resp.text


async def test_basic_auth_and_cors_and_hosts_together(orchestrator: Orchestrator) -> None:
    users = [{"Username": "alice", "Password": "alice-password-1", "Capabilities": [{"Actions": ["read:*"]}]}]
    app = app_for(orchestrator, users=users, CORS={"AllowedOrigins": [DASH]}, AllowedHosts=["node.example.org"])
    alice = {"Authorization": "Basic " + base64.b64encode(b"alice:alice-password-1").decode()}
    async with client_of(app, base_url="http://node.example.org") as client:
        assert (await client.options(JOBS, headers=preflight(DASH, "GET"))).status_code == 200
        got = await client.get(JOBS, headers={**alice, "Origin": DASH})
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == DASH
        rebound = await client.get(JOBS, headers={**alice, "Host": "evil.example", "Origin": DASH})
        assert rebound.status_code == 400
