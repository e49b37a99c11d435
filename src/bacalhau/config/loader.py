"""Loading configuration in Bacalhau's order: defaults < config file < BACALHAU_* env < -c Key=value < flags.

`-c/--config` takes a YAML file path, `Key.Path=value`, or a bare `Key.Path` meaning `=true`.
Key paths are matched case-insensitively against the config tree; an unknown key is an error that
names it, rather than a setting silently ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from bacalhau.config.types import BacalhauConfig
from bacalhau.models.errors import ConfigurationError

log = logging.getLogger(__name__)

CONFIG_FILE_NAME = "config.yaml"
# Env vars that look like config keys but mean something else to the CLI.
_NOT_CONFIG_ENV = {"BACALHAU_DIR", "BACALHAU_PROFILE", "BACALHAU_API_KEY", "BACALHAU_API_USERNAME",
                   "BACALHAU_API_PASSWORD", "BACALHAU_HTTPS"}
# Env names of older Bacalhau releases, mapped to today's key (as `<PATH>` with `_` for `.`, upper case).
_LEGACY_ENV = {"BACALHAU_NODE_IPFS_CONNECT": "IPFS_CONNECT"}


def leaf_paths(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf key path of a nested mapping (`API.Port` -> 1234)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value and path not in ("Labels",):
            out.update(leaf_paths(value, path))
        else:
            out[path] = value
    return out


def _canonical_path(path: str, known: Mapping[str, Any]) -> str:
    lowered = path.strip().lower()
    for candidate in known:
        if candidate.lower() == lowered:
            return candidate
    # Allow setting into free-form maps: Labels.x, JobDefaults.Batch.Task.Publisher.Params.x
    for candidate, default in known.items():
        if isinstance(default, dict) and lowered.startswith(candidate.lower() + "."):
            return candidate + path.strip()[len(candidate):]
    raise ConfigurationError(
        f"unknown config key {path!r}",
        hint="run 'bacalhau config list' to see every key and its default",
    )


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge `extra` into `base`, matching keys case-insensitively."""
    for key, value in extra.items():
        existing = next((k for k in base if k.lower() == str(key).lower()), None)
        target = existing or str(key)
        if isinstance(value, Mapping) and isinstance(base.get(target), dict):
            _merge(base[target], value)
        else:
            base[target] = value


def _coerce(raw: str, default: Any) -> Any:
    """Turn a string from env or `-c` into the type the key holds."""
    if isinstance(default, list):
        if raw.strip().startswith("["):
            return yaml.safe_load(raw)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "t", "true", "yes", "on"):
            return True
        if lowered in ("0", "f", "false", "no", "off"):
            return False
        raise ConfigurationError(f"invalid boolean {raw!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"invalid integer {raw!r}") from None
    if isinstance(default, dict):
        loaded = yaml.safe_load(raw)
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"expected a mapping, got {raw!r}")
        return loaded
    return raw


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping of keys")
    return data


def load_config(
    config_args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    data_dir: str | None = None,
) -> BacalhauConfig:
    """Build the effective config. Raises ConfigurationError naming the bad key, value or file."""
    env = os.environ if env is None else env
    defaults = BacalhauConfig(DataDir=data_dir or env.get("BACALHAU_DIR") or BacalhauConfig().data_dir)
    tree = defaults.to_wire()
    known = leaf_paths(tree)

    files = [arg for arg in config_args if "=" not in arg and (arg.endswith((".yaml", ".yml", ".json")) or os.sep in arg)]
    if not files:
        default_file = os.path.join(tree["DataDir"], CONFIG_FILE_NAME)
        if os.path.exists(default_file):
            files = [default_file]
    given: set[str] = set()
    for path in files:
        data = _read_file(path)
        for key in leaf_paths(data):
            try:
                given.add(_canonical_path(key, known))
            except ConfigurationError:
                # Bacalhau's config has keys we do not model yet; a typo is worth a warning, while
                # refusing to start would break config files written for Bacalhau.
                log.warning("config file %s: unknown key %r is ignored", path, key)
        _merge(tree, data)

    for name, raw in env.items():
        if not name.startswith("BACALHAU_") or name in _NOT_CONFIG_ENV:
            continue
        key = _LEGACY_ENV.get(name, name[len("BACALHAU_"):])
        match = next((p for p in known if p.replace(".", "_").upper() == key), None)
        if match is not None:
            _set_path(tree, match, _coerce(raw, known[match]))
            given.add(match)

    for arg in config_args:
        if arg in files:
            continue
        key, sep, raw = arg.partition("=")
        path = _canonical_path(key, known)
        value: Any = _coerce(raw, known.get(path, "")) if sep else True
        _set_path(tree, path, value)
        given.add(path)

    for path, value in (overrides or {}).items():
        canonical = _canonical_path(path, known)
        _set_path(tree, canonical, value)
        given.add(canonical)

    try:
        config = BacalhauConfig.from_user(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid configuration: {problems}") from exc
    config.mark_set(given)
    return config
