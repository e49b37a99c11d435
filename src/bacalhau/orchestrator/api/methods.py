"""Which HTTP methods the API serves at a path: the `Allow` header of its 405 answers (RFC 9110).

Built once from the app's routers with public attributes only (`path`, `methods`), because Starlette's
own 405 names the methods of the first route matching the path, and one path is often several routes
(GET and DELETE /jobs/{id}; /jobs/diff is also a /jobs/{id}).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import compile_path


@dataclass(frozen=True)
class AllowedMethods:
    """(path pattern, methods) of every HTTP route; `at(path)` is the sorted union over the matching ones."""

    routes: tuple[tuple[re.Pattern[str], frozenset[str]], ...]

    @classmethod
    def of(cls, routes: Iterable[object]) -> AllowedMethods:
        """From route objects: those with a `path` and `methods` (HTTP routes; websocket routes have none)."""
        table = []
        for route in routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and methods:
                table.append((compile_path(path)[0], frozenset(methods)))
        return cls(tuple(table))

    def at(self, path: str) -> list[str]:
        """The methods some route serves at `path`, sorted (empty if none)."""
        return sorted(set().union(*(methods for pattern, methods in self.routes if pattern.match(path))))
