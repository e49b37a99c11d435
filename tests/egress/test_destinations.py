"""Where the egress proxy never connects: `kind_refusal`, `DestinationPolicy` and `local_addresses`.

Covered: loopback (IPv4, IPv6 and IPv4-mapped), unspecified, link-local (the cloud metadata address
included), multicast and reserved addresses are refused by kind; the node's own addresses are refused
both through an injected `own_addresses` and through the real `local_addresses()` of this machine
(compared with `ip -4 -o addr`); denied container networks come from an injected callable; ordinary
public and private addresses not on this host pass; the own-address cache is re-read after 5 s of an
injected clock; `local_addresses()` parses fib_trie / if_inet6 text in the kernel's formats.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from bacalhau.egress.destinations import DestinationPolicy, IPAddress, IPNetwork, kind_refusal, local_addresses
from serve_node import missing_prerequisite


def ip(text: str) -> IPAddress:
    """The address `text` names."""
    return ipaddress.ip_address(text)


def no_own() -> frozenset[IPAddress]:
    """A host with no addresses, so only kinds and denied networks decide."""
    return frozenset()


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_kind_refusal_names_the_kind(address: str, reason: str) -> None:
    assert kind_refusal(ip(address)) == reason
    # The policy refuses them too, whatever the host's addresses and networks.
    assert DestinationPolicy(own_addresses=no_own).refusal(ip(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "10.99.88.77", "192.168.77.5", "2606:4700::1111", "::ffff:93.184.216.34"]
)
def test_ordinary_addresses_are_not_refused_by_kind(address: str) -> None:
    assert kind_refusal(ip(address)) is None
    assert DestinationPolicy(own_addresses=no_own).refusal(ip(address)) is None


def test_injected_own_addresses_are_refused() -> None:
    own = frozenset({ip("10.1.2.3"), ip("2001:db8::42")})
    policy = DestinationPolicy(own_addresses=lambda: own)
    assert policy.refusal(ip("10.1.2.3")) == "an address of this node"
    assert policy.refusal(ip("::ffff:10.1.2.3")) == "an address of this node"
    assert policy.refusal(ip("2001:db8::42")) == "an address of this node"
    assert policy.refusal(ip("10.1.2.4")) is None
    assert policy.refusal(ip("2001:db8::43")) is None


def test_denied_networks_are_refused_naming_the_network() -> None:
    networks: list[IPNetwork] = [ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("fd00:dead::/64")]
    policy = DestinationPolicy(own_addresses=no_own, denied_networks=lambda: networks)
    assert policy.refusal(ip("172.17.0.5")) == "a container network on this node (172.17.0.0/16)"
    assert policy.refusal(ip("::ffff:172.17.3.4")) == "a container network on this node (172.17.0.0/16)"
    assert policy.refusal(ip("fd00:dead::7")) == "a container network on this node (fd00:dead::/64)"
    assert policy.refusal(ip("172.18.0.5")) is None
    assert policy.refusal(ip("fd00:beef::7")) is None


def test_denied_networks_are_asked_each_time() -> None:
    networks: list[IPNetwork] = []
    policy = DestinationPolicy(own_addresses=no_own, denied_networks=lambda: networks)
    assert policy.refusal(ip("172.30.0.9")) is None
    networks.append(ipaddress.ip_network("172.30.0.0/16"))
    assert policy.refusal(ip("172.30.0.9")) == "a container network on this node (172.30.0.0/16)"


def test_kind_wins_over_own_address() -> None:
    policy = DestinationPolicy(own_addresses=lambda: frozenset({ip("127.0.0.1")}))
    assert policy.refusal(ip("127.0.0.1")) == "loopback"


def test_own_addresses_are_cached_for_five_seconds_of_the_clock() -> None:
    now = [100.0]
    calls: list[float] = []
    current = [frozenset({ip("10.1.1.1")})]

    def own() -> frozenset[IPAddress]:
        calls.append(now[0])
        return current[0]

    policy = DestinationPolicy(own_addresses=own, clock=lambda: now[0])
    assert policy.refusal(ip("10.1.1.1")) == "an address of this node"
    # The node takes a new address and drops the old one: unseen until the cache expires.
    current[0] = frozenset({ip("10.2.2.2")})
    now[0] = 104.9
    assert policy.refusal(ip("10.2.2.2")) is None
    assert policy.refusal(ip("10.1.1.1")) == "an address of this node"
    assert calls == [100.0]
    now[0] = 105.0
    assert policy.refusal(ip("10.2.2.2")) == "an address of this node"
    assert policy.refusal(ip("10.1.1.1")) is None
    assert calls == [100.0, 105.0]
    now[0] = 109.9
    policy.refusal(ip("10.9.9.9"))
    assert calls == [100.0, 105.0]


def test_kind_refusals_do_not_read_own_addresses() -> None:
    calls: list[int] = []

    def own() -> frozenset[IPAddress]:
        calls.append(1)
        return frozenset()

    policy = DestinationPolicy(own_addresses=own)
    assert policy.refusal(ip("127.0.0.1")) == "loopback"
    assert calls == []


def interface_addresses(family: str = "-4") -> set[IPAddress]:
    """The addresses `ip -4 -o addr` (or -6) shows on this machine, loopback excluded."""
    path = shutil.which("ip")
    if path is None:
        missing_prerequisite("no `ip` command (iproute2) to compare with")
    out = subprocess.run([path, family, "-o", "addr"], capture_output=True, text=True, timeout=10, check=True).stdout
    found: set[IPAddress] = set()
    for line in out.splitlines():
        words = line.split()
        kind = "inet" if family == "-4" else "inet6"
        if kind in words:
            address = ip(words[words.index(kind) + 1].split("/")[0].split("%")[0])
            if not address.is_loopback:
                found.add(address)
    return found


def test_real_local_addresses_include_loopback_and_every_interface() -> None:
    found = local_addresses()
    assert ip("127.0.0.1") in found
    interfaces = interface_addresses()
    assert interfaces, "this machine should have at least one non-loopback interface"
    assert interfaces <= found
    # IPv6 too, when this machine has any (link-local ones included).
    assert interface_addresses("-6") <= found


def test_real_policy_refuses_this_hosts_interface_address() -> None:
    policy = DestinationPolicy()
    address = sorted(interface_addresses(), key=str)[0]
    assert policy.refusal(address) == "an address of this node"
    stranger = ip("10.99.88.77")
    assert stranger not in local_addresses()
    assert policy.refusal(stranger) is None
    assert policy.refusal(ip("93.184.216.34")) is None


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.200.250.0/30 2 0 1
        |-- 10.200.250.0
           /30 link UNICAST
        |-- 10.200.250.1
           /32 host LOCAL
        |-- 10.200.250.3
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /32 link BROADCAST
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 192.0.2.0/24 2 0 2
        |-- 192.0.2.0
           /24 link UNICAST
        |-- 192.0.2.2
           /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
"""

IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
"""


def test_local_addresses_parse_the_kernel_formats(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "if_inet6").write_text(IF_INET6)
    assert local_addresses(tmp_path) == {
        ip("10.200.250.1"),
        ip("127.0.0.0"),
        ip("127.0.0.1"),
        ip("192.0.2.2"),
        ip("::1"),
        ip("fe80::fc:ff:fe00:1"),
        ip("fd00::2"),
    }


def test_local_addresses_without_proc_files_is_empty(tmp_path: Path) -> None:
    assert local_addresses(tmp_path) == frozenset()


def test_local_addresses_reads_each_file_on_its_own(tmp_path: Path) -> None:
    (tmp_path / "if_inet6").write_text(IF_INET6 + "\n")
    assert local_addresses(tmp_path) == {ip("::1"), ip("fe80::fc:ff:fe00:1"), ip("fd00::2")}
    (tmp_path / "if_inet6").unlink()
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    assert ip("192.0.2.2") in local_addresses(tmp_path)
    assert ip("192.0.2.255") not in local_addresses(tmp_path)
    assert ip("10.200.250.0") not in local_addresses(tmp_path)


def test_policy_over_a_fake_proc_refuses_its_addresses(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "if_inet6").write_text(IF_INET6)
    policy = DestinationPolicy(own_addresses=lambda: local_addresses(tmp_path))
    assert policy.refusal(ip("192.0.2.2")) == "an address of this node"
    assert policy.refusal(ip("fd00::2")) == "an address of this node"
    assert policy.refusal(ip("192.0.2.3")) is None
