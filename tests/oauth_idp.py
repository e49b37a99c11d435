"""A small OAuth 2.0 identity provider for the SSO tests: the one fake in them, standing in for Auth0 or
Keycloak, which cannot run here. It speaks the parts of the protocols Bacalhau's SSO uses, over real
HTTP on 127.0.0.1, with real RS256 keys:

    POST /oauth/device/code   RFC 8628 device authorization: device_code, user_code, verification_uri(_complete),
                              expires_in, interval (client_id must be the configured one)
    POST /oauth/token         the device grant: authorization_pending until approved, then an access token
                              (a JWT: iss, aud, sub, iat, exp, permissions); access_denied once denied
    POST /activate            what the user does in the browser: approve (or deny) a user_code as a subject
                              with permissions
    GET  /.well-known/jwks.json   the public keys, by kid (rotate() adds a new signing key)

`mint()` signs a token directly, with any claim overridden, for the verifier's tests. The fixture
`idp` (one provider per test module) is imported by the modules that use it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve_node import find_free_port

CLIENT_ID = "bacalhau-cli"
AUDIENCE = "https://bacalhau.test/api"


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: Starlette's parser needs python-multipart)."""
    return {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}


@dataclass
class _Pending:
    user_code: str
    approved: dict[str, Any] | None = None
    denied: bool = False


@dataclass
class IdentityProvider:
    """The provider; `start()` serves it in a thread, `close()` stops it."""

    port: int = field(default_factory=find_free_port)
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    signing_kid: str = ""
    pending: dict[str, _Pending] = field(default_factory=dict)
    token_polls: int = 0
    jwks_fetches: int = 0

    def __post_init__(self) -> None:
        self.rotate()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The provider's base URL (also its issuer)."""
        return f"http://127.0.0.1:{self.port}/"

    def node_config(self, provider_id: str = "local-idp") -> list[str]:
        """The `-c API.Auth.Oauth2.*` settings of a node that trusts this provider."""
        return [
            f"API.Auth.Oauth2.ProviderID={provider_id}",
            "API.Auth.Oauth2.ProviderName=Local IdP",
            f"API.Auth.Oauth2.Issuer={self.url}",
            f"API.Auth.Oauth2.JWKSUri={self.url}.well-known/jwks.json",
            f"API.Auth.Oauth2.Audience={AUDIENCE}",
            f"API.Auth.Oauth2.DeviceClientID={CLIENT_ID}",
            f"API.Auth.Oauth2.DeviceAuthorizationEndpoint={self.url}oauth/device/code",
            f"API.Auth.Oauth2.TokenEndpoint={self.url}oauth/token",
            "API.Auth.Oauth2.Scopes=openid,profile",
        ]

    def oauth2(self, provider_id: str = "local-idp") -> dict[str, Any]:
        """The same as an `API.Auth.Oauth2` mapping."""
        return {k.removeprefix("API.Auth.Oauth2."): v for k, v in (s.split("=", 1) for s in self.node_config(provider_id))
                if k != "API.Auth.Oauth2.Scopes"} | {"Scopes": ["openid", "profile"]}

    # -- keys and tokens ---------------------------------------------------------------------------------
    def rotate(self) -> str:
        """Make a new signing key (the old ones stay published); return its kid."""
        kid = f"k{len(self.keys) + 1}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_kid = kid
        return kid

    def mint(self, subject: str = "alice", permissions: list[str] | None = None, *, key: rsa.RSAPrivateKey | None = None,
             kid: str | None = None, algorithm: str = "RS256", **claims: Any) -> str:
        """A signed access token; any claim may be overridden (None removes it)."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.url, "aud": [AUDIENCE], "sub": subject, "iat": now, "exp": now + 3600,
                                "permissions": ["*"] if permissions is None else permissions}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signing = key or self.keys[self.signing_kid]
        headers = {"kid": kid or self.signing_kid}
        return jwt.encode(body, signing, algorithm=algorithm, headers=headers)

    # -- the browser side ---------------------------------------------------------------------------------
    def approve(self, user_code: str, subject: str, permissions: list[str]) -> None:
        """The user logs in and approves the device (as if in a browser)."""
        for pending in self.pending.values():
            if pending.user_code == user_code:
                pending.approved = {"subject": subject, "permissions": permissions}
                return
        raise KeyError(user_code)

    def deny(self, user_code: str) -> None:
        """The user refuses the device."""
        for pending in self.pending.values():
            if pending.user_code == user_code:
                pending.denied = True
                return
        raise KeyError(user_code)

    # -- HTTP ---------------------------------------------------------------------------------------------
    async def _device_code(self, request: Request) -> JSONResponse:
        form = await _form(request)
        if form.get("client_id") != CLIENT_ID:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("audience") != AUDIENCE:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown audience"}, status_code=400)
        device_code = secrets.token_urlsafe(16)
        user_code = f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}"
        self.pending[device_code] = _Pending(user_code)
        return JSONResponse({
            "device_code": device_code, "user_code": user_code, "verification_uri": f"{self.url}activate",
            "verification_uri_complete": f"{self.url}activate?user_code={user_code}", "expires_in": 60, "interval": 1,
        })

    async def _token(self, request: Request) -> JSONResponse:
        self.token_polls += 1
        form = await _form(request)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        pending = self.pending.get(str(form.get("device_code", "")))
        if pending is None:
            return JSONResponse({"error": "expired_token"}, status_code=400)
        if pending.denied:
            return JSONResponse({"error": "access_denied", "error_description": "the user said no"}, status_code=403)
        if pending.approved is None:
            return JSONResponse({"error": "authorization_pending"}, status_code=400)
        del self.pending[str(form["device_code"])]
        token = self.mint(pending.approved["subject"], pending.approved["permissions"])
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def _activate(self, request: Request) -> JSONResponse:
        form = await _form(request)
        self.approve(str(form["user_code"]), str(form["subject"]), str(form.get("permissions", "")).split(","))
        return JSONResponse({"ok": True})

    async def _jwks(self, _: Request) -> JSONResponse:
        self.jwks_fetches += 1
        keys = []
        for kid, key in self.keys.items():
            jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": keys})

    def start(self) -> IdentityProvider:
        """Serve on 127.0.0.1:port in a thread; return once it answers."""
        app = Starlette(routes=[
            Route("/oauth/device/code", self._device_code, methods=["POST"]),
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/activate", self._activate, methods=["POST"]),
            Route("/.well-known/jwks.json", self._jwks),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the identity provider did not start")
            time.sleep(0.05)
        return self

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    """A running identity provider for the module's tests."""
    provider = IdentityProvider().start()
    try:
        yield provider
    finally:
        provider.close()
