"""Client credentials from the environment, as Bacalhau's CLI reads them (cmd/util/api.go):
BACALHAU_API_KEY -> Bearer, BACALHAU_API_USERNAME + BACALHAU_API_PASSWORD -> Basic; both, or half a
pair, is an error. An explicit Authorization header wins in a client; in the CLI the environment wins
over a profile's token."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from bacalhau.cli.profile.loader import ApiTarget
from bacalhau.client import Client
from bacalhau.client.credentials import ENV_API_KEY, ENV_PASSWORD, ENV_USERNAME, env_authorization, with_credentials
from bacalhau.models.errors import ConfigurationError

BOTH = "authentication error: can't use both BACALHAU_API_KEY and BACALHAU_API_USERNAME/BACALHAU_API_PASSWORD simultaneously"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (ENV_API_KEY, ENV_USERNAME, ENV_PASSWORD):
        monkeypatch.delenv(name, raising=False)
    yield


def decode_basic(header: str) -> str:
    assert header.startswith("Basic "), header
    return base64.b64decode(header.removeprefix("Basic "), validate=True).decode()


def test_names_are_bacalhaus() -> None:
    assert (ENV_API_KEY, ENV_USERNAME, ENV_PASSWORD) == (
        "BACALHAU_API_KEY", "BACALHAU_API_USERNAME", "BACALHAU_API_PASSWORD"
    )


def test_nothing_set_means_no_header() -> None:
    assert env_authorization({}) is None
    assert env_authorization({ENV_API_KEY: "", ENV_USERNAME: "  ", ENV_PASSWORD: "\t"}) is None


def test_an_api_key_is_a_trimmed_bearer_token() -> None:
    assert env_authorization({ENV_API_KEY: "my-key-0123456789abcdef"}) == "Bearer my-key-0123456789abcdef"
    assert env_authorization({ENV_API_KEY: "  my-key \n"}) == "Bearer my-key"


def test_username_and_password_are_trimmed_basic_credentials() -> None:
    header = env_authorization({ENV_USERNAME: " alice ", ENV_PASSWORD: " pa:ss word \n"})
    assert header is not None
    assert decode_basic(header) == "alice:pa:ss word"
    # Standard base64 with padding, as Go's base64.StdEncoding.
    assert header == "Basic " + base64.b64encode(b"alice:pa:ss word").decode()


def test_unicode_credentials_are_utf8() -> None:
    header = env_authorization({ENV_USERNAME: "alice", ENV_PASSWORD: "pässwörd-€"})
    assert header is not None and decode_basic(header) == "alice:pässwörd-€"


@pytest.mark.parametrize(
    "env",
    [
        {ENV_API_KEY: "k", ENV_USERNAME: "alice", ENV_PASSWORD: "secret-password"},
        {ENV_API_KEY: "k", ENV_USERNAME: "alice"},
        {ENV_API_KEY: "k", ENV_PASSWORD: "secret-password"},
    ],
)
def test_a_key_with_any_part_of_a_pair_is_an_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        env_authorization(env)
    assert info.value.message == BOTH
    assert ENV_API_KEY in info.value.hint


def test_a_username_without_a_password_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        env_authorization({ENV_USERNAME: "alice", ENV_PASSWORD: "   "})
    assert info.value.message == "authentication error: BACALHAU_API_USERNAME provided but not BACALHAU_API_PASSWORD"


def test_a_password_without_a_username_is_an_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        env_authorization({ENV_PASSWORD: "secret-password"})
    assert info.value.message == "authentication error: BACALHAU_API_PASSWORD provided but not BACALHAU_API_USERNAME"


def test_blank_values_count_as_unset() -> None:
    # Trimmed first: a blank key with a full pair is the pair, a blank pair with a key is the key.
    header = env_authorization({ENV_API_KEY: "  ", ENV_USERNAME: "alice", ENV_PASSWORD: "secret-password"})
    assert header is not None and decode_basic(header) == "alice:secret-password"
    assert env_authorization({ENV_API_KEY: "k", ENV_USERNAME: " ", ENV_PASSWORD: ""}) == "Bearer k"


def test_env_authorization_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_authorization() is None
    monkeypatch.setenv(ENV_API_KEY, "from-the-env")
    assert env_authorization() == "Bearer from-the-env"


# -- with_credentials -------------------------------------------------------------------------------------
def test_with_credentials_adds_the_env_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    assert with_credentials(None) == {"Authorization": "Bearer env-key"}
    assert with_credentials({"X-Other": "1"}) == {"X-Other": "1", "Authorization": "Bearer env-key"}


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_with_credentials_keeps_an_explicit_header(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    assert with_credentials({name: "Bearer explicit"}) == {name: "Bearer explicit"}


def test_with_credentials_does_not_read_a_broken_env_when_a_header_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "k")
    monkeypatch.setenv(ENV_USERNAME, "alice")
    assert with_credentials({"Authorization": "Bearer explicit"}) == {"Authorization": "Bearer explicit"}
    with pytest.raises(ConfigurationError):
        with_credentials({})


def test_with_credentials_does_not_change_its_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    given = {"X-Other": "1"}
    with_credentials(given)
    assert given == {"X-Other": "1"}


def test_without_env_credentials_nothing_is_added() -> None:
    assert with_credentials(None) == {}
    assert with_credentials({"X-Other": "1"}) == {"X-Other": "1"}


# -- the Client sends it ------------------------------------------------------------------------------------
def _recording_client(seen: list[httpx.Request], **kwargs: object) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Status": "OK"})

    return Client(base_url="http://test", transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def test_the_client_sends_the_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_USERNAME, "alice")
    monkeypatch.setenv(ENV_PASSWORD, "secret-password")
    seen: list[httpx.Request] = []
    with _recording_client(seen) as client:
        client.alive()
    assert decode_basic(seen[0].headers["Authorization"]) == "alice:secret-password"


def test_the_client_prefers_an_explicit_header_to_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    seen: list[httpx.Request] = []
    with _recording_client(seen, headers={"Authorization": "Bearer explicit"}) as client:
        client.alive()
    assert seen[0].headers.get_list("Authorization") == ["Bearer explicit"]


def test_the_client_refuses_conflicting_env_credentials_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "k")
    monkeypatch.setenv(ENV_PASSWORD, "secret-password")
    seen: list[httpx.Request] = []
    with pytest.raises(ConfigurationError) as info:
        _recording_client(seen)
    assert info.value.message == BOTH
    assert seen == []


def test_a_client_without_credentials_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []
    with _recording_client(seen) as client:
        client.alive()
    assert "Authorization" not in seen[0].headers


# -- ApiTarget (the CLI): env before the profile token ----------------------------------------------------
def test_api_target_uses_the_profile_token_without_env_credentials() -> None:
    assert ApiTarget(token="profile-token").headers == {"Authorization": "Bearer profile-token"}
    assert ApiTarget().headers == {}


def test_api_target_prefers_an_env_key_to_the_profile_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    assert ApiTarget(token="profile-token").headers == {"Authorization": "Bearer env-key"}


def test_api_target_prefers_env_basic_to_the_profile_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_USERNAME, "alice")
    monkeypatch.setenv(ENV_PASSWORD, "secret-password")
    headers = ApiTarget(token="profile-token").headers
    assert decode_basic(headers["Authorization"]) == "alice:secret-password"


def test_api_target_without_a_profile_token_uses_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "env-key")
    assert ApiTarget().headers == {"Authorization": "Bearer env-key"}


def test_api_target_reports_conflicting_env_credentials_even_with_a_profile_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "k")
    monkeypatch.setenv(ENV_USERNAME, "alice")
    with pytest.raises(ConfigurationError) as info:
        _ = ApiTarget(token="profile-token").headers
    assert info.value.message == BOTH
