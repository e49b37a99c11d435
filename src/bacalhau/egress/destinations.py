"""Where the egress proxy never connects, whatever a job's `Network.Domains` say.

The proxy connects from the node's own network namespace, so a name that resolves to 127.0.0.1 (or a
domain list naming `localhost`, or an address of the node) would hand a job the node's API, its NATS
server and every service listening on the host's loopback. The submitter writes the domain list and
may own the DNS of a domain on it, so the check is made on the address actually connected to, after
resolution (no second lookup an attacker could answer differently):

    loopback, unspecified      127.0.0.0/8, ::1, 0.0.0.0, ::            "loopback" / "unspecified"
    link-local                 169.254.0.0/16 (cloud metadata), fe80::/10
    multicast, reserved        224.0.0.0/4, 240.0.0.0/4, ff00::/8
    this host's own addresses  every address on any interface (read from /proc, re-read every 5 s)
    local container networks   the subnets of the Docker engine's networks: other jobs' containers
                               and services on this host's bridges

IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are judged as the IPv4 address they carry.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOCAL_TTL_S = 5.0


def local_addresses(proc: Path = Path("/proc/net")) -> frozenset[IPAddress]:
    """Every address assigned to an interface of this network namespace (IPv4 and IPv6)."""
    found: set[IPAddress] = set()
    try:
        # fib_trie lists each local IPv4 address as "|-- ADDR" followed by "/32 host LOCAL".
        last: str | None = None
        for line in (proc / "fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif last is not None and text.endswith("host LOCAL"):
                found.add(ipaddress.ip_address(last))
    except (OSError, ValueError):
        pass
    try:
        for line in (proc / "if_inet6").read_text().splitlines():
            digits = line.split()[0] if line.strip() else ""
            if len(digits) == 32:
                found.add(ipaddress.IPv6Address(int(digits, 16)))
    except (OSError, ValueError):
        pass
    return frozenset(found)


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def kind_refusal(address: IPAddress) -> str | None:
    """Why any address of this kind is refused (loopback, link-local, ...), or None."""
    address = _plain(address)
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    return None


class DestinationPolicy:
    """Judges each address the proxy is about to connect to. Thread-safe."""

    def __init__(
        self,
        *,
        denied_networks: Callable[[], Iterable[IPNetwork]] = tuple,
        own_addresses: Callable[[], frozenset[IPAddress]] = local_addresses,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._denied_networks = denied_networks
        self._own_addresses = own_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._own: tuple[float, frozenset[IPAddress]] | None = None

    def refusal(self, address: IPAddress) -> str | None:
        """Why a job may not reach `address` (a short phrase for messages), or None when it may."""
        address = _plain(address)
        kind = kind_refusal(address)
        if kind is not None:
            return kind
        if address in self._own_set():
            return "an address of this node"
        for network in self._denied_networks():
            if address.version == network.version and address in network:
                return f"a container network on this node ({network})"
        return None

    def _own_set(self) -> frozenset[IPAddress]:
        now = self._clock()
        with self._lock:
            if self._own is None or now - self._own[0] >= _LOCAL_TTL_S:
                self._own = (now, self._own_addresses())
            return self._own[1]
