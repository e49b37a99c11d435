"""The asyncio client for Bacalhau's /api/v1 (httpx), the twin of sync.Client.

    from bacalhau.client import AsyncClient
    async with AsyncClient() as client:
        resp = await client.put_job(job)
        async for line in client.job_logs(resp.job_id, follow=True):
            print(line.line, end="")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import httpx

from bacalhau.client import download, results, routes
from bacalhau.client.address import resolve_base_url
from bacalhau.client.credentials import with_credentials
from bacalhau.client.errors import error_from_handshake, error_from_response, error_from_transport
from bacalhau.client.headers import default_headers
from bacalhau.client.lazy_tls import plain_http_async, websocket_ssl
from bacalhau.client.logs import decode_frame, logs_url
from bacalhau.client.sync import config_of
from bacalhau.models import api
from bacalhau.models.execution import ExecutionLog
from bacalhau.models.job import Job
from bacalhau.models.node import BuildVersionInfo, NodeInfo


class AsyncClient:
    """An asyncio Bacalhau API client. Every method raises BacalhauError (models/errors.py) on failure."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float | None = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify_tls: bool = True,
        ca_file: str = "",
        env_credentials: bool = True,
    ) -> None:
        self.base_url = resolve_base_url(base_url=base_url, host=host, port=port)
        self.timeout_s = timeout_s  # None: no timeout
        self.verify_tls = verify_tls  # False: accept any https/wss certificate
        self.ca_file = ca_file  # API.TLS.CAFile: trust these CA certificates (a self-signed node's)
        # BACALHAU_API_KEY / BACALHAU_API_USERNAME+PASSWORD, as Bacalhau's CLI sends them.
        # (env_credentials=False: the commands Bacalhau runs unauthenticated, e.g. `version`, `agent alive`.)
        self._headers = {**default_headers(), **(with_credentials(headers) if env_credentials else dict(headers or {}))}
        # Without an explicit transport: no SSL context for plain HTTP (see lazy_tls).
        mounts = None
        if transport is None:
            transport, mounts = plain_http_async(verify_tls=verify_tls, ca_file=ca_file)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, headers=self._headers, transport=transport, mounts=mounts
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the connection pool."""
        await self._http.aclose()

    async def call(self, call: routes.Call) -> Any:
        """Send one request and decode its body; the building block of every method below."""
        try:
            response = await self._http.request(call.method, call.path, params=tuple(call.params), json=call.body)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.base_url) from exc
        if response.status_code >= 300:
            raise error_from_response(response)
        return routes.decode(call, response.json() if response.content else None)

    # Jobs

    async def put_job(self, job: Job | Mapping[str, Any], force: bool = False, *, namespace: str = "") -> api.PutJobResponse:
        """Submit a job (or update the job with the same Name and Namespace)."""
        return cast(api.PutJobResponse, await self.call(routes.put_job(job, force=force, namespace=namespace)))

    async def diff_job(self, job: Job | Mapping[str, Any]) -> api.DiffJobResponse:
        """The diff from the stored job of the same Name to `job` ("" when unchanged); stores nothing.

        Raises NotFoundError when no job has that Name, a BacalhauError coded ValidationError when `job` has no Name.
        """
        return cast(api.DiffJobResponse, await self.call(routes.diff_job(job)))

    async def get_job(
        self, job_id: str, include: Iterable[str] = (), *, namespace: str = "", job_version: int = 0, limit: int = 0,
        wait_ms: int = 0, after_seq: int = 0,
    ) -> api.GetJobResponse:
        """A job by full ID, short ID or name; `include` may name "history" and "executions". With `wait_ms`
        a bacalhau-py server answers once the job has a history event past `after_seq` (or when `wait_ms`
        pass); other servers answer at once."""
        call = routes.get_job(
            job_id, include=include, namespace=namespace, job_version=job_version, limit=limit, wait_ms=wait_ms,
            after_seq=after_seq,
        )
        return cast(api.GetJobResponse, await self.call(call))

    async def list_jobs(
        self,
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        labels: Iterable[str] = (),
        namespace: str = "",
        states: Iterable[str] = (),
        job_type: str = "",
    ) -> api.ListJobsResponse:
        """Jobs, newest first unless `reverse`; `labels` are selector strings such as `env=prod`;
        `states` (names) and `job_type` filter on bacalhau-py orchestrators (ours)."""
        call = routes.list_jobs(
            limit=limit, next_token=next_token, order_by=order_by, reverse=reverse, labels=labels, namespace=namespace,
            states=states, job_type=job_type,
        )
        return cast(api.ListJobsResponse, await self.call(call))

    async def node_executions(self, node_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A node's newest executions, without their job specs (ours: bacalhau-py only)."""
        found = await self.call(routes.node_executions(node_id, limit=limit))
        return list(found.get("Items") or []) if isinstance(found, dict) else []

    async def jobs_progress(self, job_ids: list[str]) -> dict[str, dict[str, int]]:
        """Each job's current executions counted by state name (ours: bacalhau-py only)."""
        found = await self.call(routes.jobs_progress(job_ids))
        return dict(found.get("Items") or {}) if isinstance(found, dict) else {}

    async def jobs_summary(self, minutes: int = 60) -> dict[str, Any]:
        """Jobs by state and completions per minute over the last `minutes` (ours: bacalhau-py only)."""
        return cast(dict[str, Any], await self.call(routes.jobs_summary(minutes=minutes)))

    async def stop_job(self, job_id: str, reason: str = "", *, namespace: str = "") -> api.StopJobResponse:
        """Stop a job; EvaluationID is empty when the job was already stopped."""
        return cast(api.StopJobResponse, await self.call(routes.stop_job(job_id, reason=reason, namespace=namespace)))

    async def rerun_job(
        self, job_id: str, version: int = 0, reason: str = "", *, namespace: str = ""
    ) -> api.RerunJobResponse:
        """Run a job (its latest version, or `version`) again as a new version."""
        call = routes.rerun_job(job_id, version=version, reason=reason, namespace=namespace)
        return cast(api.RerunJobResponse, await self.call(call))

    async def job_history(
        self,
        job_id: str,
        *,
        namespace: str = "",
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        job_version: int = 0,
        all_job_versions: bool = False,
        since: int = 0,
        event_type: str = "",
        execution_id: str = "",
    ) -> api.ListHistoryResponse:
        """History events of a job; `event_type` is all|job|execution and `since` Unix seconds."""
        filters = routes.HistoryFilter(
            namespace=namespace, limit=limit, next_token=next_token, order_by=order_by, reverse=reverse,
            job_version=job_version, all_job_versions=all_job_versions, since=since, event_type=event_type,
            execution_id=execution_id,
        )
        return cast(api.ListHistoryResponse, await self.call(routes.job_history(job_id, filters)))

    async def job_executions(
        self,
        job_id: str,
        *,
        namespace: str = "",
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        job_version: int = 0,
        all_job_versions: bool = False,
    ) -> api.ListExecutionsResponse:
        """Executions of a job (its latest version unless `job_version` or `all_job_versions`)."""
        filters = routes.ExecutionsFilter(
            namespace=namespace, limit=limit, next_token=next_token, order_by=order_by, reverse=reverse,
            job_version=job_version, all_job_versions=all_job_versions,
        )
        return cast(api.ListExecutionsResponse, await self.call(routes.job_executions(job_id, filters)))

    async def job_results(self, job_id: str, *, namespace: str = "") -> api.ListResultsResponse:
        """Where each completed execution published its results."""
        return cast(api.ListResultsResponse, await self.call(routes.job_results(job_id, namespace=namespace)))

    async def job_versions(self, job_id: str, *, namespace: str = "") -> api.ListJobsResponse:
        """Every version of a job's spec."""
        return cast(api.ListJobsResponse, await self.call(routes.job_versions(job_id, namespace=namespace)))

    async def job_logs(
        self, job_id: str, execution_id: str = "", follow: bool = False, tail: bool = False, *, namespace: str = ""
    ) -> AsyncIterator[ExecutionLog]:
        """Stream log lines over the websocket until the server closes it (or the job ends, with follow)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosedOK, InvalidHandshake, InvalidStatus, InvalidURI

        url = logs_url(
            self.base_url, job_id, execution_id=execution_id, follow=follow, tail=tail, namespace=namespace
        )
        try:
            ws = await connect(url, open_timeout=self.timeout_s, additional_headers=self._headers, max_size=None,
                         ssl=websocket_ssl(url, verify_tls=self.verify_tls, ca_file=self.ca_file))
        except InvalidStatus as exc:
            # The server answered the handshake with an error (401/403 from the API's gate...): its body says why.
            raise error_from_handshake(exc) from exc
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise error_from_transport(exc, self.base_url) from exc
        async with ws:
            try:
                async for frame in ws:
                    line = decode_frame(frame)
                    if line is not None:
                        yield line
            except ConnectionClosedOK:
                return

    # Results

    async def download_results(
        self,
        job_id: str,
        output_dir: str | Path,
        *,
        raw: bool = False,
        overwrite: bool = False,
        namespace: str = "",
        timeout_s: float = results.DEFAULT_DOWNLOAD_TIMEOUT_S,
        progress: results.Progress | None = None,
        status: download.Status | None = None,
        ipfs: download.IpfsAccess | None = None,
    ) -> Path:
        """Download every published result (local, S3 or IPFS) into `output_dir`; return the folder.

        Files already in `output_dir` are kept: a clash raises unless `overwrite`. `ipfs` says how to
        reach IPFS for IPFS results (default: an embedded node dialling the result's providers).
        """
        items = results.downloadable((await self.job_results(job_id, namespace=namespace)).items)
        if not items:
            raise results.no_results_error(job_id)
        options = download.DownloadOptions(
            raw=raw, overwrite=overwrite, timeout_s=timeout_s, progress=progress, status=status,
            ipfs=ipfs or download.IpfsAccess(),
        )
        return await download.download_items(items, Path(output_dir), options)

    # Nodes and agent

    async def list_nodes(
        self,
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        labels: Iterable[str] = (),
        filter_approval: str = "",
        filter_status: str = "",
    ) -> api.ListNodesResponse:
        """Known nodes with their approval and connection state."""
        call = routes.list_nodes(
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=reverse,
            labels=labels,
            filter_approval=filter_approval,
            filter_status=filter_status,
        )
        return cast(api.ListNodesResponse, await self.call(call))

    async def get_node(self, node_id: str) -> api.GetNodeResponse:
        """One node by ID (or unique prefix)."""
        return cast(api.GetNodeResponse, await self.call(routes.get_node(node_id)))

    async def update_node(self, node_id: str, action: str, message: str = "", deadline: str = "") -> api.PutNodeResponse:
        """Approve, reject, delete, drain or uncordon a node (`action`: approve|reject|delete|drain|uncordon);
        `deadline` (drain only): a duration such as `10m` after which its work is moved off it."""
        call = routes.update_node(node_id, action=action, message=message, deadline=deadline)
        return cast(api.PutNodeResponse, await self.call(call))

    async def alive(self) -> api.AliveResponse:
        """`{Status: OK}` when the node answers."""
        return cast(api.AliveResponse, await self.call(routes.alive()))

    async def version(self) -> BuildVersionInfo:
        """The server's build version."""
        return cast(BuildVersionInfo, await self.call(routes.version()))

    async def node_info(self) -> NodeInfo:
        """The answering node's NodeInfo."""
        return cast(NodeInfo, await self.call(routes.node_info()))

    async def agent_config(self) -> dict[str, Any]:
        """The node's effective (redacted) configuration."""
        return config_of(await self.call(routes.agent_config()))
