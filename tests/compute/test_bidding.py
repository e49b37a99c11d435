"""Bidding: take the execution if the node supports it and it fits the node's maximum capacity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from compute_factories import SCRIPTED, make_registry, scripted_execution

from bacalhau.compute.bidding import decide_bid
from bacalhau.compute.registry import PluginRegistry
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.execution import AllocatedResources
from bacalhau.models.job import InputSource, SpecConfig
from bacalhau.models.resources import Resources
from factories import make_execution, make_job

if TYPE_CHECKING:
    from compute_executors import ScriptedExecutor

CAPACITY = Resources(CPU=4, Memory=8_000_000_000, Disk=10_000_000_000)


@pytest.fixture
def registry(config: BacalhauConfig, executor: ScriptedExecutor) -> PluginRegistry:
    return make_registry(config, executor)


def test_supported_execution_that_fits_is_accepted_with_its_resources(registry: PluginRegistry) -> None:
    decision = decide_bid(scripted_execution(cpu="2", memory="1Gb"), registry=registry, max_capacity=CAPACITY)

    assert decision.accepted
    assert decision.resources == Resources(CPU=2, Memory=1_000_000_000)


def test_the_orchestrators_allocation_is_used_when_present(registry: PluginRegistry) -> None:
    execution = scripted_execution(cpu="100").model_copy(
        update={"allocated_resources": AllocatedResources(Tasks={"main": Resources(CPU=1, Memory=5)})}
    )

    decision = decide_bid(execution, registry=registry, max_capacity=CAPACITY)

    assert decision.resources == Resources(CPU=1, Memory=5)


def test_unsupported_engine_is_rejected_listing_the_supported_ones(registry: PluginRegistry) -> None:
    decision = decide_bid(scripted_execution(engine_type="docker"), registry=registry, max_capacity=CAPACITY)

    assert not decision.accepted
    assert decision.reason == f"unknown engine type 'docker'; supported: noop, {SCRIPTED}"


def test_unsupported_publisher_and_storage_are_rejected(registry: PluginRegistry) -> None:
    s3 = decide_bid(scripted_execution(publisher="s3"), registry=registry, max_capacity=CAPACITY)
    ipfs_input = InputSource(Source=SpecConfig(Type="ipfs", Params={"CID": "Qm"}), Target="/in")
    ipfs = decide_bid(scripted_execution(inputs=[ipfs_input]), registry=registry, max_capacity=CAPACITY)

    assert s3.reason == "unknown publisher type 's3'; supported: local, noop"
    assert ipfs.reason == "unknown storage type 'ipfs'; supported: inline, local, localDirectory"


def test_engine_params_rejected_by_the_executor_are_a_reason(registry: PluginRegistry) -> None:
    decision = decide_bid(scripted_execution(Invalid=True), registry=registry, max_capacity=CAPACITY)

    assert not decision.accepted
    assert "Engine.Params.Invalid" in decision.reason


def test_input_not_allow_listed_is_a_reason(registry: PluginRegistry) -> None:
    source = InputSource(Source=SpecConfig(Type="local", Params={"SourcePath": "/etc"}), Target="/etc")

    decision = decide_bid(scripted_execution(inputs=[source]), registry=registry, max_capacity=CAPACITY)

    assert decision.reason == "volume /etc is not allowlisted"


def test_job_bigger_than_the_node_is_rejected_with_both_sizes(registry: PluginRegistry) -> None:
    decision = decide_bid(scripted_execution(cpu="8", memory="1Gb"), registry=registry, max_capacity=CAPACITY)

    assert not decision.accepted
    assert decision.reason == (
        "job requires cpu=8 memory=1.0 GB disk=0 B gpu=0 "
        "but this node's capacity is cpu=4 memory=8.0 GB disk=10.0 GB gpu=0"
    )


def test_unparseable_resources_are_a_reason(registry: PluginRegistry) -> None:
    decision = decide_bid(scripted_execution(cpu="lots"), registry=registry, max_capacity=CAPACITY)

    assert not decision.accepted
    assert decision.reason.startswith("invalid resources: invalid CPU value 'lots'")


def test_execution_without_a_task_is_rejected(registry: PluginRegistry) -> None:
    execution = make_execution(make_job(tasks=[]))

    assert not decide_bid(execution, registry=registry, max_capacity=CAPACITY).accepted


# -- JobAdmissionControl.Locality ---------------------------------------------------------------------------
def _locality_registry(executor: ScriptedExecutor, allowed: Path) -> PluginRegistry:
    """The scripted engine with inline, an allow-listed local folder and URL inputs."""
    from bacalhau.compute.publishers.noop import NoopPublisher
    from bacalhau.compute.storage.inline import InlineStorage
    from bacalhau.compute.storage.local import LocalStorage
    from bacalhau.compute.storage.url import UrlStorage

    noop = NoopPublisher()
    return PluginRegistry(
        executors={SCRIPTED: executor},
        storages={
            "inline": InlineStorage(),
            "localDirectory": LocalStorage(allow_listed_paths=[f"{allowed}:rw"]),
            "urlDownload": UrlStorage(read_timeout_s=1, max_retries=0, max_bytes=1 << 20),
        },
        publishers={"noop": noop},
        empty_publisher=noop,
    )


def _local_input(path: Path, **params: object) -> InputSource:
    return InputSource(
        Source=SpecConfig(Type="localDirectory", Params={"SourcePath": str(path), **params}), Target="/data"
    )


async def test_a_local_locality_node_bids_only_when_every_input_is_here(executor: ScriptedExecutor, tmp_path: Path) -> None:
    """Bacalhau's InputLocalityStrategy: inline data and an existing allow-listed folder are here; a URL
    (fetched per execution) or a folder that does not exist here is not, and the reason says how many."""
    from bacalhau.compute.bidding import decide

    (tmp_path / "present").mkdir()
    registry = _locality_registry(executor, tmp_path)
    inline = InputSource(Source=SpecConfig(Type="inline", Params={"URL": "data:,x"}), Target="/x")
    here = scripted_execution(inputs=[inline, _local_input(tmp_path / "present")])
    decision = await decide(here, registry=registry, max_capacity=CAPACITY, locality="local")
    assert decision.accepted, decision.reason

    url = InputSource(Source=SpecConfig(Type="urlDownload", Params={"URL": "https://example.com/a.csv"}), Target="/u")
    # A folder the task may create (so the bid's checks pass) is not here yet: it is not local data.
    absent = _local_input(tmp_path / "absent", ReadWrite=True, CreateAs="dir")
    elsewhere = scripted_execution(inputs=[inline, url, absent])
    refused = await decide(elsewhere, registry=registry, max_capacity=CAPACITY, locality="local")
    assert not refused.accepted
    assert refused.reason.startswith("this node does not have all input data locally (2 of 3 inputs require downloading")
    assert "urlDownload https://example.com/a.csv" in refused.reason and str(tmp_path / "absent") in refused.reason
    # Anywhere (the default) takes the same job.
    anywhere = await decide(elsewhere, registry=registry, max_capacity=CAPACITY, locality="anywhere")
    assert anywhere.accepted
