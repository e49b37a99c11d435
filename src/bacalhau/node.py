"""The composition root: builds the orchestrator and/or the compute node from config (`bacalhau serve`).

The only module that imports both sides. Nodes talk NCL over NATS. A hybrid node's own compute is
linked to its orchestrator inside the process (transport/local_link.py: the same outbox, handshake and
reconciliation, without sockets or encoding), while its NATS server and NCL serve every other node.

    orchestrator: nats-server (embedded, or Orchestrator.NATS.Servers) ─> NATS client ─> JobStore
                  ─> Orchestrator (recover evaluations) ─> NCL orchestrator link (+ local link: hybrid)
    compute:      NATS client (Compute.Orchestrators, retried until it answers) ─> NCL compute link,
                  or the local link of a hybrid node
                  ─> ComputeNode (fail what a previous run left, start plugins) ─> handshake, heartbeats
    then: workers ─> API server (every node: agent routes; orchestrator routes on orchestrators)
          ─> wait for SIGTERM/SIGINT ─> stop in reverse
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
import yaml

from bacalhau.asgi_server import BoundedHttpTools, bound_port, serve
from bacalhau.auth.authorizer import AllowAll, Authorizer, build_authorizer
from bacalhau.auth.binding import api_binding, web_ui_binding
from bacalhau.auth.challenge import ClientKeyChallenge
from bacalhau.config.duration import parse_duration_s
from bacalhau.config.types import BacalhauConfig, JobTypeDefaults
from bacalhau.models.errors import ConfigurationError
from bacalhau.models.node import NODE_TYPE_REQUESTER, PROTOCOL_NCL_V1, NodeInfo
from bacalhau.models.normalize import JobDefaults
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.audit import AuditLog
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.nodes import NodeChange
from bacalhau.orchestrator.results import result_transformer
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.tls.api_server import ServerTLS, api_server_tls
from bacalhau.transport.local_link import LocalLink
from bacalhau.transport.nats_connection import NatsConnection
from bacalhau.transport.nats_server import EmbeddedNatsServer
from bacalhau.transport.nats_settings import NatsClientSettings, NatsServerSettings
from bacalhau.transport.ncl.compute_link import NclComputeLink
from bacalhau.transport.ncl.orchestrator_link import NclOrchestratorLink
from bacalhau.transport.outbox import Outbox
from bacalhau.version import build_version

if TYPE_CHECKING:
    from bacalhau.compute.service import ComputeNode

log = logging.getLogger(__name__)

METADATA_FILE = "system_metadata.yaml"
# How long a hybrid node waits for its own compute to join before it starts scheduling.
_LOCAL_JOIN_WAIT_S = 10.0
# How long an orchestrator waits for its NATS server (embedded: already up; external: may be starting).
_ORCHESTRATOR_CONNECT_S = 30.0


@dataclass(frozen=True)
class Identity:
    node_id: str
    instance_id: str
    installation_id: str


def load_identity(data_dir: Path, *, name: str | None, name_provider: str) -> Identity:
    """The node's persisted name (system_metadata.yaml); created on first start."""
    path = data_dir / METADATA_FILE
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            data = loaded
    node_id = name or data.get("NodeName") or _generate_name(name_provider)
    installation = data.get("InstallationID") or str(uuid.uuid4())
    data.update({"NodeName": node_id, "InstallationID": installation, "RepoVersion": 4})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    os.replace(tmp, path)
    return Identity(node_id=node_id, instance_id=str(uuid.uuid4()), installation_id=installation)


def _generate_name(provider: str) -> str:
    if provider == "hostname":
        return os.uname().nodename
    if provider == "uuid":
        return str(uuid.uuid4())
    if provider == "puuid":
        return f"n-{uuid.uuid4()}"
    raise ConfigurationError(f"unknown NameProvider {provider!r}; valid: puuid, uuid, hostname")


def job_defaults(config: BacalhauConfig, job_type: str) -> JobDefaults:
    """The JobDefaults.<Type> config section as normalisation defaults."""
    section: JobTypeDefaults = getattr(config.job_defaults, job_type, config.job_defaults.batch)
    task = section.task
    publisher = task.publisher if task.publisher.type else None
    return JobDefaults(
        cpu=task.resources.cpu,
        memory=task.resources.memory,
        disk=task.resources.disk,
        gpu=task.resources.gpu,
        publisher=publisher if job_type in ("batch", "ops") else None,
        execution_timeout_s=int(parse_duration_s(task.timeouts.execution_timeout)) if job_type in ("batch", "ops") else 0,
        total_timeout_s=int(parse_duration_s(task.timeouts.total_timeout)) if job_type in ("batch", "ops") else 0,
        priority=section.priority,
    )


class Node:
    """A running bacalhau node: orchestrator, compute, or both."""

    def __init__(
        self,
        *,
        config: BacalhauConfig,
        orchestrator: bool,
        compute: bool,
        name: str | None = None,
        reload_config: Callable[[], BacalhauConfig] | None = None,
    ) -> None:
        """`reload_config` reads the config again as `serve` did (SIGHUP: the node takes its new Labels)."""
        self._reload_config = reload_config
        # Flags win; without them the config's Orchestrator.Enabled / Compute.Enabled decide.
        orchestrator = orchestrator or config.orchestrator.enabled
        compute = compute or config.compute.enabled
        if not orchestrator and not compute:
            log.warning("neither --orchestrator nor --compute given: running an orchestrator only")
            orchestrator = True
        config.orchestrator.enabled = orchestrator
        config.compute.enabled = compute
        self.config = config
        self.data_dir = Path(config.data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.identity = load_identity(self.data_dir, name=name, name_provider=config.name_provider)
        self._with_compute = compute
        self._with_orchestrator = orchestrator
        self._stop = asyncio.Event()
        self._stop_now = asyncio.Event()
        self._compute_link_connected = asyncio.Event()
        self._compute_link: NclComputeLink | LocalLink | None = None
        self._local_link: LocalLink | None = None
        self._compute_node: ComputeNode | None = None
        self.server: uvicorn.Server | None = None
        self._authorizer: Authorizer = AllowAll()
        self._api_tls: ServerTLS | None = None
        self._embedded_url = ""  # the NATS URL of the server this node embeds ('' : none)
        self._audit: AuditLog | None = None
        self._api_host = config.api.host

    def reload(self) -> None:
        """SIGHUP: read the config again and advertise its Labels (the orchestrator re-evaluates queued and
        daemon jobs); other settings take effect at the next start. A config that no longer loads is
        logged and ignored: the node goes on as it was."""
        if self._reload_config is None or self._compute_node is None:
            log.info("SIGHUP: nothing to reload (no compute node, or no config source)")
            return
        try:
            labels = dict(self._reload_config().labels)
        except Exception as exc:  # a broken file must not take a running node down
            log.error("SIGHUP: the config does not load (%s); keeping the current labels", exc)
            return
        self.config.labels = labels
        self._compute_node.relabel(labels)
        log.info("SIGHUP: labels reloaded: %s (other settings take effect at the next start)",
                 ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none")

    def request_stop(self) -> None:
        # The first signal stops gently (drain); a second one while draining stops now.
        if self._stop.is_set():
            self._stop_now.set()
        self._stop.set()

    async def run(self) -> None:
        """Start everything, serve until a stop is requested (SIGTERM/SIGINT), then shut down cleanly."""
        # First: users that break the rules, or a security setting this node cannot honour, stop it here.
        self._authorizer = build_authorizer(self.config.api.auth)
        self._api_tls = api_server_tls(self.config.api.tls, data_dir=self.data_dir, host=self.config.api.host)
        if self._api_tls is not None and self._api_tls.self_signed:
            log.info("API TLS: self-signed certificate %s; clients trust it with -c API.TLS.UseTLS=true "
                     "-c API.TLS.CAFile=%s", self._api_tls.cert_file, self._api_tls.cert_file)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        async with contextlib.AsyncExitStack() as stack:
            orchestrator_url = ""
            orchestrator = None
            if self._with_orchestrator:
                orchestrator, orchestrator_url = await self._start_orchestrator(stack)
            compute_node = None
            if self._with_compute:
                compute_node = self._compute_node = await self._start_compute(stack, orchestrator_url)
                if orchestrator is not None:
                    # A hybrid node schedules only once its own compute has joined (bounded): jobs left
                    # from before a restart would otherwise find no node and fail.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._compute_link_connected.wait(), _LOCAL_JOIN_WAIT_S)
            if orchestrator is not None:
                orchestrator.start_workers()
            # Every node serves its API, a compute-only one too (agent routes only), as in Bacalhau.
            api_port = await self._serve_api(stack, orchestrator, compute_node)
            roles = ", ".join(r for r, on in (("orchestrator", orchestrator), ("compute", compute_node)) if on)
            where = f"API on {'https' if self._api_tls else 'http'}://{self._api_host}:{api_port}"
            if orchestrator is None:
                where += f"; joining {', '.join(self._compute_servers(orchestrator_url))}"
            nats = f"; NATS on {orchestrator_url}" if orchestrator_url else ""
            if self.config.web_ui.enabled:
                where += f"; Web UI on {await self._serve_web_ui(stack, api_port)}"
            print(f"bacalhau node {self.identity.node_id} started: {where} ({roles}){nats}; data in {self.data_dir}",
                  flush=True)
            await self._wait_for_stop()
            await self._drain(orchestrator, compute_node)

    async def _serve_web_ui(self, stack: contextlib.AsyncExitStack, api_port: int) -> str:
        """The web UI (WebUI.Enabled) on WebUI.Listen, a client of WebUI.Backend or this node's API."""
        from bacalhau.webui.server import serve_web_ui, split_listen

        cfg = self.config
        host, port = split_listen(cfg.web_ui.listen)
        binding = web_ui_binding(host, host_is_set=cfg.is_set("WebUI.Listen"), enforced=self._authorizer.enforced)
        if binding.message:
            (log.warning if binding.warning else log.info)("%s", binding.message)
        # Its own API over loopback: the certificate (perhaps self-signed, for another name) adds nothing there.
        own = f"{'https' if self._api_tls else 'http'}://127.0.0.1:{api_port}"
        backend = cfg.web_ui.backend.strip() or own
        return await serve_web_ui(stack, host=binding.host, port=port, backend_url=backend,
                                  verify_tls=backend != own, ca_file=cfg.api.tls.ca_file,
                                  host_names=tuple(cfg.api.allowed_hosts))

    async def _wait_for_stop(self) -> None:
        """Until SIGTERM/SIGINT, or until the compute link gives up for good (then its error is raised)."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        link = self._compute_link
        if link is not None:
            waits.append(asyncio.ensure_future(link.failed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if link is not None and link.fatal_error is not None and not self._stop.is_set():
            raise link.fatal_error

    async def _drain(self, orchestrator: Orchestrator | None, compute_node: ComputeNode | None) -> None:
        """A requested stop, before anything closes: place nothing more, let running work finish.

        1. The orchestrator stops placing (pending evaluations stay stored for the next start), so no
           retry goes to a node that is stopping: in a hybrid node, that is its own compute.
        2. The compute tells its orchestrator it drains (no new work for it; what it runs stays), hands
           back what has not started, and gives running executions Compute.ShutdownGracePeriod.
        3. The exit stack then stops the rest; what still runs is handed back, not failed, so after a
           restart (or on another node) every job goes on without using up its retries.
        """
        if not self._stop.is_set():
            return  # the compute link gave up: no orchestrator to drain towards
        if orchestrator is not None:
            await orchestrator.pause()
        if compute_node is None:
            return
        grace_s = parse_duration_s(self.config.compute.shutdown_grace_period)
        if self._compute_link is not None:
            await self._compute_link.announce_drain()
        running = compute_node.running_count()
        if running and grace_s > 0 and not self._stop_now.is_set():
            print(f"draining: up to {grace_s:g}s for {running} running execution(s) to finish "
                  "(Compute.ShutdownGracePeriod); signal again to stop now", flush=True)
        finished, handed_back = await compute_node.drain(grace_s, abort=self._stop_now)
        left = compute_node.running_count()
        log.info("drained: %d execution(s) finished, %d handed back before starting, %d to hand back now",
                 finished, handed_back, left)

    async def _start_orchestrator(self, stack: contextlib.AsyncExitStack) -> tuple[Orchestrator, str]:
        """The NATS server (embedded unless Orchestrator.NATS.Servers names one), the NCL link, the orchestrator."""
        cfg = self.config
        node_id = self.identity.node_id
        servers = list(cfg.orchestrator.nats.servers)
        url = servers[0] if servers else ""
        if not servers:
            server = EmbeddedNatsServer(settings=NatsServerSettings.from_config(cfg, node_id=node_id))
            await server.start()
            stack.push_async_callback(server.stop)
            url = server.client_url
            servers = [url]
        self._embedded_url = url if not cfg.orchestrator.nats.servers else ""
        connection = NatsConnection(settings=NatsClientSettings.from_config(
            cfg, node_id=node_id, servers=servers, own_server=bool(self._embedded_url)))
        stack.push_async_callback(connection.close)
        nc = await connection.connect(timeout_s=_ORCHESTRATOR_CONNECT_S)
        # Job specs carry secrets (Env): the orchestrator's files are the node user's only.
        (self.data_dir / "orchestrator").mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.data_dir / "orchestrator").chmod(0o700)
        store = SQLiteJobStore(path=self.data_dir / "orchestrator" / "jobs.db")
        stack.push_async_callback(store.close)
        self._audit = AuditLog(self.data_dir / "orchestrator" / "audit.db")
        self._audit.open()
        stack.callback(self._audit.close)
        outbox = Outbox(path=self.data_dir / "orchestrator" / "ncl-outbox.db")
        outbox.open()
        stack.callback(outbox.close)
        link = NclOrchestratorLink(
            nc=nc, orchestrator_id=node_id, outbox=outbox, max_message_bytes=cfg.orchestrator.nats.max_payload
        )
        directory: NclOrchestratorLink | LocalLink = link
        if self._with_compute:
            # A hybrid node's own compute is linked in process (transport/local_link.py); NCL serves the rest.
            directory = self._local_link = LocalLink(
                node_id=node_id, remote=link,
                max_message_bytes=cfg.orchestrator.nats.max_payload,
                heartbeat_interval_s=parse_duration_s(cfg.compute.heartbeat.interval),
                info_update_interval_s=parse_duration_s(cfg.compute.heartbeat.info_update_interval),
            )
        orchestrator = Orchestrator(
            node_id=node_id,
            store=store,
            directory=directory,
            defaults=lambda job_type: job_defaults(cfg, job_type),
            worker_count=cfg.orchestrator.scheduler.worker_count,
            queue_backoff_s=parse_duration_s(cfg.orchestrator.scheduler.queue_backoff),
            manual_approval=cfg.orchestrator.node_manager.manual_approval,
            disconnect_timeout_s=parse_duration_s(cfg.orchestrator.node_manager.disconnect_timeout),
            nodes_path=self.data_dir / "orchestrator" / "nodes.db",
            installation_id=self.identity.installation_id,
            instance_id=self.identity.instance_id,
            limits=cfg.job_admission_control.limits.to_limits(),
            retry=cfg.orchestrator.scheduler.retry.to_policy(),
            locality_ranking=cfg.orchestrator.scheduler.locality_ranking,
            result_transformer=result_transformer(
                presign_s3=not cfg.publishers.types.s3.pre_signed_url_disabled,
                presign_expires_s=int(parse_duration_s(cfg.publishers.types.s3.pre_signed_url_expiration)),
            ),
        )
        stack.push_async_callback(orchestrator.stop)
        await orchestrator.recover()
        await link.start(orchestrator.compute_events)
        stack.push_async_callback(link.stop)
        if self._local_link is not None:
            self._local_link.serve(orchestrator.compute_events)
        orchestrator.nodes.on_change(
            lambda event: directory.node_left(event.node_id) if event.change is NodeChange.LEAVE else None
        )
        return orchestrator, url

    def _compute_servers(self, orchestrator_url: str) -> list[str]:
        # A hybrid node joins its own server; a compute-only node the configured orchestrators.
        return [orchestrator_url] if orchestrator_url else list(self.config.compute.orchestrators)

    async def _start_compute(self, stack: contextlib.AsyncExitStack, orchestrator_url: str) -> ComputeNode:
        from bacalhau.compute.registry import build_registry
        from bacalhau.compute.service import ComputeNode

        cfg = self.config
        node_id = self.identity.node_id
        outbox = Outbox(path=self.data_dir / "compute" / "ncl-outbox.db")
        outbox.open()
        stack.callback(outbox.close)
        link = self._local_link or self._ncl_compute_link(outbox, orchestrator_url)
        self._compute_link_connected = link.connected
        self._compute_link = link
        compute_node = ComputeNode(
            node_id=node_id,
            config=cfg,
            registry=build_registry(config=cfg, node_id=node_id),
            orchestrator=link,
        )
        def node_info() -> NodeInfo:
            return self._advertised(compute_node.node_info())

        if isinstance(link, LocalLink):
            link.attach(compute_node, outbox=outbox, node_info=node_info,
                        active_executions=compute_node.active_execution_ids)
        else:
            link.attach(compute_node, node_info=node_info,
                        active_executions=compute_node.active_execution_ids, job_type=compute_node.job_type)
        # Stopped in reverse: the node fails and reports what it still runs, then the link flushes
        # those reports, says goodbye to the orchestrator and closes.
        stack.push_async_callback(link.stop)
        await compute_node.start()
        stack.push_async_callback(compute_node.stop)
        return compute_node

    def _ncl_compute_link(self, outbox: Outbox, orchestrator_url: str) -> NclComputeLink:
        """A compute-only node's link: NCL to the orchestrators it joins."""
        cfg = self.config
        node_id = self.identity.node_id
        servers = self._compute_servers(orchestrator_url)
        own = bool(self._embedded_url) and servers == [self._embedded_url]
        connection = NatsConnection(settings=NatsClientSettings.from_config(cfg, node_id=node_id, servers=servers,
                                                                            own_server=own))
        return NclComputeLink(
            connection=connection,
            node_id=node_id,
            outbox=outbox,
            max_message_bytes=cfg.orchestrator.nats.max_payload,
            heartbeat_interval_s=parse_duration_s(cfg.compute.heartbeat.interval),
            info_update_interval_s=parse_duration_s(cfg.compute.heartbeat.info_update_interval),
        )

    @staticmethod
    def _advertised(info: NodeInfo) -> NodeInfo:
        info.supported_protocols = [PROTOCOL_NCL_V1]
        info.bacalhau_version = build_version()
        return info

    async def _serve_api(
        self, stack: contextlib.AsyncExitStack, orchestrator: Orchestrator | None, compute_node: ComputeNode | None
    ) -> int:
        """Serve the node's API on API.Host/API.Port until the stack closes; return the port it listens on.

        Agent routes always; orchestrator routes only with an orchestrator (create_app). API.Port=0
        means a free port, which the caller prints.
        """
        cfg = self.config

        def node_info() -> NodeInfo:
            if compute_node is not None:
                return self._advertised(compute_node.node_info())
            return self._advertised(
                NodeInfo(NodeID=self.identity.node_id, NodeType=NODE_TYPE_REQUESTER, Labels=dict(cfg.labels))
            )

        ctx = ApiContext(
            version=build_version(),
            node_info=node_info,
            config=cfg.redacted,
            orchestrator=orchestrator,
            debug_info=compute_node.debug_info if compute_node is not None else dict,
            max_log_streams_per_job=cfg.orchestrator.log_stream.max_streams_per_job,
            authorizer=self._authorizer,
            # Bacalhau serves the Oauth2 keys that are set (omitempty), even when SSO is not switched on.
            auth_config={k: v for k, v in cfg.api.auth.oauth2.to_wire().items() if v},
            audit=self._audit if orchestrator is not None else None,
            challenge=(
                ClientKeyChallenge(node_id=self.identity.node_id, data_dir=self.data_dir)
                if orchestrator is not None and not self._authorizer.enforced else None
            ),
            rate_limit=(cfg.api.rate_limit.rate, cfg.api.rate_limit.burst, cfg.api.rate_limit.loopback),
            cors_origins=tuple(cfg.api.cors.allowed_origins),
            allowed_hosts=tuple(cfg.api.allowed_hosts),
        )
        binding = api_binding(cfg.api.host, host_is_set=cfg.is_set("API.Host"), enforced=self._authorizer.enforced)
        if binding.message:
            (log.warning if binding.warning else log.info)("%s", binding.message)
        self._api_host = binding.host
        self.server = await serve(
            stack,
            uvicorn.Config(
                create_app(ctx),
                host=binding.host,
                port=cfg.api.port,
                # The client address is the socket's: a local process must not name another one in the
                # audit log (or dodge the rate limit) with X-Forwarded-For.
                proxy_headers=False,
                ssl_certfile=self._api_tls.cert_file if self._api_tls else None,
                ssl_keyfile=self._api_tls.key_file if self._api_tls else None,
                log_level="warning",
                # None: uvicorn's records go through the root handler `serve` set up, so they
                # follow Logging.Mode (json lines stay json) instead of uvicorn's own format.
                log_config=None,
                lifespan="off",
                ws="websockets-sansio",
                # httptools with a bound on a request's head (asgi_server.BoundedHttpTools: 431 past
                # 64 KiB; httptools alone read a 200 MB header line whole).
                http=BoundedHttpTools,
                timeout_graceful_shutdown=2,
            ),
            what="API server",
            hint="choose another port with -c API.Port=<port>",
        )
        return bound_port(self.server, default=cfg.api.port)

