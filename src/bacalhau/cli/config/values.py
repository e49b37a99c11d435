"""How `config set` turns KEY and its VALUE words into a typed config value (Bacalhau's CastConfigValueForKey).

The key's type is the type of its default in the config schema:

  list    `a,b` (one word) or `a b` (several words) -> [a, b]
  mapping `k=v,k2=v2` -> {k: v, k2: v2}; every item needs exactly one `=`, a key and a value
  bool    Go's strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False
  int     a base-10 integer
  string  the first word as is; DataDir is made absolute (`~` expanded) and may not hold `$`

Only the first word counts for the scalar types, as in Bacalhau. Keys match case-insensitively.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bacalhau.models.errors import ConfigurationError

_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_INT = re.compile(r"[+-]?[0-9]+")
_MAP_HINT = "Accepted formats: 'key=value', 'key1=value1,key2=value2', etc."
DATA_DIR_KEY = "DataDir"


@dataclass(frozen=True)
class ConfigKey:
    """A config key in the schema's spelling (`API.Port`) and the default that gives its type."""

    path: str
    default: Any


def find_key(key: str, known: Mapping[str, Any]) -> ConfigKey:
    """The schema's key for `key` (any case); a key inside a free-form map (`Labels.x`) is a string.

    Raises ConfigurationError `"<key>" is not a valid config key` for anything else.
    """
    lowered = key.lower()
    for path, default in known.items():
        if path.lower() == lowered:
            return ConfigKey(path, default)
    for path, default in known.items():
        if isinstance(default, dict) and lowered.startswith(path.lower() + "."):
            return ConfigKey(path + key[len(path):], "")
    raise ConfigurationError(
        f'"{lowered}" is not a valid config key',
        hint="Run 'bacalhau config list' for the complete list of valid config keys",
    )


def cast_value(key: ConfigKey, values: Sequence[str]) -> Any:
    """The typed value of `values` for `key`. Raises ConfigurationError naming the key and the value."""
    name = key.path.lower()
    default = key.default
    if isinstance(default, list):
        if len(values) == 1 and "," in values[0]:
            return values[0].split(",")
        return list(values)
    first = values[0]
    if isinstance(default, dict):
        return string_pairs(first.split(","))
    if isinstance(default, bool):
        if first in _GO_TRUE + _GO_FALSE:
            return first in _GO_TRUE
        raise ConfigurationError(f'config key: "{name}" expects a boolean value, received: "{first}"',
                                 hint="Accepted formats: 'true' or 'false'")
    if isinstance(default, int):
        if _INT.fullmatch(first):
            return int(first)
        raise ConfigurationError(f'config key: "{name}" expects an integer value, received: "{first}"',
                                 hint="Accepted formats: '1', '2', '10', etc.")
    if key.path == DATA_DIR_KEY:
        return data_dir_path(first)
    return first


def string_pairs(items: Sequence[str]) -> dict[str, str]:
    """`k=v` items into a mapping, refusing a missing `=`, a second `=`, an empty key or value."""
    out: dict[str, str] = {}
    shown = "[" + " ".join(items) + "]"
    for item in items:
        tokens = item.split("=")
        if len(tokens) < 2:
            problem = f"expected 'key=value', but found no '=' in '{item}'"
        elif len(tokens) > 2:
            problem = f"found multiple '=' in '{item}'. Only one '=' is allowed per key-value pair"
        elif not tokens[0]:
            problem = f"missing key before '=' in '{item}'. A valid key is required"
        elif not tokens[1]:
            problem = f"missing value after '=' for key '{tokens[0]}'. A valid value is required"
        else:
            out[tokens[0]] = tokens[1]
            continue
        raise ConfigurationError(f"invalid format {shown}: {problem}", hint=_MAP_HINT)
    return out


def data_dir_path(raw: str) -> str:
    """DataDir as Bacalhau stores it: `~` expanded, made absolute; `$` refused (it is never expanded)."""
    path = os.path.abspath(os.path.expanduser(raw)) if raw else raw
    if not path:
        raise ConfigurationError("data dir path is empty", hint="Provide a valid path for the data directory")
    if "$" in path:
        raise ConfigurationError(f'data dir path "{path}" contains a \'$\' character',
                                 hint="Note that environment variables are not expanded will be used as-is")
    return path
