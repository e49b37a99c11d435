"""The plugin registry: built-in plugins by Bacalhau's type names, case-insensitive, minus disabled ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.publishers.ipfs import IpfsPublisher
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.publishers.retrying import RetryingPublisher
from bacalhau.compute.registry import build_registry
from bacalhau.compute.storage.inline import InlineStorage
from bacalhau.compute.storage.ipfs import IpfsStorage
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.config.types import BacalhauConfig
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.ipfs.rpc import KuboRpcClient
from bacalhau.models.errors import UnsupportedTypeError
from ipfs_env import require_libkubo


def config_for(tmp_path: Path, **overrides: object) -> BacalhauConfig:
    # Docker is left out unless a test asks for it: whether it is listed depends on a running engine
    # (covered by test_docker_is_listed_when_the_engine_answers).
    return BacalhauConfig.model_validate({"DataDir": str(tmp_path), "Engines": {"Disabled": ["docker"]}, **overrides})


def test_built_in_plugins_are_registered_under_bacalhaus_names(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path))

    assert registry.executor_names() == ["noop", "wasm"]
    assert registry.storage_names() == ["inline", "ipfs", "local", "localDirectory", "s3", "urlDownload"]
    assert registry.publisher_names() == ["ipfs", "local", "noop", "s3"]
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
        ("storage", "storage", "inline, ipfs, local, localDirectory, s3, urlDownload"),
        ("publisher", "publisher", "ipfs, local, noop, s3"),
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
    assert registry.storage_names() == ["inline", "ipfs", "local", "s3", "urlDownload"]
    assert registry.publisher_names() == ["ipfs", "noop", "s3"]
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


def test_the_ipfs_storage_and_publisher_share_one_client_unless_their_endpoints_differ(tmp_path: Path) -> None:
    shared = build_registry(config=config_for(tmp_path))
    storage, publisher = shared.storage("ipfs"), shared.publisher("ipfs")
    assert isinstance(storage, IpfsStorage) and isinstance(publisher, RetryingPublisher)
    assert isinstance(publisher.inner, IpfsPublisher)
    assert storage._client is publisher.inner._client
    assert isinstance(storage._client, EmbeddedIpfsNode)

    split = build_registry(
        config=config_for(tmp_path, Publishers={"Types": {"IPFS": {"Endpoint": "/ip4/127.0.0.1/tcp/5001"}}})
    )
    storage, publisher = split.storage("ipfs"), split.publisher("ipfs")
    assert isinstance(storage, IpfsStorage) and isinstance(publisher, RetryingPublisher)
    assert isinstance(publisher.inner, IpfsPublisher)
    assert isinstance(publisher.inner._client, KuboRpcClient) and isinstance(storage._client, EmbeddedIpfsNode)


def test_retention_releases_pins_through_the_ipfs_publisher_unless_it_is_disabled(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path))
    wrapper = registry.publisher("ipfs")
    assert isinstance(wrapper, RetryingPublisher)
    assert registry.pinning_publishers() == [wrapper.inner]  # unwrapped from its retries

    disabled = build_registry(config=config_for(tmp_path, Publishers={"Disabled": ["ipfs"]}))
    assert disabled.pinning_publishers() == []


def test_ipfs_connect_is_the_fallback_endpoint(tmp_path: Path) -> None:
    registry = build_registry(config=config_for(tmp_path, IPFS={"Connect": "http://127.0.0.1:5001"}))
    storage = registry.storage("ipfs")
    assert isinstance(storage, IpfsStorage) and isinstance(storage._client, KuboRpcClient)


def test_disabled_storages_and_publishers_are_not_offered(tmp_path: Path) -> None:
    registry = build_registry(
        config=config_for(tmp_path, InputSources={"Disabled": ["S3", "ipfs"]}, Publishers={"Disabled": ["ipfs"]})
    )
    assert "s3" not in registry.storage_names() and "ipfs" not in registry.storage_names()
    assert registry.publisher_names() == ["local", "noop", "s3"]
    with pytest.raises(UnsupportedTypeError, match="unknown storage type 's3'"):
        registry.storage("s3")


async def test_the_embedded_ipfs_node_listens_where_ipfs_swarmhost_says(tmp_path: Path) -> None:
    require_libkubo()
    registry = build_registry(config=config_for(tmp_path, IPFS={"SwarmHost": "127.0.0.2"}))
    storage = registry.storage("ipfs")
    assert isinstance(storage, IpfsStorage)
    client = storage._client
    await client.start()
    try:
        addresses = await client.addresses()
    finally:
        await registry.stop()
    assert addresses and all(a.startswith("/ip4/127.0.0.2/tcp/") for a in addresses), addresses
