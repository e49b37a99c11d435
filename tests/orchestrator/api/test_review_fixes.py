"""What a security review of the API found, each fixed at its mechanism (the review's reproductions, here
against the real app on a real orchestrator store)."""

from __future__ import annotations

import base64
import json
import threading
import warnings
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning
from tests.orchestrator.api.test_secrets_and_browsers import JOBS, MASK, app_for, client_of, who

from bacalhau.auth.challenge import ClientKeyChallenge
from bacalhau.orchestrator.service import Orchestrator

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

MISSING_JOB = "j-00000000-0000-0000-0000-000000000000"


@pytest.fixture
def open_app(orchestrator: Orchestrator) -> FastAPI:
    return app_for(orchestrator, users=[])  # no users: everything allowed, as in Bacalhau


def test_a_cross_origin_websocket_is_refused_even_without_users(open_app: FastAPI) -> None:
    client = TestClient(open_app, base_url="http://127.0.0.1:1234")
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(f"{JOBS}/{MISSING_JOB}/logs", headers={"Origin": "http://evil.example"}),
    ):
        pytest.fail("a page on another origin opened the logs websocket")
    assert info.value.status_code == 403
    assert "cross-origin websocket from http://evil.example refused" in info.value.json()["Details"]["reason"]


def test_a_same_origin_or_originless_websocket_passes_the_gate(open_app: FastAPI) -> None:
    client = TestClient(open_app)  # its Host header is "testserver"
    for headers in ({"Origin": "http://testserver"}, {}):
        # Past the gate the route answers (an error frame for the missing job), not a 403 denial.
        with client.websocket_connect(f"{JOBS}/{MISSING_JOB}/logs", headers=headers) as ws:
            assert "not found" in ws.receive_text().lower()


async def test_a_deeply_nested_jwt_like_bearer_is_a_401_not_a_500(orchestrator: Orchestrator) -> None:
    nested = base64.urlsafe_b64encode(b"[" * 1500).rstrip(b"=").decode()
    async with client_of(app_for(orchestrator)) as http:
        resp = await http.get(JOBS, headers={"Authorization": f"Bearer {nested}.e30.x"})
    assert resp.status_code == 401, resp.text
    assert resp.json()["Details"]["reason"] == "invalid API key"


async def test_wasm_environment_variables_are_masked_too(orchestrator: Orchestrator) -> None:
    job = {"Name": "wasmy", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm", "Params": {
        "EntryModule": "/app/main.wasm", "EnvironmentVariables": {"DB_PASS": "wasm-secret", "H": "env:HOME"}}}}]}
    async with client_of(app_for(orchestrator)) as http:
        put = await http.put(JOBS, headers=who("full"), json={"Job": job})
        assert put.status_code == 200, put.text
        seen = (await http.get(f"{JOBS}/{put.json()['JobID']}", headers=who("reader"))).json()["Job"]
    assert seen["Tasks"][0]["Engine"]["Params"]["EnvironmentVariables"] == {"DB_PASS": MASK, "H": "env:HOME"}


def test_concurrent_first_logins_share_one_signing_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    challenge = ClientKeyChallenge(node_id="n-1", data_dir=tmp_path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = {
        "PhraseSignature": base64.b64encode(key.sign(b"n-1", padding.PKCS1v15(), hashes.SHA256())).decode(),
        "PublicKey": base64.b64encode(
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        ).decode(),
    }
    data = json.dumps(answer).encode()
    results: list[tuple[bool, str]] = []
    threads = [threading.Thread(target=lambda: results.append(challenge.authenticate(data))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and all(ok for ok, _ in results), results
    # Every token verifies with the key in user_id.pem (no thread signed with a key of its own).
    public = serialization.load_pem_private_key((tmp_path / "user_id.pem").read_bytes(), password=None).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    for _, token in results:
        head, body, sig = token.split(".")
        public.verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)), f"{head}.{body}".encode(),
                      padding.PKCS1v15(), hashes.SHA256())


async def test_a_deeply_nested_challenge_answer_is_a_400(open_app: FastAPI) -> None:
    data = base64.b64encode(b"[" * 5000).decode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=open_app), base_url="http://test") as http:
        resp = await http.post("/api/v1/auth/ClientKey", json={"Name": "ClientKey", "MethodData": data})
    # No challenge in this app's context (app_for builds none): 404; the unit below covers the parsing.
    assert resp.status_code in (400, 404), resp.text
    from bacalhau.models.errors import BadRequestError
    with pytest.raises(BadRequestError):
        ClientKeyChallenge(node_id="n-1", data_dir=Path("/nonexistent")).authenticate(b"[" * 5000)
