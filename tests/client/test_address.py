"""Where the client connects: arguments, then BACALHAU_API_* env, then defaults."""

from __future__ import annotations

import pytest

from bacalhau.client.address import resolve_base_url, websocket_url


def test_defaults_to_loopback_port_1234() -> None:
    assert resolve_base_url(env={}) == "http://127.0.0.1:1234"


def test_env_host_and_port_are_used() -> None:
    assert resolve_base_url(env={"BACALHAU_API_HOST": "example.org", "BACALHAU_API_PORT": "4321"}) == (
        "http://example.org:4321"
    )


def test_arguments_beat_env() -> None:
    env = {"BACALHAU_API_HOST": "example.org", "BACALHAU_API_PORT": "4321"}
    assert resolve_base_url(host="other", port=99, env=env) == "http://other:99"


def test_all_interfaces_host_is_reached_on_loopback() -> None:
    assert resolve_base_url(host="0.0.0.0", env={}) == "http://127.0.0.1:1234"


def test_bacalhau_https_switches_the_scheme() -> None:
    assert resolve_base_url(host="h", env={"BACALHAU_HTTPS": "1"}) == "https://h:1234"


def test_host_may_be_a_full_url_with_its_own_port() -> None:
    assert resolve_base_url(host="https://api.example.org:8443/", env={}) == "https://api.example.org:8443"


def test_a_url_host_without_port_gets_an_explicit_port_only() -> None:
    assert resolve_base_url(host="https://api.example.org", env={}) == "https://api.example.org"
    assert resolve_base_url(host="http://api.example.org", port=1234, env={}) == "http://api.example.org:1234"


def test_explicit_base_url_wins_and_loses_its_trailing_slash() -> None:
    assert resolve_base_url(base_url="http://x:1/", host="y", env={}) == "http://x:1"


def test_ipv6_hosts_are_bracketed() -> None:
    assert resolve_base_url(host="::1", port=5, env={}) == "http://[::1]:5"


def test_a_bad_port_in_env_names_the_variable() -> None:
    with pytest.raises(ValueError, match="BACALHAU_API_PORT"):
        resolve_base_url(env={"BACALHAU_API_PORT": "abc"})


def test_websocket_url_follows_the_scheme() -> None:
    assert websocket_url("http://h:1", "/p") == "ws://h:1/p"
    assert websocket_url("https://h", "/p") == "wss://h/p"
