"""Bacalhau's ClientKey challenge login on a real node without users, driven as the stock Go CLI drives it
(cmd/util/api.go, pkg/authn/challenge): a stand-in for the Go client, which cannot run here, written from
Bacalhau's code — RSA key, PKCS#1 v1.5 / SHA-256 signature of the phrase, the token used as a bearer."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def sign_in(node: BacalhauNode, key: rsa.RSAPrivateKey, *, phrase: bytes | None = None) -> httpx.Response:
    methods = httpx.get(f"{node.url}/api/v1/auth", timeout=10).json()["Methods"]
    params = methods["ClientKey"]["params"]
    assert methods["ClientKey"]["type"] == "challenge"
    to_sign = phrase if phrase is not None else base64.b64decode(params["InputPhrase"])
    answer = {
        "PhraseSignature": base64.b64encode(key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())).decode(),
        "PublicKey": base64.b64encode(
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        ).decode(),
    }
    body = {"Namespace": "", "Credential": None, "Name": "ClientKey",
            "MethodData": base64.b64encode(json.dumps(answer).encode()).decode()}
    return httpx.post(f"{node.url}/api/v1/auth/ClientKey", json=body, timeout=30)


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_the_go_clis_challenge_login_works_and_its_token_is_accepted(shared_node: BacalhauNode) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resp = sign_in(shared_node, key)
    assert resp.status_code == 200, resp.text
    auth = resp.json()["Authentication"]
    assert auth["success"] is True
    claims = claims_of(auth["token"])
    modulus = key.public_key().public_numbers().n
    client_id = hashlib.sha256(modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")).hexdigest()
    assert claims["sub"] == client_id and claims["ns"] == {"*": 5, client_id: 15}
    node_id = httpx.get(f"{shared_node.url}/api/v1/agent/node", timeout=10).json()["NodeID"]
    assert claims["iss"] == node_id and claims["aud"] == [node_id]
    # The Go CLI then sends it as a bearer token on every call.
    listed = httpx.get(f"{shared_node.url}/api/v1/orchestrator/jobs",
                       headers={"Authorization": f"Bearer {auth['token']}"}, timeout=10)
    assert listed.status_code == 200, listed.text
    # The node keeps its signing key, as Bacalhau's <DataDir>/user_id.pem (owner-only, PKCS#1).
    key_file = Path(shared_node.data_dir) / "user_id.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o077 == 0


def test_a_wrong_signature_is_refused_with_the_reason(shared_node: BacalhauNode) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resp = sign_in(shared_node, key, phrase=b"not the phrase")
    assert resp.status_code == 401, resp.text
    assert resp.json() == {"Authentication": {"success": False, "reason": "crypto/rsa: verification error"}}
    unknown = httpx.get(f"{shared_node.url}/api/v1/auth/Password", timeout=10)
    assert unknown.status_code == 404 and "Password" in unknown.json()["Message"]
    garbage = httpx.post(f"{shared_node.url}/api/v1/auth/ClientKey", json={"MethodData": "%%%"}, timeout=10)
    assert garbage.status_code == 400, garbage.text
