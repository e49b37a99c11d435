"""Parsed resources (CPU cores, bytes) and the parsing of Bacalhau's resource strings.

CPU uses Kubernetes quantities (`500m`, `1`, `0.5`); memory and disk use go-humanize's ParseBytes,
so `mb` is 10^6 and `mib` is 2^20, exactly as Bacalhau reads them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, field_validator

from bacalhau.models.wire import WireModel


class GPU(WireModel):
    index: int = Field(0, alias="Index")
    name: str = Field("", alias="Name")
    vendor: str = Field("", alias="Vendor")
    memory: int = Field(0, alias="Memory")
    pci_address: str = Field("", alias="PCIAddress")


class Resources(WireModel):
    """Resources as numbers: CPU in cores, Memory and Disk in bytes, GPU as a count."""

    cpu: float = Field(0.0, alias="CPU")
    memory: int = Field(0, alias="Memory")
    disk: int = Field(0, alias="Disk")
    gpu: int = Field(0, alias="GPU")
    gpus: list[GPU] = Field(default_factory=list, alias="GPUs")

    @field_validator("gpus", mode="before")
    @classmethod
    def _none_list(cls, value: Any) -> Any:
        return [] if value is None else value

    def fits_in(self, other: Resources) -> bool:
        """True when every dimension of self is at most the same dimension of other."""
        return (
            self.cpu <= other.cpu + 1e-9
            and self.memory <= other.memory
            and self.disk <= other.disk
            and self.gpu <= other.gpu
        )

    def add(self, other: Resources) -> Resources:
        return Resources(
            cpu=self.cpu + other.cpu,
            memory=self.memory + other.memory,
            disk=self.disk + other.disk,
            gpu=self.gpu + other.gpu,
        )

    def sub(self, other: Resources) -> Resources:
        return Resources(
            cpu=max(0.0, self.cpu - other.cpu),
            memory=max(0, self.memory - other.memory),
            disk=max(0, self.disk - other.disk),
            gpu=max(0, self.gpu - other.gpu),
        )

    def is_zero(self) -> bool:
        return self.cpu == 0 and self.memory == 0 and self.disk == 0 and self.gpu == 0

    def describe(self) -> str:
        """Human form used in messages: `cpu=0.5 memory=512.0MB disk=0B gpu=0`."""
        return f"cpu={self.cpu:g} memory={format_bytes(self.memory)} disk={format_bytes(self.disk)} gpu={self.gpu}"


_CPU_RE = re.compile(r"^([0-9]*\.?[0-9]+)(m|k|)$")
_BYTES_RE = re.compile(r"^([0-9]*\.?[0-9]+)\s*([a-z]*)$")
_BYTE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
    "p": 1000**5, "pb": 1000**5, "pi": 1024**5, "pib": 1024**5,
}


def normalize_resource_string(value: str) -> str:
    """Lower-case and strip white space, as Bacalhau's ResourcesConfig.Normalize does."""
    return re.sub(r"\s+", "", value).lower()


def parse_cpu(value: str) -> float:
    """Parse a Kubernetes CPU quantity into cores; raise ValueError with the offending text."""
    text = normalize_resource_string(value)
    if not text:
        return 0.0
    match = _CPU_RE.match(text)
    if match is None:
        raise ValueError(f"invalid CPU value {value!r}: expected cores like '1', '0.5' or millicores like '500m'")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise ValueError(f"invalid CPU value {value!r}: too large")
    suffix = match.group(2)
    if suffix == "m":
        return number / 1000
    if suffix == "k":
        return number * 1000
    return number


def parse_bytes(value: str) -> int:
    """Parse a humanized size (`512Mb`, `2GiB`) into bytes; raise ValueError with the offending text."""
    text = normalize_resource_string(value)
    if not text:
        return 0
    match = _BYTES_RE.match(text)
    if match is None or match.group(2) not in _BYTE_UNITS:
        raise ValueError(f"invalid size {value!r}: expected a number with an optional unit like 512Mb, 1GiB")
    amount = float(match.group(1)) * _BYTE_UNITS[match.group(2)]
    if not math.isfinite(amount):
        raise ValueError(f"invalid size {value!r}: too large")
    return int(amount)


def parse_gpu(value: str) -> int:
    text = normalize_resource_string(value)
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"invalid GPU value {value!r}: expected a whole number")
    return int(text)


def format_bytes(n: int) -> str:
    """Bytes in decimal units, like go-humanize's Bytes (`512 MB`)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
