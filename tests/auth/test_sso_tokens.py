"""SSO bearer tokens checked as Bacalhau's JWT authorizer checks them (auth/sso.py), against a real
JWKS served over HTTP by the test identity provider (tests/oauth_idp.py): the provider's signature,
RS256 only, issuer, audience, a required and unexpired `exp`, an `iat` not in the future; the user is
`sub`, their capabilities the `permissions` claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bacalhau.auth import sso as sso_module
from bacalhau.auth.authorizer import build_authorizer
from bacalhau.auth.sso import INVALID, NOT_CONFIGURED, TokenUser, TokenVerifier
from bacalhau.config.api_auth import AuthConfig, Oauth2Config
from oauth_idp import AUDIENCE, IdentityProvider, idp

JOBS = "/api/v1/orchestrator/jobs"
__all__ = ["idp"]  # the fixture, imported to be found by pytest


@pytest.fixture
def verifier(idp: IdentityProvider) -> TokenVerifier:
    return TokenVerifier(Oauth2Config.model_validate(idp.oauth2()))


def test_a_token_of_the_provider_names_its_user_and_permissions(idp: IdentityProvider, verifier: TokenVerifier) -> None:
    assert verifier.verify(idp.mint("alice", ["read:job", "write:job"])) == TokenUser("alice", ("read:job", "write:job"))
    assert verifier.verify(idp.mint("bob", [])) == TokenUser("bob", ())
    assert verifier.verify(idp.mint("carol", aud=AUDIENCE)) == TokenUser("carol", ("*",))  # aud as a string


@pytest.mark.parametrize(
    ("claims", "why"),
    [({"exp": int(time.time()) - 60}, "expired"), ({"exp": None}, "no exp"), ({"iat": int(time.time()) + 3600}, "iat ahead"),
     ({"iss": "https://someone-else.test/"}, "issuer"), ({"aud": ["https://other.test/api"]}, "audience"),
     ({"aud": None}, "no audience"), ({"sub": 42}, "sub not a string"), ({"permissions": "read:job"}, "permissions not a list")],
)
def test_a_token_with_bad_claims_is_invalid(idp: IdentityProvider, verifier: TokenVerifier,
                                            claims: dict[str, object], why: str) -> None:
    assert verifier.verify(idp.mint("mallory", **claims)) == INVALID, why


def test_a_signature_by_another_key_is_invalid(idp: IdentityProvider, verifier: TokenVerifier) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert verifier.verify(idp.mint("mallory", key=forger)) == INVALID  # the provider's kid, another key
    assert verifier.verify(idp.mint("mallory", key=forger, kid="no-such-kid")) == INVALID


def test_only_rs256_is_accepted(idp: IdentityProvider, verifier: TokenVerifier) -> None:
    public_pem = idp.keys[idp.signing_kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = {"iss": idp.url, "aud": [AUDIENCE], "sub": "mallory", "exp": int(time.time()) + 60, "permissions": ["*"]}
    # The classic confusion: HS256 with the provider's public key as the shared secret (made by hand:
    # PyJWT itself refuses to sign so).
    head = _b64({"alg": "HS256", "typ": "JWT", "kid": idp.signing_kid})
    payload = _b64(body)
    mac = hmac.new(public_pem, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert verifier.verify(f"{head}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}") == INVALID
    assert verifier.verify(idp.mint("mallory", algorithm="RS512")) == INVALID
    assert verifier.verify(f"{_b64({'alg': 'none', 'kid': idp.signing_kid})}.{payload}.") == INVALID


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_rotated_key_is_fetched_when_first_seen(idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sso_module, "JWKS_REFRESH_COOLDOWN_S", 0.0)
    verifier = TokenVerifier(Oauth2Config.model_validate(idp.oauth2()))
    assert verifier.verify(idp.mint("alice")) == TokenUser("alice", ("*",))
    fetched = idp.jwks_fetches
    assert verifier.verify(idp.mint("alice")) == TokenUser("alice", ("*",))
    assert idp.jwks_fetches == fetched  # cached
    idp.rotate()
    assert verifier.verify(idp.mint("dave", ["read:*"])) == TokenUser("dave", ("read:*",))
    assert idp.jwks_fetches == fetched + 1


def test_made_up_key_ids_cannot_hammer_the_provider(idp: IdentityProvider, verifier: TokenVerifier) -> None:
    assert verifier.verify(idp.mint("alice")) == TokenUser("alice", ("*",))
    fetched = idp.jwks_fetches
    for n in range(20):
        assert verifier.verify(idp.mint("mallory", kid=f"made-up-{n}")) == INVALID
    assert idp.jwks_fetches <= fetched + 1  # one refresh per cooldown (JWKS_REFRESH_COOLDOWN_S), not one each


def test_an_unreachable_provider_makes_tokens_invalid_not_errors() -> None:
    stopped = IdentityProvider().start()
    token = stopped.mint("alice")
    config = Oauth2Config.model_validate(stopped.oauth2())
    stopped.close()
    assert TokenVerifier(config).verify(token) == INVALID


def test_without_jwt_settings_every_token_is_refused_as_not_configured(idp: IdentityProvider) -> None:
    assert TokenVerifier(Oauth2Config.model_validate({"ProviderID": "x"})).verify(idp.mint()) == NOT_CONFIGURED


def test_the_authorizer_grants_what_the_permissions_claim_says(idp: IdentityProvider) -> None:
    authorizer = build_authorizer(AuthConfig.from_user({"Oauth2": idp.oauth2()}))
    reader = f"Bearer {idp.mint('alice', ['read:job'])}"
    assert authorizer.is_slow(reader)  # may fetch the provider's keys: off the event loop
    allowed = authorizer.authorize("GET", JOBS, reader)
    assert allowed.approved and allowed.principal == "alice" and not allowed.reveal_env
    refused = authorizer.authorize("PUT", JOBS, reader)
    assert not refused.approved and refused.token_valid
    assert refused.reason == "user 'alice' does not have the required capability 'write:job'"
    full = authorizer.authorize("PUT", JOBS, f"Bearer {idp.mint('root', ['*'])}")
    assert full.approved and full.reveal_env
    expired = authorizer.authorize("GET", JOBS, f"Bearer {idp.mint('alice', exp=int(time.time()) - 5)}")
    assert not expired.approved and not expired.token_valid and expired.reason == "invalid JWT token"
