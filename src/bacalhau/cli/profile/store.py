"""CLI connection profiles on disk, laid out exactly as Bacalhau v1.9 lays them out.

    $BACALHAU_DIR/profiles/
        prod.yaml            one file per profile, holding only the fields that are set:
        dev.yaml               endpoint, description, timeout, auth.token, tls.insecure
        current -> prod.yaml a relative symlink naming the selected profile (absent: none selected)

Files are YAML with lower-case keys, nested mappings indented by four spaces (what Go's yaml.v3
writes), mode 0600 in a 0755 directory, so Bacalhau and bacalhau-py can share a data directory.
Mirrors Bacalhau's `pkg/config/profile/{types,store}.go`, including its error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bacalhau.models.errors import ConfigurationError, NotFoundError

PROFILES_DIR = "profiles"
EXTENSION = ".yaml"
CURRENT_LINK = "current"
DEFAULT_TIMEOUT = "30s"
_FILE_MODE = 0o600
_DIR_MODE = 0o755
_COMPONENT = "CLI"
_NUMBER = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_PART.pattern})+")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def quoted(text: str) -> str:
    """A name the way Go's %q prints it (`"prod"`), for messages identical to Bacalhau's."""
    return json.dumps(text, ensure_ascii=False)


def check_go_duration(text: str) -> float:
    """Seconds in a Go duration (`30s`, `1m30s`, `-2h`); raises ValueError worded as Go's time package.

    As in Go, a bare number other than 0 lacks its unit (`time: missing unit in duration "30"`).
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    if _NUMBER.fullmatch(body):
        raise ValueError(f"time: missing unit in duration {quoted(text)}")
    if not body or not _DURATION.fullmatch(body):
        raise ValueError(f"time: invalid duration {quoted(text)}")
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in _PART.findall(body))
    return -seconds if text.startswith("-") else seconds


@dataclass
class Profile:
    """One endpoint and how to talk to it. Empty fields are not written to the file."""

    endpoint: str = ""
    description: str = ""
    timeout: str = ""
    token: str = ""  # auth.token: sent as `Authorization: Bearer <token>`
    insecure: bool = False  # tls.insecure: skip certificate verification for https endpoints

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Profile:
        """A profile from a parsed file; unknown keys are ignored, as yaml.v3 does."""
        auth = data.get("auth") or {}
        tls = data.get("tls") or {}
        return cls(
            endpoint=_text(data.get("endpoint")),
            description=_text(data.get("description")),
            timeout=_text(data.get("timeout")),
            token=_text(auth.get("token")) if isinstance(auth, Mapping) else "",
            insecure=bool(tls.get("insecure")) if isinstance(tls, Mapping) else False,
        )

    def to_mapping(self) -> dict[str, Any]:
        """The file's content, in Bacalhau's field order, without empty fields (Go's omitempty)."""
        data: dict[str, Any] = {}
        for key, value in (("endpoint", self.endpoint), ("description", self.description), ("timeout", self.timeout)):
            if value:
                data[key] = value
        if self.token:
            data["auth"] = {"token": self.token}
        if self.insecure:
            data["tls"] = {"insecure": True}
        return data

    def validate(self) -> None:
        """Raise ConfigurationError when the endpoint is missing or the timeout is not a Go duration."""
        if not self.endpoint.strip():
            raise ConfigurationError("endpoint is required", component=_COMPONENT)
        if self.timeout:
            try:
                check_go_duration(self.timeout)
            except ValueError as exc:
                raise ConfigurationError(f"invalid timeout {quoted(self.timeout)}: {exc}", component=_COMPONENT) from exc

    @property
    def effective_timeout(self) -> str:
        """The timeout as written, else Bacalhau's default (30s)."""
        return self.timeout or DEFAULT_TIMEOUT

    def timeout_s(self) -> float | None:
        """Request timeout in seconds; None (no timeout) for 0. Raises ConfigurationError if invalid."""
        try:
            seconds = check_go_duration(self.effective_timeout)
        except ValueError as exc:
            raise ConfigurationError(f"invalid timeout {quoted(self.timeout)}: {exc}", component=_COMPONENT) from exc
        return seconds if seconds > 0 else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"profile {quoted(name)} not found",
        component=_COMPONENT,
        hint="list the profiles with 'bacalhau profile list', create one with "
        "'bacalhau profile save <name> --endpoint <url>'",
    )


def _check_name(name: str) -> None:
    if not name.strip():
        raise ConfigurationError("profile name cannot be empty", component=_COMPONENT)


def file_stem(name: str) -> str:
    """The file name (without .yaml) a profile name maps to: its last path element, `..` defused.

    Bacalhau's sanitizeName (filepath.Base, then `..` -> `_`), so a name cannot escape the directory.
    """
    trimmed = name.rstrip("/")
    base = os.path.basename(trimmed) if trimmed else "/"
    return (base or ".").replace("..", "_")


class ProfileStore:
    """Reads and writes the profiles of one directory (`$BACALHAU_DIR/profiles`)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> ProfileStore:
        """The store Bacalhau uses for a data directory."""
        return cls(os.path.join(os.fspath(data_dir), PROFILES_DIR))

    def path(self, name: str) -> str:
        """The file holding profile `name`."""
        return os.path.join(self.directory, file_stem(name) + EXTENSION)

    @property
    def current_path(self) -> str:
        """The `current` symlink."""
        return os.path.join(self.directory, CURRENT_LINK)

    def save(self, name: str, profile: Profile) -> None:
        """Write (create or replace) a profile. Raises ConfigurationError for a bad name or profile."""
        import yaml

        _check_name(name)
        try:
            profile.validate()
        except ConfigurationError as exc:
            raise ConfigurationError(f"invalid profile: {exc.message}", component=_COMPONENT) from exc
        os.makedirs(self.directory, mode=_DIR_MODE, exist_ok=True)
        text = yaml.safe_dump(profile.to_mapping(), sort_keys=False, indent=4, default_flow_style=False,
                              allow_unicode=True)
        # Written beside the target and renamed over it, so a crash never leaves half a profile.
        import tempfile  # only when writing: reading is on every command's path

        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".profile-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, self.path(name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load(self, name: str) -> Profile:
        """Read a profile. Raises NotFoundError if there is none, ConfigurationError if unreadable."""
        import yaml

        _check_name(name)
        try:
            with open(self.path(name), encoding="utf-8") as src:
                data = yaml.safe_load(src)
        except FileNotFoundError:
            raise _not_found(name) from None
        except OSError as exc:
            raise ConfigurationError(f"reading profile file: {exc}", component=_COMPONENT) from exc
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"parsing profile: {exc}", component=_COMPONENT) from exc
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"parsing profile: {self.path(name)} does not hold a mapping",
                                     component=_COMPONENT)
        return Profile.from_mapping(data)

    def exists(self, name: str) -> bool:
        """Whether a file exists for profile `name`."""
        return bool(name.strip()) and os.path.exists(self.path(name))

    def delete(self, name: str) -> None:
        """Remove a profile (and the `current` link if it named it). Raises NotFoundError."""
        _check_name(name)
        if self.current_or_empty() == name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.current_path)
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            raise _not_found(name) from None

    def names(self) -> list[str]:
        """Every profile name, sorted by file name (as Go's os.ReadDir returns them). Raises ConfigurationError."""
        try:
            entries = sorted(os.scandir(self.directory), key=lambda entry: entry.name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigurationError(f"reading profiles directory: {exc}", component=_COMPONENT) from exc
        return [
            entry.name[: -len(EXTENSION)]
            for entry in entries
            if entry.name.endswith(EXTENSION) and entry.name != CURRENT_LINK and not entry.is_dir(follow_symlinks=False)
        ]

    def select(self, name: str) -> None:
        """Point `current` at profile `name` (a relative symlink). Raises NotFoundError."""
        _check_name(name)
        self.load(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.current_path)
        os.symlink(file_stem(name) + EXTENSION, self.current_path)

    def current(self) -> str:
        """The selected profile's name, "" when none. Raises ConfigurationError if `current` is unreadable."""
        try:
            target = os.readlink(self.current_path)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise ConfigurationError(f"reading current symlink: {exc}", component=_COMPONENT) from exc
        name = os.path.basename(target)
        return name[: -len(EXTENSION)] if name.endswith(EXTENSION) else name

    def current_or_empty(self) -> str:
        """current(), treating an unreadable link as no selection (what Bacalhau's loader does)."""
        try:
            return self.current()
        except ConfigurationError:
            return ""
