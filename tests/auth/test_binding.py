"""Where the API listens: without users, 127.0.0.1 unless API.Host is set; a warning when it is set to
something beyond loopback without authentication; with users, API.Host as given."""

from __future__ import annotations

import pytest

from bacalhau.auth.binding import LOOPBACK, Binding, api_binding


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", "10.1.2.3", "::", "example.com"])
@pytest.mark.parametrize("host_is_set", [True, False])
def test_with_users_the_api_listens_where_api_host_says_silently(host: str, host_is_set: bool) -> None:
    assert api_binding(host, host_is_set=host_is_set, enforced=True) == Binding(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "127.0.0.1"])
def test_without_users_and_without_api_host_the_api_listens_on_loopback(host: str) -> None:
    binding = api_binding(host, host_is_set=False, enforced=False)
    assert binding.host == LOOPBACK == "127.0.0.1"
    assert not binding.warning
    assert "127.0.0.1" in binding.message and "API.Auth.Users" in binding.message, binding.message


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com", "", "192.168.0.10", "[::]"])
def test_without_users_a_non_loopback_api_host_is_kept_with_a_warning(host: str) -> None:
    binding = api_binding(host, host_is_set=True, enforced=False)
    assert binding.host == host
    assert binding.warning
    assert "without authentication" in binding.message and "API.Auth.Users" in binding.message, binding.message
    assert (host or "") in binding.message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "localhost", "::1", "[::1]"])
def test_without_users_a_loopback_api_host_is_kept_silently(host: str) -> None:
    assert api_binding(host, host_is_set=True, enforced=False) == Binding(host)


def test_a_name_that_merely_starts_like_loopback_is_not_loopback() -> None:
    for host in ("localhost.example.com", "127.0.0.1.nip.io", "LOCALHOST.evil"):
        assert api_binding(host, host_is_set=True, enforced=False).warning, host
