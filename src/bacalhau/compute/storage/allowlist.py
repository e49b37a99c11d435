"""The host paths a compute node lets jobs mount: `Compute.AllowListedLocalPaths`.

Each entry is `path[:ro|:rw]` (read-only by default) and the path is a doublestar glob, as in
Bacalhau: `*` and `?` stay within one path segment, `**` spans any number of segments (zero
included), `[abc]` is a character class and `{a,b}` an alternation. An entry without glob
characters allows the folder itself and everything below it.

Paths are compared after `os.path.realpath`, both the requested one and the literal (non-glob)
prefix of each entry, so neither `..` nor a symlink can lead out of an allowed folder.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from functools import lru_cache

_GLOB_CHARS = frozenset("*?[{")


@dataclass(frozen=True)
class AllowedPath:
    """One allow-list entry: the glob's path segments and whether it grants write access."""

    pattern: str
    segments: tuple[str, ...]
    writable: bool

    def matches(self, real_path: str) -> bool:
        """True when the (already resolved, absolute) path falls under this entry."""
        return _match(self.segments, tuple(_split(real_path)))


def parse_entry(entry: str) -> list[AllowedPath]:
    """Parse `path[:ro|:rw]` into one AllowedPath per brace alternative; ValueError if unusable."""
    text = entry.strip()
    writable = False
    head, sep, mode = text.rpartition(":")
    if sep and mode.lower() in ("ro", "rw"):
        text, writable = head, mode.lower() == "rw"
    if not text.startswith(("/", "~")):
        raise ValueError(f"allow-listed path {entry!r} must be absolute")
    out = []
    for pattern in _expand_braces(os.path.expanduser(text)):
        segments = _split(pattern)
        literal = _literal_prefix(segments)
        rest = segments[len(literal) :]
        # Resolve the literal prefix the same way as requested paths (e.g. /tmp -> /private/tmp on macOS).
        resolved = _split(os.path.realpath("/" + "/".join(literal)))
        if not rest:
            rest = ["**"]  # a plain folder allows itself and everything below it
        out.append(AllowedPath(pattern=pattern, segments=tuple(resolved + rest), writable=writable))
    return out


class AllowList:
    """The parsed `Compute.AllowListedLocalPaths`; entries that do not parse are ignored (and listed)."""

    def __init__(self, entries: list[str]) -> None:
        self.entries: list[AllowedPath] = []
        self.invalid: list[str] = []
        for entry in entries:
            try:
                self.entries.extend(parse_entry(entry))
            except ValueError:
                self.invalid.append(entry)

    def roots(self) -> list[str]:
        """The folders the entries allow, up to their first glob (`/data/*/raw` -> `/data`), each once."""
        found: dict[str, None] = {}
        for entry in self.entries:
            literal = _literal_prefix([s for s in entry.segments if s != "**"])
            found.setdefault("/" + "/".join(literal), None)
        return list(found)

    def lookup(self, path: str) -> tuple[bool, bool]:
        """Return (allowed, writable) for a path, resolving symlinks and `..` first."""
        real = os.path.realpath(path)
        matching = [e for e in self.entries if e.matches(real)]
        return bool(matching), any(e.writable for e in matching)


def _split(path: str) -> list[str]:
    return [s for s in path.split("/") if s and s != "."]


def _literal_prefix(segments: list[str]) -> list[str]:
    prefix = []
    for seg in segments:
        if _GLOB_CHARS & set(seg):
            break
        prefix.append(seg)
    return prefix


def _expand_braces(pattern: str) -> list[str]:
    """`/a/{b,c}/d` -> [`/a/b/d`, `/a/c/d`]; nested braces expand recursively."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    options: list[str] = []
    current_start = start + 1
    for i in range(start, len(pattern)):
        ch = pattern[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                options.append(pattern[current_start:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                return [x for opt in options for x in _expand_braces(head + opt + tail)]
        elif ch == "," and depth == 1:
            options.append(pattern[current_start:i])
            current_start = i + 1
    return [pattern]  # unbalanced: treat the brace literally


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        # `**` consumes zero or more whole segments.
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _match(rest, path[1:])
