"""Bidding: take the execution if the node supports it and it fits the node's maximum capacity."""

from __future__ import annotations

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
