"""`Logging.Level` / `Logging.Mode`: the formats and levels `bacalhau serve` logs with."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bacalhau.cli.log_output import configure_logging, python_level
from bacalhau.config.loader import load_config
from bacalhau.models.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_mode_writes_one_zerolog_shaped_object_per_line() -> None:
    out = io.StringIO()
    configure_logging(level="debug", mode="json", stream=out)
    logging.getLogger("bacalhau.test").debug("placed %s on %s", "e-1", "n-2")
    logging.getLogger("bacalhau.test").warning("slow")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["debug", "warn"]
    assert lines[0]["message"] == "placed e-1 on n-2"
    assert lines[0]["time"].endswith("Z")
    assert lines[0]["logger"] == "bacalhau.test"


def test_level_filters_what_is_written() -> None:
    out = io.StringIO()
    configure_logging(level="warn", mode="default", stream=out)
    logging.getLogger("bacalhau.test").info("hidden")
    logging.getLogger("bacalhau.test").error("shown")
    assert "hidden" not in out.getvalue()
    assert "ERROR bacalhau.test: shown" in out.getvalue()


def test_cmd_mode_prints_the_message_alone() -> None:
    out = io.StringIO()
    configure_logging(level="info", mode="cmd", stream=out)
    logging.getLogger("x").info("just this")
    assert out.getvalue() == "just this\n"


def test_configuring_twice_does_not_duplicate_lines() -> None:
    out = io.StringIO()
    configure_logging(level="info", mode="default", stream=out)
    configure_logging(level="info", mode="default", stream=out)
    logging.getLogger("x").info("once")
    assert out.getvalue().count("once") == 1


@pytest.mark.parametrize(("name", "expected"), [("TRACE", logging.DEBUG), ("Warn", logging.WARNING), ("panic", logging.CRITICAL)])
def test_bacalhau_level_names_map_to_python_levels(name: str, expected: int) -> None:
    assert python_level(name) == expected


def test_config_keys_are_read_and_normalised() -> None:
    config = load_config(["Logging.Level=DEBUG", "Logging.Mode=JSON"], env={})
    assert (config.logging.level, config.logging.mode) == ("debug", "json")


@pytest.mark.parametrize(("arg", "word"), [("Logging.Mode=xml", "log-mode"), ("Logging.Level=loud", "log-level")])
def test_unknown_level_or_mode_is_refused_with_the_key(arg: str, word: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config([arg], env={})
    assert word in info.value.message
    assert "Logging" in info.value.message
