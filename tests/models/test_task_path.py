"""Where a Target or module name lands in the task: relative names start at `/`, `..` may not climb out."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bacalhau.models.task_path import PathEscapesTask, resolve_task_path


@pytest.mark.parametrize(
    ("path", "place"),
    [
        ("main.wasm", "/main.wasm"),  # Bacalhau's usual form
        ("/main.wasm", "/main.wasm"),
        ("  main.wasm ", "/main.wasm"),
        ("./data/in.csv", "/data/in.csv"),
        ("data//in.csv/", "/data/in.csv"),
        ("/inputs/../data", "/data"),
        ("a/b/../../c", "/c"),
        (".", "/"),
    ],
)
def test_relative_and_absolute_paths_land_in_one_place(path: str, place: str) -> None:
    assert resolve_task_path(path) == place


@pytest.mark.parametrize("path", ["../x", "..", "/..", "/inputs/../../etc/passwd", "a/../../b", "./../x"])
def test_dotdot_above_the_root_is_an_escape(path: str) -> None:
    with pytest.raises(PathEscapesTask, match=r"climbs out of the task's filesystem"):
        resolve_task_path(path)


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        resolve_task_path("main\x00.wasm")


segments = st.lists(st.sampled_from(["a", "b.wasm", ".", "..", ""]), max_size=8)


@given(segments, st.booleans())
def test_a_resolved_path_is_absolute_normal_and_stable(parts: list[str], leading_slash: bool) -> None:
    path = ("/" if leading_slash else "") + "/".join(parts)
    depth = 0
    for part in parts:
        depth += {"..": -1, ".": 0, "": 0}.get(part, 1)
        if depth < 0:
            with pytest.raises(PathEscapesTask):
                resolve_task_path(path)
            return
    place = resolve_task_path(path)
    assert place == posixpath.normpath("/" + path).replace("//", "/")
    assert place.startswith("/") and ".." not in place.split("/")
    assert resolve_task_path(place) == place
