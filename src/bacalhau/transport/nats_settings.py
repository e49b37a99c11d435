"""What the NATS server and clients of a node are built from: config keys -> settings -> nats-server config text.

Mirrors Bacalhau's `pkg/nats/transport/nats.go` (`NATSTransportConfig`, `Validate`, `NewNATSTransport`,
`CreateClient`) and `pkg/node/node.go` `createTransport`, with these deliberate differences:

* `max_payload` is set (Orchestrator.NATS.MaxPayload, 16 MiB) instead of NATS's 1 MB default, which is below
  the 10 MB a job spec may have.
* `Orchestrator.Cluster.Host` is used as the cluster listen host (Bacalhau models the key but never passes it).
* Cluster peers are passed to nats-server as they are: Bacalhau drops peers whose host is one of the machine's
  own addresses (`RoutesFromSlice(..., false)`), nats-server itself ignores a route to itself.
* The orchestrator's own client connects only to its own server; Bacalhau also keeps Compute.Orchestrators
  (default nats://127.0.0.1:4222) in that client's server list.
* TLS: Orchestrator.TLS.ServerCert/ServerKey make the server require TLS, as Bacalhau's; a node's link to
  the server it embeds skips the certificate check (loopback to its own child process), and a client set
  up for TLS never falls back to plain text (nats-py would; nats.go refuses too).

Nothing here does I/O; rendering the config file is a pure function of the settings.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.config.types import DEFAULT_NATS_MAX_PAYLOAD_BYTES, BacalhauConfig
from bacalhau.models.errors import ConfigurationError
from bacalhau.tls.pair import check_pair
from bacalhau.transport.ncl import subjects
from bacalhau.transport.ncl.errors import InvalidNodeID

# Bacalhau's `NATSServerDefaultTLSTimeout`: seconds a client has to finish the TLS handshake.
DEFAULT_TLS_TIMEOUT_S = 10

COMPONENT = "Transport"
# Bacalhau's `NetworkTransportDir()`: <DataDir>/orchestrator/nats-store; nats-server adds `jetstream/` below it.
STORE_DIR_PARTS = ("orchestrator", "nats-store")
# nats-server refuses anything above 64 MiB (its max_pending default); above 8 MB it only warns.
MAX_PAYLOAD_LIMIT_BYTES = 64 * 1024 * 1024
# Go's nats.go ReconnectBufSize; nats-py's default is 2 MiB.
DEFAULT_PENDING_BYTES = 8 * 1024 * 1024
# Node IDs become subject tokens: these would be wildcards or separators (`reservedChars` in nats.go).
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def validate_node_id(node_id: str) -> None:
    """Raise ConfigurationError unless `node_id` can be a NATS subject token and a server name.

    The rule is the protocol's (`ncl.subjects.validate_node_id`); here it is a configuration mistake,
    so the error says how to choose another name.
    """
    try:
        subjects.validate_node_id(node_id)
    except InvalidNodeID as exc:
        raise ConfigurationError(
            exc.message, component=COMPONENT, hint="choose another name with -c NameProvider=... or the node's --name"
        ) from exc


def conf_string(value: str) -> str:
    """`value` as a double-quoted nats-server config string.

    The config lexer accepts only the escapes \\xXX, \\t, \\n, \\r, \\" and \\\\ (no \\u), so JSON quoting
    does not do; `$` inside quotes is literal (no variable expansion) and UTF-8 passes through as is.
    """
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def route_url(peer: str) -> str:
    """A cluster peer as a route URL: `host:port` gets Bacalhau's default `nats://` scheme."""
    peer = peer.strip()
    return peer if _SCHEME.match(peer) else "nats://" + peer


@dataclass(frozen=True)
class ClusterSettings:
    """Routes to other orchestrators' servers (`Orchestrator.Cluster.*`); only used with peers."""

    port: int
    peers: tuple[str, ...]
    name: str = ""
    host: str = ""
    advertise: str = ""


@dataclass(frozen=True)
class NatsServerSettings:
    """Everything the embedded nats-server is started with. `port=0` lets the server pick a free port."""

    node_id: str
    store_dir: Path
    host: str = "0.0.0.0"
    port: int = 4222
    advertise: str = ""
    token: str = field(default="", repr=False)
    # Orchestrator.TLS.ServerCert / ServerKey: TLS required of every client; the handshake's deadline.
    tls_cert: str = ""
    tls_key: str = ""
    tls_timeout_s: int = DEFAULT_TLS_TIMEOUT_S
    max_payload_bytes: int = DEFAULT_NATS_MAX_PAYLOAD_BYTES
    cluster: ClusterSettings | None = None
    # Bacalhau waits 5 s (`ReadyForConnectionsTimeout`); a server still alive then (a slow machine, JetStream
    # recovering a large store) gets until `slow_ready_timeout_s` before it is declared failed.
    ready_timeout_s: float = 5.0
    slow_ready_timeout_s: float = 30.0
    # SIGTERM lets JetStream flush; a server still running after this is killed.
    stop_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        validate_node_id(self.node_id)
        if not 0 < self.max_payload_bytes <= MAX_PAYLOAD_LIMIT_BYTES:
            raise ConfigurationError(
                f"NATS max payload {self.max_payload_bytes} is out of range (1 to {MAX_PAYLOAD_LIMIT_BYTES} bytes)",
                component=COMPONENT,
                hint="set Orchestrator.NATS.MaxPayload to a byte count, e.g. 16777216",
            )
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(
                f"orchestrator port {self.port} is out of range", component=COMPONENT,
                hint="set Orchestrator.Port to a TCP port (0 picks a free one)",
            )

    @classmethod
    def from_config(cls, config: BacalhauConfig, *, node_id: str) -> NatsServerSettings:
        """Settings of the server an orchestrator embeds. Raises ConfigurationError naming the bad key."""
        orch = config.orchestrator
        tls = orch.tls
        if bool(tls.server_cert) != bool(tls.server_key):
            raise ConfigurationError(
                "both ServerTLSCert and ServerTLSKey must be set together", component=COMPONENT,
                hint="set Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey, or neither",
            )
        if tls.server_timeout < 0:
            raise ConfigurationError(
                f"NATS ServerTLSTimeout must be a positive number, got: {tls.server_timeout}", component=COMPONENT,
                hint="set Orchestrator.TLS.ServerTimeout to seconds (0: 10 s)",
            )
        if tls.server_cert:
            check_pair(tls.server_cert, tls.server_key, section="Orchestrator.TLS",
                       keys="Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey",
                       component=COMPONENT)
        cluster = orch.cluster
        cluster_settings = None
        if cluster.name or cluster.port or cluster.advertise or cluster.peers:
            # Bacalhau validates the port as soon as any cluster key is set, although only peers enable routes.
            if cluster.port <= 0:
                raise ConfigurationError(
                    f"cluster port {cluster.port} must be greater than zero", component=COMPONENT,
                    hint="set Orchestrator.Cluster.Port, or unset the other Orchestrator.Cluster keys",
                )
            if cluster.peers:
                cluster_settings = ClusterSettings(
                    port=cluster.port, peers=tuple(cluster.peers), name=cluster.name, host=cluster.host,
                    advertise=cluster.advertise,
                )
        return cls(
            node_id=node_id,
            store_dir=Path(config.data_dir, *STORE_DIR_PARTS),
            host=orch.host,
            port=orch.port,
            advertise=orch.advertise,
            token=orch.auth.token,
            tls_cert=tls.server_cert,
            tls_key=tls.server_key,
            tls_timeout_s=tls.server_timeout or DEFAULT_TLS_TIMEOUT_S,
            max_payload_bytes=orch.nats.max_payload,
            cluster=cluster_settings,
        )

    def render_conf(self, *, ports_file_dir: Path) -> str:
        """The nats-server config file. It holds the token, so it is written mode 0600 and never logged."""
        lines = [
            "# Written by bacalhau for its embedded nats-server; regenerated at every start.",
            f"server_name: {conf_string(self.node_id)}",
            f"host: {conf_string(self.host)}",
            # -1 is nats-server's "random port" (0 would mean its default, 4222).
            f"port: {self.port or -1}",
            # Monitoring only on loopback, for the readiness probe (/healthz) and debugging.
            'http: "127.0.0.1:-1"',
            f"ports_file_dir: {conf_string(str(ports_file_dir))}",
            f"max_payload: {self.max_payload_bytes}",
            f"jetstream {{\n  store_dir: {conf_string(str(self.store_dir))}\n}}",
        ]
        if self.advertise:
            lines.append(f"client_advertise: {conf_string(self.advertise)}")
        if self.token:
            lines.append(f"authorization {{\n  token: {conf_string(self.token)}\n}}")
        if self.tls_cert:
            lines.append(
                f"tls {{\n  cert_file: {conf_string(self.tls_cert)}\n  key_file: {conf_string(self.tls_key)}\n"
                f"  timeout: {self.tls_timeout_s}\n}}"
            )
        if self.cluster is not None:
            body = [f"  port: {self.cluster.port}"]
            if self.cluster.name:
                body.append(f"  name: {conf_string(self.cluster.name)}")
            if self.cluster.host:
                body.append(f"  host: {conf_string(self.cluster.host)}")
            if self.cluster.advertise:
                body.append(f"  advertise: {conf_string(self.cluster.advertise)}")
            routes = ", ".join(conf_string(route_url(p)) for p in self.cluster.peers)
            body.append(f"  routes: [{routes}]")
            lines.append("cluster {\n" + "\n".join(body) + "\n}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NatsClientSettings:
    """How a node's NATS connection behaves; defaults follow Bacalhau's Go client where nats-py differs."""

    servers: tuple[str, ...]
    name: str
    token: str = field(default="", repr=False)
    # TLS: use it (the server requires it, or a CA was given), the CA file to trust ('' : the system's),
    # verify the server at all (False only for a node's loopback link to the server it embeds), and do
    # the handshake before NATS's INFO (Compute.TLS.RequireTLS).
    tls: bool = False
    tls_ca_file: str = ""
    tls_verify: bool = True
    tls_handshake_first: bool = False
    # nats.go uses 2 s; 5 s leaves room for a WAN link or an orchestrator busy with a handshake storm,
    # where a short timeout only turns load into more connection attempts. Whole seconds: nats-py's type.
    connect_timeout_s: int = 5
    # Reconnects after a lost link: wait plus a random share of the jitter (nats.go: 2 s + up to 100 ms, 1 s
    # with TLS). The larger jitter spreads 10,000 compute nodes reconnecting to a restarted orchestrator.
    reconnect_wait_s: float = 2.0
    reconnect_jitter_s: float = 1.0
    # First connect (server not up yet): exponential backoff from reconnect_wait_s up to this, with jitter.
    first_connect_backoff_max_s: float = 30.0
    pending_bytes: int = DEFAULT_PENDING_BYTES
    drain_timeout_s: int = 5

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigurationError(
                "missing orchestrators", component=COMPONENT,
                hint="set Compute.Orchestrators to the orchestrator's NATS address (nats://host:4222)",
            )
        validate_node_id(self.name)

    @classmethod
    def from_config(
        cls, config: BacalhauConfig, *, node_id: str, servers: Sequence[str] | None = None, own_server: bool = False
    ) -> NatsClientSettings:
        """The client of a node. `servers` overrides the config (an orchestrator passes its embedded server's URL).

        Token: a compute-only node presents Compute.Auth.Token, any orchestrator its Orchestrator.Auth.Token
        (Bacalhau's `createTransport`). Servers: Orchestrator.NATS.Servers on an orchestrator that joins an
        existing server, else Compute.Orchestrators.
        """
        orch, compute = config.orchestrator, config.compute
        compute_only = compute.enabled and not orch.enabled
        if servers is None:
            servers = orch.nats.servers if orch.enabled and orch.nats.servers else compute.orchestrators
        if compute_only:
            ca_file, tls = compute.tls.ca_cert, bool(compute.tls.ca_cert or compute.tls.require_tls)
        elif own_server:  # its own embedded server: TLS exactly when that server has a certificate
            ca_file, tls = orch.tls.ca_cert, bool(orch.tls.server_cert)
        else:
            ca_file, tls = orch.tls.ca_cert, bool(orch.tls.ca_cert or orch.tls.server_cert)
        if ca_file and not os.path.isfile(ca_file):
            key = "Compute.TLS.CACert" if compute_only else "Orchestrator.TLS.CACert"
            raise ConfigurationError(f"{key}: CA certificate file {ca_file!r} does not exist", component=COMPONENT,
                                     hint=f"set {key} to the PEM file of the CA that signed the NATS server's certificate")
        return cls(
            servers=tuple(servers),
            name=node_id,
            token=compute.auth.token if compute_only else orch.auth.token,
            tls=tls,
            tls_ca_file=ca_file,
            # A node's link to the server it embeds runs over loopback to its own child process: the
            # certificate (made for the node's public name) is not checked against 127.0.0.1.
            tls_verify=not own_server,
            tls_handshake_first=compute_only and compute.tls.require_tls,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client's SSL context (None: no TLS unless the server asks, then the system's trust)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file or None)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
