"""What a networked docker job is attached to, and the guards around it: one object per compute node.

    Default, None  -> "none"            nothing to do
    Host           -> "host"            the job shares the node's network, its API included: the
                                        operator's explicit choice (AcceptNetworkedJobs), as in Bacalhau
    Bridge, Full   -> bacalhau-bridge-* the node's bridge network; host INPUT from it refused
    HTTP           -> bacalhau-http-*   the node's internal network; host INPUT from it refused except
                                        the egress proxy on its gateway address, which lets the job
                                        reach its Domains and nothing else; http_proxy/https_proxy
                                        (and the upper-case pair) point the job's tools at it

    attach(client, execution) ── networks + firewall + proxy made on first need (one lock) ── any fails
       │                          -> ExecutionError naming what failed, the job never runs unguarded
       v
    Attachment(network_mode, env)  -> the container is created with them
    release(execution)             -> before the container is removed: the proxy forgets the
                                      execution and closes its connections
    close(client)                  -> node stops: proxy stopped; networks (and their guards) removed
                                      when no container is left on them

`refusal(network)` is what the bidder hears: a node that cannot install the firewall (no iptables,
not root) declines Bridge/Full/HTTP jobs with the reason rather than run them unguarded.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import docker
import docker.errors

from bacalhau.egress.destinations import DestinationPolicy, IPAddress, IPNetwork
from bacalhau.egress.domains import MISSING_DOMAINS, DomainAllowList
from bacalhau.egress.firewall import FirewallError, Guard, HostFirewall
from bacalhau.egress.networks import (
    JobNetwork,
    NetworkSetupError,
    engine_subnets,
    ensure_network,
    execution_at,
    remove_if_unused,
)
from bacalhau.egress.proxy import EgressProxy

logger = logging.getLogger(__name__)

# Squid's port. Fixed rather than any free one: a container taken back after a node restart still has
# the address in its environment, so the new proxy must listen where the old one did.
PROXY_PORT = 3128
_SUBNETS_TTL_S = 30.0
_KINDS = {"bridge": "bridge", "full": "bridge", "http": "http"}


class NetworkingUnavailable(Exception):
    """The job's network cannot be set up safely here; the message says why."""


@dataclass(frozen=True)
class Attachment:
    """How a container joins its network."""

    network_mode: str
    env: dict[str, str] = field(default_factory=dict)


class JobNetworking:
    """The compute node's job networks, host firewall guards and egress proxy (thread-safe)."""

    def __init__(
        self,
        *,
        node_id: str,
        firewall: HostFirewall | None = None,
        proxy_port: int = PROXY_PORT,
    ) -> None:
        self._node_id = node_id
        self._firewall = firewall or HostFirewall()
        self._proxy_port = proxy_port
        self._lock = threading.Lock()
        self._unavailable: str | None = None
        self._checked = False
        self._networks: dict[str, JobNetwork] = {}
        self._client: docker.DockerClient | None = None
        self._subnets: tuple[float, list[IPNetwork]] = (float("-inf"), [])
        self._proxy = EgressProxy(
            identify=self._identify,
            destinations=DestinationPolicy(denied_networks=self._engine_subnets),
        )

    # -- admission -----------------------------------------------------------------------------------
    def check(self) -> str | None:
        """Find out (once) whether host firewall rules can be made here; the reason if not."""
        with self._lock:
            if not self._checked:
                self._unavailable = self._firewall.unavailable()
                self._checked = True
                if self._unavailable is not None:
                    logger.warning(
                        "Bridge, Full and HTTP docker jobs are declined: this node cannot keep them off its own "
                        "services (%s)", self._unavailable,
                    )
            return self._unavailable

    def refusal(self, network_type: str, domains: list[str]) -> str | None:
        """Why a job with this network cannot be run safely here, or None."""
        kind = _KINDS.get(network_type.strip().lower())
        if kind is None:
            return None
        if kind == "http" and not DomainAllowList.of(domains):
            return MISSING_DOMAINS
        reason = self.check()
        if reason is not None:
            return (
                f"this node cannot keep {network_type} jobs off its own services ({reason}); "
                "run it with network None, or on a node whose compute process may manage iptables (root)"
            )
        return None

    # -- per execution (worker threads) --------------------------------------------------------------
    def attach(
        self,
        client: docker.DockerClient,
        *,
        network_type: str,
        domains: list[str],
        execution_id: str,
        job_id: str,
        docker_mode: str,
    ) -> Attachment:
        """Set up what the execution's network needs; raise NetworkingUnavailable if any part fails."""
        kind = _KINDS.get(network_type.strip().lower())
        if kind is None:
            return Attachment(docker_mode)
        refused = self.refusal(network_type, domains)
        if refused is not None:
            raise NetworkingUnavailable(refused)
        network = self._ensure(client, kind)
        if kind == "bridge":
            return Attachment(network.name)
        self._proxy.allow(execution_id, job_id, DomainAllowList.of(domains))
        address, port = self._proxy.address or (network.gateway, self._proxy_port)
        url = f"http://{address}:{port}"
        return Attachment(
            network.name, {"http_proxy": url, "https_proxy": url, "HTTP_PROXY": url, "HTTPS_PROXY": url}
        )

    def release(self, execution_id: str) -> None:
        """The execution's container exited: its proxy grant and connections go. Idempotent."""
        self._proxy.forget(execution_id)

    def close(self, client: docker.DockerClient | None) -> None:
        """Stop the proxy; remove each network no container is on, with its firewall guard."""
        self._proxy.stop()
        with self._lock:
            networks, self._networks = list(self._networks.values()), {}
            self._client = None
        if client is None:
            return
        for network in networks:
            if remove_if_unused(client, network):
                self._firewall.remove(self._guard(network))
            else:
                logger.info("network %s kept: containers are still on it (taken back at the next start)", network.name)

    # -- internals -----------------------------------------------------------------------------------
    def _ensure(self, client: docker.DockerClient, kind: str) -> JobNetwork:
        with self._lock:
            self._client = client
            network = self._networks.get(kind)
            if network is not None:
                return network
            try:
                network = ensure_network(client, node_id=self._node_id, kind=kind)
                if kind == "http":
                    self._start_proxy(network)  # first: the guard opens the port it actually got
                # Before any container of this node joins the network (none has yet: it is made here).
                self._firewall.guard(self._guard(network))
            except (NetworkSetupError, FirewallError) as exc:
                raise NetworkingUnavailable(str(exc)) from exc
            self._networks[kind] = network
            return network

    def _start_proxy(self, network: JobNetwork) -> None:
        try:
            self._proxy.start(network.gateway, self._proxy_port)
        except OSError as exc:
            # Port taken on that address: any free one (only a container taken back after a restart,
            # whose environment names the old port, loses its way out).
            logger.warning("egress proxy cannot listen on %s:%s (%s); using a free port", network.gateway,
                           self._proxy_port, exc)
            try:
                self._proxy.start(network.gateway, 0)
            except OSError as again:
                raise NetworkingUnavailable(f"the egress proxy cannot listen on {network.gateway}: {again}") from again

    def _guard(self, network: JobNetwork) -> Guard:
        allow = None
        if network.kind == "http":
            allow = (network.gateway, self._proxy.address[1] if self._proxy.address else self._proxy_port)
        return Guard(network.chain, network.interface, allow)

    def _identify(self, address: IPAddress) -> str | None:
        with self._lock:
            client, network = self._client, self._networks.get("http")
        if client is None or network is None:
            return None
        return execution_at(client, network, address)

    def _engine_subnets(self) -> list[IPNetwork]:
        now = time.monotonic()
        checked_at, subnets = self._subnets
        if now - checked_at < _SUBNETS_TTL_S:
            return subnets
        client = self._client
        if client is not None:
            try:
                subnets = engine_subnets(client)
            except (docker.errors.DockerException, OSError) as exc:
                logger.debug("cannot list the engine's networks (keeping the last list): %s", exc)
        self._subnets = (now, subnets)
        return subnets

