"""Saved bearer tokens by API base URL, in Bacalhau's files (cmd/util/tokens.go):

    <DataDir>/jwt-tokens.json   SSO access tokens (`bacalhau auth sso login`)
    <DataDir>/tokens.json       tokens of Bacalhau's older login flows

Both hold one JSON object `{"http://127.0.0.1:1234": "<token>", ...}`, mode 0600; an empty file is an
empty object. A command that finds no credentials in the environment or its profile sends the token
saved for its base URL, jwt-tokens.json first (Bacalhau's order).
"""

from __future__ import annotations

import json
import os

from bacalhau.models.errors import ConfigurationError

JWT_TOKENS_FILE = "jwt-tokens.json"
LEGACY_TOKENS_FILE = "tokens.json"


class TokenFile:
    """One token file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        # A str, not a pathlib.Path: every authenticated command reads this file, and pathlib would be
        # the only reason such a command imports it.
        self.path = os.fspath(path)

    def read_all(self) -> dict[str, str]:
        """Every saved token by base URL. ConfigurationError for a file that is not such an object."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigurationError(f"failed to read tokens file {self.path}: {exc}", component="CLI") from exc
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"failed to read tokens file {self.path}: {exc}", component="CLI") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigurationError(f"failed to read tokens file {self.path}: not a map of tokens", component="CLI")
        return {str(k): v for k, v in data.items()}

    def get(self, base_url: str) -> str:
        """The token saved for `base_url`, "" when none."""
        return self.read_all().get(base_url, "")

    def put(self, base_url: str, token: str | None) -> None:
        """Save (or with None, remove) the token for `base_url`; the file is replaced whole, mode 0600."""
        tokens = self.read_all()
        if token is None:
            tokens.pop(base_url, None)
        else:
            tokens[base_url] = token
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        import tempfile  # only when writing: reading is on every command's path

        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tokens-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(tokens, out)
                out.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def saved_token(data_dir: str, base_url: str) -> str:
    """The token a command without other credentials sends to `base_url` ("" when none is saved)."""
    for name in (JWT_TOKENS_FILE, LEGACY_TOKENS_FILE):
        token = TokenFile(os.path.join(data_dir, name)).get(base_url)
        if token:
            return token
    return ""
