"""The users authorizer: a request's Authorization header -> approved / 401 / 403 with Bacalhau's reasons
(pkg/authz/entry_point_authorizer.go, basic_auth_authorizer.go, api_key_authorizer.go), and which
authorizer a node builds from API.Auth."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bacalhau.auth.authorizer import AllowAll, Decision, UsersAuthorizer, build_authorizer
from bacalhau.auth.users import hash_password
from bacalhau.config.api_auth import AuthConfig
from bacalhau.models.errors import ConfigurationError

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
PASSWORD = "admin-password-1"
READER_KEY = "reader-key-0123456789-ZYXWV"
WRITER_KEY = "writer-key-0123456789-QRSTU"
ANON_KEY = "anonymous-key-0123456789-LMNOP"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def jwt_shaped() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': 'someone', 'exp': 4102444800})}.c2lnbmF0dXJl"


def config(users: list[dict[str, Any]], **extra: Any) -> AuthConfig:
    return AuthConfig.from_user({"Users": users, **extra})


@pytest.fixture(scope="module")
def authorizer() -> UsersAuthorizer:
    return UsersAuthorizer(
        config(
            [
                {"Alias": "admin", "Username": "Alice", "Password": hash_password(PASSWORD), "Capabilities": [{"Actions": ["*"]}]},
                {"Username": "bob", "Password": "bob-plain-password", "Capabilities": [{"Actions": ["read:job"]}]},
                {"Alias": "reader", "APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
                {"Alias": "writer", "APIKey": WRITER_KEY, "Capabilities": [{"Actions": ["write:job"]}]},
                {"APIKey": ANON_KEY, "Capabilities": [{"Actions": ["read:node"]}]},
            ]
        )
    )


def unidentified(decision: Decision, reason: str) -> None:
    assert decision == Decision(approved=False, token_valid=False, reason=reason, principal=""), decision


def forbidden(decision: Decision, reason: str) -> None:
    assert not decision.approved and decision.token_valid, decision
    assert decision.reason == reason, decision


def approved(decision: Decision) -> None:
    assert decision.approved and decision.token_valid, decision


# -- no credentials -------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_401(authorizer: UsersAuthorizer, header: str | None) -> None:
    unidentified(authorizer.authorize("GET", JOBS, header), "Missing Authorization header")


@pytest.mark.parametrize(
    "path", ["/api/v1/auth", "/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/agent/authconfig", "/api/v1/version"]
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-key-000000000000", "Token x"])
def test_open_paths_are_approved_whatever_the_header(authorizer: UsersAuthorizer, path: str, header: str | None) -> None:
    approved(authorizer.authorize("GET", path, header))


def test_an_unknown_path_needs_write_node(authorizer: UsersAuthorizer) -> None:
    unidentified(authorizer.authorize("GET", "/nope", None), "Missing Authorization header")
    forbidden(
        authorizer.authorize("GET", "/nope", f"Bearer {READER_KEY}"),
        "user 'reader' does not have the required capability 'write:node'",
    )
    approved(authorizer.authorize("GET", "/nope", basic("alice", PASSWORD)))


# -- Basic ----------------------------------------------------------------------------------------------
def test_basic_with_the_right_password_is_approved_with_the_principal(authorizer: UsersAuthorizer) -> None:
    decision = authorizer.authorize("PUT", JOBS, basic("Alice", PASSWORD))
    approved(decision)
    assert decision.principal == "admin"


@pytest.mark.parametrize("username", ["alice", "ALICE", "aLiCe"])
def test_basic_usernames_are_case_insensitive(authorizer: UsersAuthorizer, username: str) -> None:
    approved(authorizer.authorize("DELETE", f"{JOBS}/j-1", basic(username, PASSWORD)))


def test_basic_with_a_plain_stored_password(authorizer: UsersAuthorizer) -> None:
    approved(authorizer.authorize("GET", JOBS, basic("bob", "bob-plain-password")))


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", PASSWORD + "x"), ("alice", PASSWORD.upper()), ("alice", ""), ("carol", PASSWORD), ("", PASSWORD),
     ("bob", "bob-plain-passwor"), ("reader", READER_KEY)],
)
def test_basic_with_a_wrong_password_or_unknown_user_is_401(authorizer: UsersAuthorizer, username: str, password: str) -> None:
    unidentified(authorizer.authorize("GET", JOBS, basic(username, password)), "invalid basic auth credentials")


def test_basic_splits_at_the_first_colon(authorizer: UsersAuthorizer) -> None:
    # A password may contain ':'; the username may not (it is alphanumeric).
    strange = UsersAuthorizer(config([{"Username": "u", "Password": "pass:word:123", "Capabilities": [{"Actions": ["*"]}]}]))
    approved(strange.authorize("GET", JOBS, basic("u", "pass:word:123")))
    unidentified(strange.authorize("GET", JOBS, basic("u", "pass")), "invalid basic auth credentials")
    unidentified(strange.authorize("GET", JOBS, basic("u", "word:123")), "invalid basic auth credentials")


@pytest.mark.parametrize("encoded", ["!!!not-base64!!!", "YWxpY2U6cGFzc3dvcmQ", "%%%%"])
def test_basic_that_is_not_base64_is_401(authorizer: UsersAuthorizer, encoded: str) -> None:
    unidentified(authorizer.authorize("GET", JOBS, f"Basic {encoded}"), "failed to decode basic auth credentials")


@pytest.mark.parametrize("decoded", ["alice", "", "alice-password-without-colon"])
def test_basic_without_a_colon_is_401(authorizer: UsersAuthorizer, decoded: str) -> None:
    header = "Basic " + base64.b64encode(decoded.encode()).decode()
    unidentified(authorizer.authorize("GET", JOBS, header), "invalid basic auth credentials format")


def test_basic_forbidden_names_the_alias(authorizer: UsersAuthorizer) -> None:
    # bob has no alias: his username; a reader of jobs only.
    forbidden(
        authorizer.authorize("PUT", JOBS, basic("BOB", "bob-plain-password")),
        "user 'bob' does not have the required capability 'write:job'",
    )
    forbidden(
        authorizer.authorize("GET", NODES, basic("bob", "bob-plain-password")),
        "user 'bob' does not have the required capability 'read:node'",
    )


# -- Bearer ---------------------------------------------------------------------------------------------
def test_bearer_with_a_known_key_is_approved(authorizer: UsersAuthorizer) -> None:
    decision = authorizer.authorize("GET", NODES, f"Bearer {READER_KEY}")
    approved(decision)
    assert decision.principal == "reader"


@pytest.mark.parametrize("key", ["wrong-key-000000000000000", READER_KEY.lower(), READER_KEY[:-1], READER_KEY + "x", PASSWORD])
def test_bearer_with_an_unknown_key_is_401(authorizer: UsersAuthorizer, key: str) -> None:
    unidentified(authorizer.authorize("GET", JOBS, f"Bearer {key}"), "invalid API key")


def test_bearer_with_an_empty_key_is_401(authorizer: UsersAuthorizer) -> None:
    unidentified(authorizer.authorize("GET", JOBS, "Bearer "), "empty API key provided")


def test_a_jwt_shaped_bearer_token_is_not_looked_up_as_a_key(authorizer: UsersAuthorizer) -> None:
    decision = authorizer.authorize("GET", JOBS, f"Bearer {jwt_shaped()}")
    assert not decision.approved and not decision.token_valid, decision
    assert decision.reason == "OAuth2 authentication not configured on server"


def test_a_three_part_key_whose_parts_are_not_json_is_an_api_key(authorizer: UsersAuthorizer) -> None:
    dotted = "abc.def.ghijklmnopqrstuvwxyz"
    keyed = UsersAuthorizer(config([{"Alias": "dots", "APIKey": dotted, "Capabilities": [{"Actions": ["read:job"]}]}]))
    approved(keyed.authorize("GET", JOBS, f"Bearer {dotted}"))
    unidentified(authorizer.authorize("GET", JOBS, f"Bearer {dotted}"), "invalid API key")


@pytest.mark.parametrize(
    "header",
    [f"bearer {READER_KEY}", f"BEARER {READER_KEY}", f"basic {basic('alice', PASSWORD)[6:]}", f"Token {READER_KEY}",
     READER_KEY, f"Bearer\t{READER_KEY}", "Basic", "Bearer", f"Digest {READER_KEY}"],
)
def test_other_schemes_are_unsupported(authorizer: UsersAuthorizer, header: str) -> None:
    # Scheme prefixes are case-sensitive and need their space, as Go's strings.HasPrefix(h, "Bearer ").
    unidentified(authorizer.authorize("GET", JOBS, header), "unsupported authentication method")


# -- capabilities through the authorizer -----------------------------------------------------------------
def test_read_star_reads_everything_and_writes_nothing(authorizer: UsersAuthorizer) -> None:
    key = f"Bearer {READER_KEY}"
    for path in (JOBS, f"{JOBS}/j-1/logs", NODES, "/api/v1/agent/config", "/api/v1/agent/node"):
        approved(authorizer.authorize("GET", path, key))
    forbidden(authorizer.authorize("PUT", JOBS, key), "user 'reader' does not have the required capability 'write:job'")
    forbidden(authorizer.authorize("HEAD", JOBS, key), "user 'reader' does not have the required capability 'write:job'")
    forbidden(authorizer.authorize("PUT", f"{NODES}/n-1", key), "user 'reader' does not have the required capability 'write:node'")


def test_write_job_does_not_read_jobs(authorizer: UsersAuthorizer) -> None:
    key = f"Bearer {WRITER_KEY}"
    approved(authorizer.authorize("PUT", JOBS, key))
    approved(authorizer.authorize("DELETE", f"{JOBS}/j-1", key))
    approved(authorizer.authorize("PUT", f"{JOBS}/j-1/rerun", key))
    forbidden(authorizer.authorize("GET", JOBS, key), "user 'writer' does not have the required capability 'read:job'")
    forbidden(authorizer.authorize("GET", f"{JOBS}/j-1", key), "user 'writer' does not have the required capability 'read:job'")
    forbidden(authorizer.authorize("PUT", f"{NODES}/n-1", key), "user 'writer' does not have the required capability 'write:node'")


def test_an_api_key_user_without_alias_is_named_by_its_key_end(authorizer: UsersAuthorizer) -> None:
    decision = authorizer.authorize("GET", JOBS, f"Bearer {ANON_KEY}")
    forbidden(decision, "user 'API key ending in ...LMNOP' does not have the required capability 'read:job'")
    assert ANON_KEY not in decision.reason and decision.principal == "API key ending in ...LMNOP"


def test_only_the_scheme_matters_not_the_user_kind(authorizer: UsersAuthorizer) -> None:
    # A Basic user's password used as a Bearer key, and an API key in Basic: both unknown.
    unidentified(authorizer.authorize("GET", JOBS, f"Bearer {PASSWORD}"), "invalid API key")
    unidentified(authorizer.authorize("GET", JOBS, basic("reader", READER_KEY)), "invalid basic auth credentials")


def test_the_authorizer_is_enforced_and_allow_all_is_not() -> None:
    assert UsersAuthorizer(config([{"APIKey": READER_KEY, "Capabilities": [{"Actions": ["*"]}]}])).enforced is True
    allow = AllowAll()
    assert allow.enforced is False
    for method, path, header in [("PUT", JOBS, None), ("GET", "/nope", "Token x"), ("DELETE", f"{NODES}/n", "Bearer x")]:
        decision = allow.authorize(method, path, header)
        assert decision.approved and decision.token_valid


# -- build_authorizer -----------------------------------------------------------------------------------
def test_build_authorizer_without_users_allows_all() -> None:
    assert isinstance(build_authorizer(AuthConfig()), AllowAll)
    # Bacalhau's default Methods (ClientKey challenge) do not switch enforcement on.
    assert isinstance(build_authorizer(AuthConfig.from_user({"Methods": {"ClientKey": {"Type": "challenge"}}})), AllowAll)


def test_build_authorizer_with_users_enforces_them() -> None:
    built = build_authorizer(config([{"APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]}]))
    assert isinstance(built, UsersAuthorizer) and built.enforced
    approved(built.authorize("GET", JOBS, f"Bearer {READER_KEY}"))


def test_build_authorizer_checks_the_users() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_authorizer(config([{"Alias": "ghost", "Capabilities": [{"Actions": ["*"]}]}]))
    assert info.value.message.startswith("error initializing users: user 'ghost' has neither")


@pytest.mark.parametrize("users", [[], [{"APIKey": READER_KEY, "Capabilities": [{"Actions": ["*"]}]}]])
def test_a_provider_id_alone_switches_checks_on_and_refuses_every_jwt(users: list[dict[str, Any]]) -> None:
    authorizer = build_authorizer(config(users, Oauth2={"ProviderID": "auth0", "ProviderName": "Auth0"}))
    assert authorizer.enforced
    decision = authorizer.authorize("GET", "/api/v1/orchestrator/jobs", f"Bearer {jwt_shaped()}")
    assert not decision.approved and not decision.token_valid
    assert decision.reason == "OAuth2 authentication not configured on server"


@pytest.mark.parametrize(
    ("oauth2", "message"),
    [({"ProviderID": "x", "Issuer": "https://idp.example"},
      "missing required OAuth2 fields for JWT authorization: JWKSUri, Audience, DeviceClientID"),
     ({"ProviderID": "x", "JWKSUri": "jwks.json", "Issuer": "i", "Audience": "a", "DeviceClientID": "c"},
      "invalid JWKS URL format: jwks.json")],
)
def test_an_incomplete_sso_setup_is_refused_in_bacalhaus_words(oauth2: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_authorizer(config([], Oauth2=oauth2))
    assert info.value.message == message


def test_build_authorizer_reads_provider_id_in_any_key_case() -> None:
    assert build_authorizer(AuthConfig.from_user({"oauth2": {"providerid": "auth0"}})).enforced


def test_oauth2_without_a_provider_id_is_not_refused() -> None:
    # Bacalhau switches its users/OAuth2 authorizer on with Users or ProviderID only.
    assert isinstance(build_authorizer(AuthConfig.from_user({"Oauth2": {"Issuer": "https://idp.example"}})), AllowAll)


@pytest.mark.parametrize("users", [[], [{"APIKey": READER_KEY, "Capabilities": [{"Actions": ["*"]}]}]])
def test_build_authorizer_refuses_an_access_policy(users: list[dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_authorizer(config(users, AccessPolicyPath="/etc/bacalhau/policy.rego"))
    assert "AccessPolicyPath" in info.value.message and "not supported" in info.value.message, info.value.message
