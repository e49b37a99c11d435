"""The Go text/template subset: placeholders, trim markers, comments, refusals."""

from __future__ import annotations

import pytest

from bacalhau.cli.template import env_values, render
from bacalhau.models.errors import BadRequestError


def test_placeholders_are_replaced() -> None:
    assert render("a={{.A}} b={{ .B }}", {"A": "1", "B": "2"}) == "a=1 b=2"


def test_trim_markers_remove_surrounding_whitespace() -> None:
    assert render("x  {{- .A -}}  y", {"A": "1"}) == "x1y"


def test_comments_render_nothing() -> None:
    assert render("a{{/* note */}}b", {}) == "ab"


def test_other_actions_are_refused_with_their_position() -> None:
    with pytest.raises(BadRequestError, match=r"job:1:3: unsupported action"):
        render("x {{range .A}}", {"A": "1"})


def test_unclosed_actions_are_refused() -> None:
    with pytest.raises(BadRequestError, match="unclosed action"):
        render("a\n{{.A", {"A": "1"})


def test_env_values_match_names_by_regex() -> None:
    env = {"MY_A": "1", "MY_B": "2", "OTHER": "3"}
    assert env_values("^MY_", env) == {"MY_A": "1", "MY_B": "2"}
    assert env_values("*", env) == env
    assert env_values("", env) == {}
