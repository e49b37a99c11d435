"""The plugin registry: built-in plugins by Bacalhau's type names, case-insensitive, minus disabled ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.retrying import RetryingPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.registry import build_registry
from bacalhau.compute.storage.inline import InlineStorage
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.errors import UnsupportedTypeError


def config_for(tmp_path: Path, **overrides: object) -> BacalhauConfig:
    # Docker is left out unless a test asks for it: whether it is listed depends on a running engine
    # (covered by test_docker_is_listed_when_the_engine_answers).
    return BacalhauConfig.model_validate({"DataDir": str(tmp_path), "Engines": {"Disabled": ["docker"]}, **overrides})


def test_built_in_plugins_are_registered_under_bacalhaus_names(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path))

    assert registry.executor_names() == ["noop", "wasm"]
    assert registry.storage_names() == ["inline", "local", "localDirectory", "urlDownload"]
    assert registry.publisher_names() == ["local", "noop"]
    assert isinstance(registry.executor("wasm"), WasmExecutor)
    assert isinstance(registry.executor("noop"), NoopExecutor)
    assert isinstance(registry.storage("inline"), InlineStorage)
    assert registry.storage("local") is registry.storage("localDirectory")
    assert isinstance(registry.storage("local"), LocalStorage)
    published = registry.publisher("local")
    assert isinstance(published, RetryingPublisher) and isinstance(published.inner, LocalPublisher)


def test_lookups_ignore_case_and_surrounding_space(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path))

    assert registry.executor("WASM") is registry.executor("wasm")
    assert registry.storage(" LocalDirectory ") is registry.storage("local")
    assert registry.publisher("Local") is registry.publisher("local")


def test_empty_publisher_type_means_noop(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path, Publishers={"Disabled": ["noop"]}))

    assert isinstance(registry.publisher(""), NoopPublisher)
    assert "noop" not in registry.publisher_names()


@pytest.mark.parametrize(
    ("kind", "lookup", "supported"),
    [
        ("engine", "executor", "noop, wasm"),
        ("storage", "storage", "inline, local, localDirectory, urlDownload"),
        ("publisher", "publisher", "local, noop"),
    ],
)
def test_unknown_type_lists_the_supported_ones(tmp_path: Path, kind: str, lookup: str, supported: str) -> None:
    registry = build_registry(config=config_for(tmp_path))

    with pytest.raises(UnsupportedTypeError) as caught:
        getattr(registry, lookup)("podman")

    assert caught.value.kind == kind
    assert caught.value.message == f"unknown {kind} type 'podman'; supported: {supported}"


def test_disabled_types_are_not_registered(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        Engines={"Disabled": ["WASM", "docker"]},
        InputSources={"Disabled": ["localDirectory"]},
        Publishers={"Disabled": ["local"]},
    )
    registry = build_registry(config=config)

    assert registry.executor_names() == ["noop"]
    assert registry.storage_names() == ["inline", "local", "urlDownload"]
    assert registry.publisher_names() == ["noop"]
    with pytest.raises(UnsupportedTypeError, match="supported: noop"):
        registry.executor("wasm")


async def test_start_and_stop_run_the_local_publishers_server(tmp_path: Path) -> None:
    config = config_for(tmp_path, Publishers={"Types": {"Local": {"Port": 0}}})
    registry = build_registry(config=config)
    wrapper = registry.publisher("local")
    assert isinstance(wrapper, RetryingPublisher)
    publisher = wrapper.inner
    assert isinstance(publisher, LocalPublisher)

    await registry.start()
    try:
        assert publisher.port is not None
    finally:
        await registry.stop()
    assert publisher.port is None


def test_docker_is_listed_when_the_engine_answers(tmp_path: Path, docker_engine: object) -> None:
    registry = build_registry(config=BacalhauConfig.model_validate({"DataDir": str(tmp_path)}), node_id="n-test")
    assert registry.executor_names() == ["docker", "noop", "wasm"]
