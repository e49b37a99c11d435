"""Node capacity: machine totals scaled by Compute.AllocatedCapacity, and running allocations."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.compute.capacity import CapacityTracker, machine_resources, scale, task_resources
from bacalhau.config.types import ResourceScaler
from bacalhau.models.job import ResourcesConfig
from bacalhau.models.resources import Resources

MACHINE = Resources(CPU=10, Memory=10_000_000_000, Disk=100_000_000_000, GPU=2)


def test_percentages_scale_the_machine() -> None:
    assert scale(MACHINE, ResourceScaler()) == Resources(CPU=8, Memory=8_000_000_000, Disk=80_000_000_000, GPU=2)


def test_absolute_values_replace_the_machine_totals() -> None:
    scaler = ResourceScaler(CPU="4", Memory="8Gb", Disk="1GiB", GPU="1")

    assert scale(MACHINE, scaler) == Resources(CPU=4, Memory=8_000_000_000, Disk=1024**3, GPU=1)


def test_millicores_and_fractions_are_cpu_quantities() -> None:
    assert scale(MACHINE, ResourceScaler(CPU="1500m")).cpu == 1.5
    assert scale(MACHINE, ResourceScaler(CPU="12.5%")).cpu == 1.25


@pytest.mark.parametrize("cpu", ["eighty", "150%", "-5%", "x%"])
def test_invalid_allocated_capacity_is_refused_with_the_key(cpu: str) -> None:
    with pytest.raises(ValueError, match=r"Compute.AllocatedCapacity.CPU"):
        scale(MACHINE, ResourceScaler(CPU=cpu))


def test_machine_resources_reads_this_host(tmp_path: Path) -> None:
    machine = machine_resources(tmp_path / "not" / "yet" / "created")

    assert machine.cpu >= 1
    assert machine.memory > 0
    assert machine.disk > 0


def test_task_resources_parse_bacalhaus_strings() -> None:
    parsed = task_resources(ResourcesConfig(CPU="500m", Memory="512Mb", Disk="1gib", GPU="1"))

    assert parsed == Resources(CPU=0.5, Memory=512_000_000, Disk=1024**3, GPU=1)
    assert task_resources(ResourcesConfig()) == Resources()
    with pytest.raises(ValueError, match="invalid CPU"):
        task_resources(ResourcesConfig(CPU="lots"))


def test_tracker_holds_allocations_until_released() -> None:
    tracker = CapacityTracker(total=Resources(CPU=4, Memory=8))

    assert tracker.try_allocate("a", Resources(CPU=3, Memory=2))
    assert tracker.try_allocate("a", Resources(CPU=3, Memory=2)), "idempotent per key"
    assert not tracker.try_allocate("b", Resources(CPU=2, Memory=1))
    assert tracker.available == Resources(CPU=1, Memory=6)
    tracker.release("a")
    tracker.release("a")
    assert tracker.try_allocate("b", Resources(CPU=2, Memory=1))
    assert tracker.used == Resources(CPU=2, Memory=1)
