"""How much a compute node may run at once, and how much of it is in use.

Machine totals (CPU count, MemTotal from /proc/meminfo, free disk under DataDir, no GPUs yet) are
scaled by `Compute.AllocatedCapacity`: each dimension is either a share of the host (`80%`) or an
absolute amount (`4` cores, `8Gb`). Running executions hold allocations against that total; the
queue starts an execution only when its allocation fits what is left.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from bacalhau.config.types import ResourceScaler
from bacalhau.models.execution import Execution
from bacalhau.models.job import ResourcesConfig
from bacalhau.models.resources import Resources, parse_bytes, parse_cpu, parse_gpu


def machine_resources(data_dir: Path) -> Resources:
    """What the host has: every CPU, all memory, the free disk space where results are written."""
    return Resources(
        cpu=float(os.cpu_count() or 1),
        memory=_total_memory(),
        disk=_free_disk(data_dir),
        gpu=0,
    )


def _total_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    # Not Linux: ask the C library (POSIX sysconf), which macOS and the BSDs also answer.
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError, AttributeError):
        return 0


def _free_disk(data_dir: Path) -> int:
    # The data dir may not exist yet on first start: measure its nearest existing ancestor.
    probe = Path(data_dir).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return 0


def scale(machine: Resources, scaler: ResourceScaler) -> Resources:
    """Apply `Compute.AllocatedCapacity` to the machine totals; raise ValueError on a bad value."""
    return Resources(
        cpu=_scale_value(scaler.cpu, machine.cpu, parse_cpu, "CPU"),
        memory=int(_scale_value(scaler.memory, machine.memory, parse_bytes, "Memory")),
        disk=int(_scale_value(scaler.disk, machine.disk, parse_bytes, "Disk")),
        gpu=int(_scale_value(scaler.gpu, machine.gpu, parse_gpu, "GPU")),
    )


def _scale_value(text: str, total: float, parse: Callable[[str], float], name: str) -> float:
    value = text.strip()
    if not value:
        return total
    if value.endswith("%"):
        try:
            share = float(value[:-1]) / 100
        except ValueError:
            raise ValueError(f"invalid Compute.AllocatedCapacity.{name} {text!r}: expected like 80%") from None
        if not 0 <= share <= 1:
            raise ValueError(f"invalid Compute.AllocatedCapacity.{name} {text!r}: must be between 0% and 100%")
        result = total * share
        # Whole units for counts and bytes, as Bacalhau's scaler rounds down.
        return result if name == "CPU" else float(int(result))
    try:
        return float(parse(value))
    except ValueError as exc:
        raise ValueError(f"invalid Compute.AllocatedCapacity.{name}: {exc}") from None


def task_resources(config: ResourcesConfig) -> Resources:
    """Parse a task's requested resources (`500m`, `512Mb`); raise ValueError naming the bad value."""
    return Resources(
        cpu=parse_cpu(config.cpu),
        memory=parse_bytes(config.memory),
        disk=parse_bytes(config.disk),
        gpu=parse_gpu(config.gpu),
    )


def execution_resources(execution: Execution) -> Resources:
    """What an execution needs: the orchestrator's allocation if it made one, else the task's request."""
    if execution.job is None or not execution.job.tasks:
        return Resources()
    task = execution.job.task
    allocated = execution.allocated_resources.tasks.get(task.name)
    if allocated is not None and not allocated.is_zero():
        return allocated
    return task_resources(task.resources)


class CapacityTracker:
    """Allocations held by running executions, against the node's total. Not thread-safe: one loop."""

    def __init__(self, *, total: Resources) -> None:
        self.total = total
        self._held: dict[str, Resources] = {}

    @property
    def used(self) -> Resources:
        """The sum of every held allocation."""
        used = Resources()
        for resources in self._held.values():
            used = used.add(resources)
        return used

    @property
    def available(self) -> Resources:
        """What is left for new executions."""
        return self.total.sub(self.used)

    def try_allocate(self, key: str, resources: Resources) -> bool:
        """Hold `resources` for `key` if they fit what is available; True on success. Idempotent per key."""
        if key in self._held:
            return True
        if not resources.fits_in(self.available):
            return False
        self._held[key] = resources
        return True

    def release(self, key: str) -> None:
        """Give back what `key` held. Idempotent."""
        self._held.pop(key, None)
