"""SSO end to end: a node trusting an identity provider (API.Auth.Oauth2), and the real CLI logging in
through the OAuth2 device flow, as a Bacalhau user does with `bacalhau auth sso login`.

The provider is tests/oauth_idp.py (the one fake: Auth0 or Keycloak cannot run here); the test plays
the user's browser by approving the code the CLI prints. Everything else is real: the node process, the
CLI processes, HTTP, RS256 tokens checked against the provider's JWKS.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oauth_idp import IdentityProvider, idp
from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario
__all__ = ["idp"]  # the fixture, imported to be found by pytest


@pytest.fixture(scope="module")
def node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[BacalhauNode]:
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool(extra_config=idp.node_config())
    finally:
        pool.close()


def login(node: BacalhauNode, idp: IdentityProvider, data_dir: Path, *, permissions: list[str] | None,
          subject: str = "alice") -> subprocess.CompletedProcess[str]:
    """`bacalhau auth sso login`; approves (or, with permissions None, denies) the code it prints."""
    env = {**node.env, "BACALHAU_DIR": str(data_dir)}
    with subprocess.Popen(
        [str(node.binary), "auth", "sso", "login"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, env=env,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        shown: list[str] = []
        deadline = time.monotonic() + 60
        code = None
        while code is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            shown.append(line)
            if found := re.search(r"2\. Enter this code: (\S+)", line):
                code = found.group(1)
        if code is None:
            process.kill()
            raise AssertionError(f"no code shown: {''.join(shown)}{process.stderr.read()}")
        if permissions is None:
            idp.deny(code)
        else:
            idp.approve(code, subject, permissions)
        # Read on through the text wrappers (communicate() would skip what readline() already buffered);
        # stderr holds a line or two, far below a pipe's capacity, so reading stdout first cannot block it.
        out = process.stdout.read()
        err = process.stderr.read()
        process.wait(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(shown) + out, err)


def test_auth_info_names_the_provider(node: BacalhauNode) -> None:
    out = node.ok("auth", "info").stdout
    assert "Provider Name: Local IdP" in out and "Provider ID: local-idp" in out, out


def test_without_a_token_the_api_refuses(node: BacalhauNode, tmp_path: Path) -> None:
    result = node.fails("job", "list", env={"BACALHAU_DIR": str(tmp_path)})
    assert "Missing Authorization header" in result.stdout + result.stderr, node.describe_result(result)


def test_login_then_the_token_carries_the_users_permissions(
    node: BacalhauNode, idp: IdentityProvider, tmp_path: Path
) -> None:
    done = login(node, idp, tmp_path, permissions=["read:job", "write:job"])
    assert done.returncode == 0, done
    assert "To login, please:" in done.stdout and "1. Open this URL in your browser: http" in done.stdout, done.stdout
    assert "Waiting for authentication with Local IdP..." in done.stdout
    assert "Successfully authenticated with Local IdP!" in done.stderr, done.stderr
    saved = json.loads((tmp_path / "jwt-tokens.json").read_text())
    assert list(saved) == [node.url] and saved[node.url].count(".") == 2, saved
    assert (tmp_path / "jwt-tokens.json").stat().st_mode & 0o777 == 0o600

    env = {"BACALHAU_DIR": str(tmp_path)}
    node.ok("job", "list", env=env)  # read:job, with the saved token
    refused = node.fails("node", "list", env=env)
    assert "user 'alice' does not have the required capability 'read:node'" in refused.stdout + refused.stderr, (
        node.describe_result(refused)
    )
    decoded = node.ok("auth", "sso", "token", "--decode", env=env).stdout
    assert "Header:" in decoded and '"sub": "alice"' in decoded and '"read:job"' in decoded, decoded

    out = node.ok("auth", "sso", "logout", "--force", env=env).stdout
    assert f"Successfully logged out from {node.url}" in out, out
    assert node.ok("auth", "sso", "token", env=env).stdout.strip() == "No authentication token found"
    after = node.fails("job", "list", env=env)
    assert "Missing Authorization header" in after.stdout + after.stderr, node.describe_result(after)


def test_login_keeps_the_token_in_a_profile_too(node: BacalhauNode, idp: IdentityProvider, tmp_path: Path) -> None:
    assert login(node, idp, tmp_path, permissions=["read:*"], subject="bob").returncode == 0
    name = f"127_0_0_1_{node.api_port}"
    profile = (tmp_path / "profiles" / f"{name}.yaml").read_text()
    assert f"endpoint: {node.url}" in profile and "token:" in profile, profile
    assert (tmp_path / "profiles" / "current").resolve().name == f"{name}.yaml"


def test_a_refused_login_saves_nothing(node: BacalhauNode, idp: IdentityProvider, tmp_path: Path) -> None:
    done = login(node, idp, tmp_path, permissions=None)
    assert done.returncode != 0
    assert "unable to finish SSO login flow" in done.stderr and "access_denied" in done.stderr, done.stderr
    assert not (tmp_path / "jwt-tokens.json").exists()


def test_logout_asks_first(node: BacalhauNode, tmp_path: Path) -> None:
    result = node.ok("auth", "sso", "logout", env={"BACALHAU_DIR": str(tmp_path)}, input="n\n")
    assert f"Are you sure you want to logout from {node.url}? (y/N): " in result.stdout
    assert "Logout cancelled" in result.stdout


def test_a_node_without_sso_says_so(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory,
                                    tmp_path: Path) -> None:
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        plain = pool()
        result = plain.fails("auth", "sso", "login", env={"BACALHAU_DIR": str(tmp_path)})
        assert "orchestrator does not support logging in using SSO" in result.stdout + result.stderr
    finally:
        pool.close()
