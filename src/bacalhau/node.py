"""The composition root: builds the orchestrator and/or the compute node from config (`bacalhau serve`).

The only module that imports both sides. Nodes talk NCL over NATS. A hybrid node's own compute is
linked to its orchestrator inside the process (transport/local_link.py: the same outbox, handshake and
reconciliation, without sockets or encoding), while its NATS server and NCL serve every other node; with
Compute.SeparateProcess=true it runs as a supervised child process instead (compute_process.py), joined
to the node's own NATS server like any compute node, so that the node's own work uses two cores.

    hybrid, SeparateProcess: spawn the compute child first (its imports overlap the orchestrator's start)
    orchestrator: nats-server (embedded, or Orchestrator.NATS.Servers) ─> NATS client ─> JobStore
                  ─> Orchestrator (recover evaluations) ─> NCL orchestrator link (+ local link: in process)
    compute:      NATS client (Compute.Orchestrators, retried until it answers) ─> NCL compute link,
                  or the local link of an in-process hybrid, or the hello to the compute child
                  ─> ComputeNode (fail what a previous run left, start plugins) ─> handshake, heartbeats
    then: workers ─> API server (every node: agent routes; orchestrator routes on orchestrators)
          ─> wait for SIGTERM/SIGINT ─> drain (the child too) ─> stop in reverse
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from bacalhau.asgi_server import BoundedHttpTools, bound_port, serve
from bacalhau.compute_process import separate_compute_wanted
from bacalhau.config.duration import parse_duration_s
from bacalhau.config.types import BacalhauConfig, JobTypeDefaults
from bacalhau.models.errors import BacalhauError
from bacalhau.models.node import NODE_TYPE_REQUESTER, PROTOCOL_NCL_V1, NodeInfo
from bacalhau.models.normalize import JobDefaults
from bacalhau.node_identity import Identity, load_identity
from bacalhau.transport.local_link import LocalLink, reframe_local_reports
from bacalhau.transport.nats_connection import NatsConnection
from bacalhau.transport.nats_settings import NatsClientSettings
from bacalhau.transport.ncl.compute_link import NclComputeLink
from bacalhau.transport.outbox import Outbox
from bacalhau.version import build_version

# What only an orchestrator needs is imported where it starts: a compute-only node, and a hybrid node's
# compute child (compute_process.py), start faster without FastAPI and the orchestrator.
if TYPE_CHECKING:
    from bacalhau.auth.authorizer import Authorizer
    from bacalhau.compute.service import ComputeNode
    from bacalhau.compute_child import ParentLink
    from bacalhau.compute_process import ComputeProcess
    from bacalhau.orchestrator.audit import AuditLog
    from bacalhau.orchestrator.service import Orchestrator
    from bacalhau.tls.api_server import ServerTLS
    from bacalhau.transport.ncl.orchestrator_link import NclOrchestratorLink

log = logging.getLogger(__name__)

# How long a hybrid node waits for its own compute to join before it starts scheduling.
_LOCAL_JOIN_WAIT_S = 10.0
# How long an orchestrator waits for its NATS server (embedded: already up; external: may be starting).
_ORCHESTRATOR_CONNECT_S = 30.0


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
        identity: Identity | None = None,
        compute_process: ComputeProcess | None = None,
    ) -> None:
        """`reload_config` reads the config again as `serve` did (SIGHUP: the node takes its new Labels).

        `identity` is given by a hybrid node to its compute child (compute_process.py), which must not
        write the node's metadata file again. `compute_process` is that child, spawned already by `serve`
        (compute_process.separate_compute_wanted) so that its start overlaps the node's imports."""
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
        self.identity = identity or load_identity(self.data_dir, name=name, name_provider=config.name_provider)
        self._with_compute = compute
        self._with_orchestrator = orchestrator
        # Compute.SeparateProcess: a hybrid node runs its compute side as a supervised child process.
        self._separate_compute = separate_compute_wanted(config, orchestrator=orchestrator, compute=compute)
        self._compute_process: ComputeProcess | None = compute_process if self._separate_compute else None
        self._stop = asyncio.Event()
        self._stop_now = asyncio.Event()
        self._compute_link_connected = asyncio.Event()
        self._compute_link: NclComputeLink | LocalLink | None = None
        self._local_link: LocalLink | None = None
        self._compute_node: ComputeNode | None = None
        self.server: uvicorn.Server | None = None
        self._authorizer: Authorizer | None = None  # set by run(): API.Auth
        self._api_tls: ServerTLS | None = None
        self._embedded_url = ""  # the NATS URL of the server this node embeds ('' : none)
        self._audit: AuditLog | None = None
        self._api_host = config.api.host

    def reload(self) -> None:
        """SIGHUP: read the config again and advertise its Labels (the orchestrator re-evaluates queued and
        daemon jobs); other settings take effect at the next start. A config that no longer loads is
        logged and ignored: the node goes on as it was."""
        if self._reload_config is None or not self._with_compute:
            log.info("SIGHUP: nothing to reload (no compute node, or no config source)")
            return
        try:
            labels = dict(self._reload_config().labels)
        except Exception as exc:  # a broken file must not take a running node down
            log.error("SIGHUP: the config does not load (%s); keeping the current labels", exc)
            return
        self.relabel(labels)
        log.info("SIGHUP: labels reloaded: %s (other settings take effect at the next start)",
                 ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none")

    def relabel(self, labels: dict[str, str]) -> None:
        """Advertise new Labels: to the compute in this process, or to the compute child."""
        self.config.labels = labels
        if self._compute_node is not None:
            self._compute_node.relabel(labels)
        elif self._compute_process is not None:
            self._compute_process.send("labels", labels=labels)

    def request_stop(self) -> None:
        # The first signal stops gently (drain); a second one while draining stops now.
        if self._stop.is_set():
            self._stop_now.set()
        self._stop.set()

    async def run(self) -> None:
        """Start everything, serve until a stop is requested (SIGTERM/SIGINT), then shut down cleanly."""
        from bacalhau.auth.authorizer import build_authorizer
        from bacalhau.tls.api_server import api_server_tls

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        async with contextlib.AsyncExitStack() as stack:
            orchestrator_url = ""
            orchestrator = None
            if self._separate_compute:
                # Spawned first (by `serve` even before the node's imports): the child's imports, its
                # slowest part, overlap the orchestrator's start.
                from bacalhau.compute_process import ComputeProcess

                process = self._compute_process = self._compute_process or ComputeProcess()
                stack.push_async_callback(process.stop)
                await process.start()
            # Users that break the rules, or a security setting this node cannot honour, stop it here.
            self._authorizer = build_authorizer(self.config.api.auth)
            self._api_tls = api_server_tls(self.config.api.tls, data_dir=self.data_dir, host=self.config.api.host)
            if self._api_tls is not None and self._api_tls.self_signed:
                log.info("API TLS: self-signed certificate %s; clients trust it with -c API.TLS.UseTLS=true "
                         "-c API.TLS.CAFile=%s", self._api_tls.cert_file, self._api_tls.cert_file)
            if self._with_orchestrator:
                orchestrator, orchestrator_url = await self._start_orchestrator(stack)
                if self._compute_process is not None:
                    # Again (it is idempotent), to stop the child before the orchestrator and NATS server
                    # when something fails from here on: its goodbye can still reach them.
                    stack.push_async_callback(self._compute_process.stop)
            compute_node = None
            if self._compute_process is not None and orchestrator is not None:
                await self._introduce_compute_process(self._compute_process, orchestrator, orchestrator_url)
            elif self._with_compute:
                compute_node = self._compute_node = await self._start_compute(
                    stack, self._compute_servers(orchestrator_url))
            if self._with_compute and orchestrator is not None:
                # A hybrid node schedules only once its own compute has joined (bounded): jobs left
                # from before a restart would otherwise find no node and fail.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._compute_link_connected.wait(), _LOCAL_JOIN_WAIT_S)
            if orchestrator is not None:
                orchestrator.start_workers()
            # Every node serves its API, a compute-only one too (agent routes only), as in Bacalhau.
            api_port = await self._serve_api(stack, orchestrator, compute_node)
            roles = ", ".join(r for r, on in (("orchestrator", orchestrator), ("compute", self._with_compute)) if on)
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
        from bacalhau.auth.binding import web_ui_binding
        from bacalhau.webui.server import serve_web_ui, split_listen

        cfg = self.config
        host, port = split_listen(cfg.web_ui.listen)
        binding = web_ui_binding(host, host_is_set=cfg.is_set("WebUI.Listen"), enforced=self._enforced)
        if binding.message:
            (log.warning if binding.warning else log.info)("%s", binding.message)
        # Its own API over loopback: the certificate (perhaps self-signed, for another name) adds nothing there.
        own = f"{'https' if self._api_tls else 'http'}://127.0.0.1:{api_port}"
        backend = cfg.web_ui.backend.strip() or own
        return await serve_web_ui(stack, host=binding.host, port=port, backend_url=backend,
                                  verify_tls=backend != own, ca_file=cfg.api.tls.ca_file,
                                  host_names=tuple(cfg.api.allowed_hosts))

    async def _wait_for_stop(self) -> None:
        """Until SIGTERM/SIGINT, or until the compute link (or the compute process) gives up for good:
        then its error is raised."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        failing = self._compute_link or self._compute_process
        if failing is not None:
            waits.append(asyncio.ensure_future(failing.failed.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if failing is not None and failing.fatal_error is not None and not self._stop.is_set():
            raise failing.fatal_error

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
        grace_s = parse_duration_s(self.config.compute.shutdown_grace_period)
        if self._compute_process is not None:
            await self._compute_process.drain(grace_s, abort=self._stop_now)
            return
        if compute_node is None:
            return
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

    @property
    def _enforced(self) -> bool:
        """Whether API.Auth has users: who may do what is checked."""
        return self._authorizer is not None and self._authorizer.enforced

    async def _start_orchestrator(self, stack: contextlib.AsyncExitStack) -> tuple[Orchestrator, str]:
        """The NATS server (embedded unless Orchestrator.NATS.Servers names one), the NCL link, the orchestrator."""
        from bacalhau.orchestrator.audit import AuditLog
        from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
        from bacalhau.orchestrator.nodes import NodeChange
        from bacalhau.orchestrator.results import result_transformer
        from bacalhau.orchestrator.service import Orchestrator
        from bacalhau.transport.nats_server import EmbeddedNatsServer
        from bacalhau.transport.nats_settings import NatsServerSettings
        from bacalhau.transport.ncl.orchestrator_link import NclOrchestratorLink

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
        if self._with_compute and not self._separate_compute:
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

    async def _introduce_compute_process(
        self, process: ComputeProcess, orchestrator: Orchestrator, orchestrator_url: str
    ) -> None:
        """Compute.SeparateProcess: the compute side as a supervised child (compute_process.py), joined over
        NCL to this node's orchestrator like any compute node. The node waits for it as for its own."""
        from bacalhau.orchestrator.nodes import NodeChange

        node_id = self.identity.node_id
        joined = self._compute_link_connected = asyncio.Event()
        orchestrator.nodes.on_change(
            lambda event: joined.set() if event.node_id == node_id and event.change is NodeChange.JOIN else None)
        servers = list(self.config.orchestrator.nats.servers) or [orchestrator_url]
        own_server = bool(self._embedded_url)

        def hello() -> dict[str, Any]:  # built for each child: one after a SIGHUP gets the new labels
            return {
                "config": self.config.to_wire(),
                "set_keys": sorted(self.config.set_keys),
                "node_id": node_id,
                "installation_id": self.identity.installation_id,
                "servers": servers,
                "own_server": own_server,
                "log_level": logging.getLogger().level,
            }

        process.introduce(hello)
        import bacalhau.orchestrator.api.app  # noqa: F401  (the API's imports, while the child starts)

        await process.wait_started()

    async def run_compute_child(self, *, servers: list[str], own_server: bool, parent: ParentLink) -> None:
        """The compute child of a hybrid node (compute_child.py): this node's compute alone, joined to
        the parent's orchestrator over NCL, stopped by the parent (signals are the parent's)."""
        loop = asyncio.get_running_loop()
        # A SIGTERM may reach both processes (a service manager signals the whole group): here it only
        # starts the drain, however often it comes; only the node's "stop_now" cuts the drain short.
        loop.add_signal_handler(signal.SIGTERM, self.start_drain)
        for sig in (signal.SIGINT, signal.SIGHUP):  # the node's, which tells this process what to do
            loop.add_signal_handler(sig, lambda: None)
        async with contextlib.AsyncExitStack() as stack:
            self._embedded_url = servers[0] if own_server else ""
            compute_node = self._compute_node = await self._start_compute(stack, servers)
            parent.started()
            obeying = asyncio.create_task(parent.obey(self), name="compute-child-control")
            try:
                await self._wait_for_stop()
                await self._drain(None, compute_node)
            finally:
                obeying.cancel()

    def start_drain(self) -> None:
        """Stop gently (drain), however often asked: the compute child's SIGTERM and its node's "drain"."""
        self._stop.set()

    def stop_now(self) -> None:
        """Stop without waiting for running work (a second signal, or the compute child's parent said so)."""
        self._stop_now.set()
        self._stop.set()

    def compute_info(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """This node's compute: its advertised NodeInfo (wire form) and its debug sections."""
        compute_node = self._compute_node
        if compute_node is None:
            return {}, {}
        return self._advertised(compute_node.node_info()).to_wire(), compute_node.debug_info()

    async def _start_compute(self, stack: contextlib.AsyncExitStack, servers: list[str]) -> ComputeNode:
        from bacalhau.compute.registry import build_registry
        from bacalhau.compute.service import ComputeNode

        cfg = self.config
        node_id = self.identity.node_id
        outbox = Outbox(path=self.data_dir / "compute" / "ncl-outbox.db")
        outbox.open()
        stack.callback(outbox.close)
        link = self._local_link or self._ncl_compute_link(outbox, servers)
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
            def reframe() -> None:
                # Reports an in-process hybrid's link left in this outbox (its JSON): NCL sends frames.
                count = reframe_local_reports(outbox, node_id=node_id, max_bytes=cfg.orchestrator.nats.max_payload,
                                              job_type=compute_node.job_type)
                if count:
                    log.info("%d report(s) stored by this node's in-process compute link will go over NCL", count)

            link.attach(compute_node, node_info=node_info, active_executions=compute_node.active_execution_ids,
                        job_type=compute_node.job_type, before_start=reframe)
        # Stopped in reverse: the node fails and reports what it still runs, then the link flushes
        # those reports, says goodbye to the orchestrator and closes.
        stack.push_async_callback(link.stop)
        await compute_node.start()
        stack.push_async_callback(compute_node.stop)
        return compute_node

    def _ncl_compute_link(self, outbox: Outbox, servers: list[str]) -> NclComputeLink:
        """A compute-only node's link (or a hybrid node's compute child's): NCL to the orchestrators it joins."""
        cfg = self.config
        node_id = self.identity.node_id
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
        from bacalhau.auth.authorizer import AllowAll
        from bacalhau.auth.binding import api_binding
        from bacalhau.auth.challenge import ClientKeyChallenge
        from bacalhau.orchestrator.api.app import create_app
        from bacalhau.orchestrator.api.context import ApiContext

        cfg = self.config

        process = self._compute_process

        async def node_info() -> NodeInfo:
            if compute_node is not None:
                return self._advertised(compute_node.node_info())
            if process is not None:  # the compute child's (None while it restarts)
                wire = await process.ask("node_info")
                if wire:
                    return NodeInfo.model_validate(wire)
                if orchestrator is not None:  # what it last told the orchestrator
                    with contextlib.suppress(BacalhauError):
                        return orchestrator.nodes.get(self.identity.node_id).info
            return self._advertised(
                NodeInfo(NodeID=self.identity.node_id, NodeType=NODE_TYPE_REQUESTER, Labels=dict(cfg.labels))
            )

        async def debug_info() -> dict[str, Any]:
            if compute_node is not None:
                return compute_node.debug_info()
            if process is not None:
                return dict(await process.ask("debug") or {})
            return {}

        ctx = ApiContext(
            version=build_version(),
            node_info=node_info,
            config=cfg.redacted,
            orchestrator=orchestrator,
            debug_info=debug_info,
            max_log_streams_per_job=cfg.orchestrator.log_stream.max_streams_per_job,
            authorizer=self._authorizer or AllowAll(),
            # Bacalhau serves the Oauth2 keys that are set (omitempty), even when SSO is not switched on.
            auth_config={k: v for k, v in cfg.api.auth.oauth2.to_wire().items() if v},
            audit=self._audit if orchestrator is not None else None,
            challenge=(
                ClientKeyChallenge(node_id=self.identity.node_id, data_dir=self.data_dir)
                if orchestrator is not None and not self._enforced else None
            ),
            rate_limit=(cfg.api.rate_limit.rate, cfg.api.rate_limit.burst, cfg.api.rate_limit.loopback),
            cors_origins=tuple(cfg.api.cors.allowed_origins),
            allowed_hosts=tuple(cfg.api.allowed_hosts),
        )
        binding = api_binding(cfg.api.host, host_is_set=cfg.is_set("API.Host"), enforced=self._enforced)
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

