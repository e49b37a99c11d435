"""The node's own Docker networks for networked docker jobs, instead of the engine's default bridge.

    bacalhau-bridge-<node hash>   Bridge and Full jobs: a bridge with inter-container traffic off
                                  (jobs of other users do not see each other), host INPUT guarded
    bacalhau-http-<node hash>     HTTP jobs: an *internal* bridge (the engine gives it no route out),
                                  inter-container traffic off; the one way out is the egress proxy
                                  listening on its gateway address

Each names its Linux bridge (`bacb<hash>` / `bach<hash>`, within the 15-character limit) so that the
host firewall can guard it by interface. Both carry this node's labels, are made on first need and
reused across restarts, and are removed when the node stops with no container left on them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from bacalhau.egress.destinations import IPAddress, IPNetwork

_LABEL_MANAGED = "bacalhau.org/managed"
_LABEL_NODE_ID = "bacalhau.org/node-id"
_LABEL_PURPOSE = "bacalhau.org/network"
CONTAINER_PREFIX = "bacalhau-"  # container names are bacalhau-<execution id> (docker_container.py)


class NetworkSetupError(Exception):
    """The engine could not make or describe a job network; the message says why."""


@dataclass(frozen=True)
class JobNetwork:
    """One of the node's job networks, as the engine made it."""

    kind: str  # "bridge" | "http"
    name: str
    network_id: str
    interface: str
    subnet: str
    gateway: str

    @property
    def chain(self) -> str:
        """The host firewall chain guarding this network's bridge (iptables allows 28 characters)."""
        return f"BACALHAU-{self.interface}"


def _node_hash(node_id: str) -> str:
    return hashlib.sha256(node_id.encode()).hexdigest()[:10]


def network_name(node_id: str, kind: str) -> str:
    """The engine-side name of the node's network of `kind`."""
    return f"bacalhau-{kind}-{_node_hash(node_id)}"


def _interface(node_id: str, kind: str) -> str:
    return f"bac{kind[0]}{_node_hash(node_id)}"


def ensure_network(client: docker.DockerClient, *, node_id: str, kind: str) -> JobNetwork:
    """The node's network of `kind` ("bridge" or "http"), made if missing. Raises NetworkSetupError."""
    name = network_name(node_id, kind)
    try:
        found = client.api.networks(names=[name])
        existing = [n for n in found if n.get("Name") == name]
        if existing:
            return _describe(client.api.inspect_network(existing[0]["Id"]), kind)
        created = client.api.create_network(
            name,
            driver="bridge",
            internal=kind == "http",
            options={
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.name": _interface(node_id, kind),
            },
            labels={_LABEL_MANAGED: "true", _LABEL_NODE_ID: node_id, _LABEL_PURPOSE: kind},
            check_duplicate=True,
        )
        return _describe(client.api.inspect_network(created["Id"]), kind)
    except docker.errors.APIError as exc:
        raise NetworkSetupError(
            f"the Docker engine could not make network {name}: {exc.explanation or exc}"
        ) from exc
    except (docker.errors.DockerException, OSError) as exc:
        raise NetworkSetupError(f"the Docker engine could not make network {name}: {exc}") from exc


def _describe(inspected: dict[str, Any], kind: str) -> JobNetwork:
    name = str(inspected.get("Name", ""))
    options = inspected.get("Options") or {}
    configs = (inspected.get("IPAM") or {}).get("Config") or []
    v4 = [c for c in configs if c.get("Subnet") and ":" not in c["Subnet"]]
    interface = options.get("com.docker.network.bridge.name") or f"br-{str(inspected.get('Id', ''))[:12]}"
    if not v4:
        raise NetworkSetupError(f"network {name} has no IPv4 subnet")
    subnet = ipaddress.ip_network(v4[0]["Subnet"], strict=False)
    gateway = v4[0].get("Gateway") or str(next(subnet.hosts()))
    if bool(inspected.get("Internal")) != (kind == "http"):
        raise NetworkSetupError(
            f"network {name} exists but is {'not ' if kind == 'http' else ''}internal; remove it "
            f"(`docker network rm {name}`) and the node makes it anew"
        )
    return JobNetwork(kind, name, str(inspected["Id"]), interface, str(subnet), str(gateway))


def execution_at(client: docker.DockerClient, network: JobNetwork, address: IPAddress) -> str | None:
    """The execution whose container holds `address` on `network`, from the engine's own table."""
    try:
        attached = client.api.inspect_network(network.network_id).get("Containers") or {}
    except (docker.errors.DockerException, OSError):
        return None
    for endpoint in attached.values():
        held = str(endpoint.get("IPv4Address", "")).split("/")[0]
        name = str(endpoint.get("Name", ""))
        if held and held == str(address) and name.startswith(CONTAINER_PREFIX):
            return name[len(CONTAINER_PREFIX):]
    return None


def engine_subnets(client: docker.DockerClient) -> list[IPNetwork]:
    """The subnets of every network the engine has (where other containers of this host live)."""
    subnets: list[IPNetwork] = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnets.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
            except ValueError:
                continue
    return subnets


def remove_if_unused(client: docker.DockerClient, network: JobNetwork) -> bool:
    """Remove the network when no container is on it; True if it was removed (or was gone)."""
    try:
        attached = client.api.inspect_network(network.network_id).get("Containers") or {}
        if attached:
            return False
        client.api.remove_network(network.network_id)
    except docker.errors.NotFound:
        return True
    except (docker.errors.DockerException, OSError):
        return False
    return True
