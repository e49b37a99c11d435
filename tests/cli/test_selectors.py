"""`--constraints` label selectors and `K=V` pairs."""

from __future__ import annotations

import click
import pytest

from bacalhau.cli.selectors import parse_pairs, parse_selector


def _ops(selector: str) -> list[tuple[str, str, list[str]]]:
    return [(r["Key"], r["Operator"], r["Values"]) for r in parse_selector(selector)]


def test_equality_inequality_and_sets() -> None:
    assert _ops("region=eu, tier==gold,zone!=a,env in (prod, staging),os notin (windows)") == [
        ("region", "=", ["eu"]),
        ("tier", "==", ["gold"]),
        ("zone", "!=", ["a"]),
        ("env", "in", ["prod", "staging"]),
        ("os", "notin", ["windows"]),
    ]


def test_existence_and_comparisons() -> None:
    assert _ops("gpu,!spot,cores>4,mem<10") == [
        ("gpu", "exists", []),
        ("spot", "!", []),
        ("cores", "gt", ["4"]),
        ("mem", "lt", ["10"]),
    ]


def test_empty_selector_has_no_requirements() -> None:
    assert parse_selector("") == []


@pytest.mark.parametrize("bad", ["a in ()", "cores>many", "=x", "a b c"])
def test_bad_selectors_are_usage_errors(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_selector(bad)


def test_env_pairs_keep_commas_in_values() -> None:
    assert parse_pairs(["A=1,2", "B=x=y"], flag="-e") == {"A": "1,2", "B": "x=y"}


def test_label_pairs_allow_bare_keys() -> None:
    assert parse_pairs(["a=b", "c", "d=e"], flag="-l", bare=True) == {"a": "b", "c": "", "d": "e"}


def test_pairs_without_equals_are_refused() -> None:
    with pytest.raises(click.BadParameter, match="KEY=VALUE"):
        parse_pairs(["novalue"], flag="-e")
