"""The caller's API credentials from the environment, as Bacalhau's CLI reads them (cmd/util/api.go):

    BACALHAU_API_KEY                                  Authorization: Bearer <key>
    BACALHAU_API_USERNAME + BACALHAU_API_PASSWORD     Authorization: Basic base64(user:password)

Both at once, or half a pair, is an error before anything is sent. In the CLI they win over a
profile's token; a client given an Authorization header explicitly uses that.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from bacalhau.models.errors import ConfigurationError

ENV_API_KEY = "BACALHAU_API_KEY"
ENV_USERNAME = "BACALHAU_API_USERNAME"
ENV_PASSWORD = "BACALHAU_API_PASSWORD"


def env_authorization(environ: Mapping[str, str] | None = None) -> str | None:
    """The Authorization header the environment's credentials make, None when it has none."""
    env = os.environ if environ is None else environ
    key = env.get(ENV_API_KEY, "").strip()
    username = env.get(ENV_USERNAME, "").strip()
    password = env.get(ENV_PASSWORD, "").strip()
    if key and (username or password):
        raise _error(f"can't use both {ENV_API_KEY} and {ENV_USERNAME}/{ENV_PASSWORD} simultaneously")
    if key:
        return f"Bearer {key}"
    if username and not password:
        raise _error(f"{ENV_USERNAME} provided but not {ENV_PASSWORD}")
    if password and not username:
        raise _error(f"{ENV_PASSWORD} provided but not {ENV_USERNAME}")
    if username:
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return None


def with_credentials(headers: Mapping[str, str] | None) -> dict[str, str]:
    """`headers` plus the environment's Authorization when they carry none (an explicit header wins)."""
    out = dict(headers or {})
    if not any(name.lower() == "authorization" for name in out):
        found = env_authorization()
        if found is not None:
            out["Authorization"] = found
    return out


def _error(problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"authentication error: {problem}",
        hint=f"set {ENV_API_KEY}, or both {ENV_USERNAME} and {ENV_PASSWORD}",
    )
