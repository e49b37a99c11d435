"""The synchronous client for Bacalhau's /api/v1, returning our models.

    from bacalhau.client import Client
    with Client() as client:                    # BACALHAU_API_HOST / BACALHAU_API_PORT, else 127.0.0.1:1234
        resp = client.put_job(job)
        print(client.get_job(resp.job_id).job.state.state_type)

Requests to an http:// URL go over a plain socket (plain_http.py), anything else through httpx
(httpx_sender.py); see client/base.py. Models, httpx and the result downloaders are imported when a
method needs them, so that `raw` (the decoded JSON, no models) costs a CLI command no more than it must.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from bacalhau.client import routes
from bacalhau.client.address import resolve_base_url
from bacalhau.client.credentials import with_credentials
from bacalhau.client.errors import error_from_handshake, error_from_reply, error_from_transport
from bacalhau.client.headers import default_headers

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from bacalhau.client import download, results
    from bacalhau.client.base import Sender
    from bacalhau.models import api
    from bacalhau.models.execution import ExecutionLog
    from bacalhau.models.job import Job
    from bacalhau.models.node import BuildVersionInfo, NodeInfo


class Client:
    """A Bacalhau API client. Every method raises BacalhauError (models/errors.py) on failure."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float | None = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
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
        self._sender = self._make_sender(transport)

    def _make_sender(self, transport: httpx.BaseTransport | None) -> Sender:
        # A CA file goes to httpx even for http://: it is checked (and refused if missing) when the
        # client is built, as it always was.
        if transport is None and not self.ca_file and self.base_url.startswith("http://"):
            from bacalhau.client.plain_http import PlainHttpSender

            return PlainHttpSender(self.base_url, timeout_s=self.timeout_s, headers=self._headers)
        from bacalhau.client.httpx_sender import HttpxSender

        return HttpxSender(
            self.base_url, timeout_s=self.timeout_s, headers=self._headers, transport=transport,
            verify_tls=self.verify_tls, ca_file=self.ca_file,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections."""
        self._sender.close()

    def raw(self, call: routes.Call) -> Any:
        """Send one request and return its decoded JSON (None for an empty body), without the models."""
        status, content = self._sender.send(call.method, call.path, call.params, call.body)
        if status >= 300:
            raise error_from_reply(status, content)
        return json.loads(content) if content else None

    def call(self, call: routes.Call) -> Any:
        """Send one request and decode its body into the route's model; the building block of every method below."""
        return routes.decode(call, self.raw(call))

    # Jobs

    def put_job(self, job: Job | Mapping[str, Any], force: bool = False, *, namespace: str = "") -> api.PutJobResponse:
        """Submit a job (or update the job with the same Name and Namespace)."""
        return cast("api.PutJobResponse", self.call(routes.put_job(job, force=force, namespace=namespace)))

    def diff_job(self, job: Job | Mapping[str, Any]) -> api.DiffJobResponse:
        """The diff from the stored job of the same Name to `job` ("" when unchanged); stores nothing.

        Raises NotFoundError when no job has that Name, a BacalhauError coded ValidationError when `job` has no Name.
        """
        return cast("api.DiffJobResponse", self.call(routes.diff_job(job)))

    def get_job(
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
        return cast("api.GetJobResponse", self.call(call))

    def list_jobs(
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
        return cast("api.ListJobsResponse", self.call(call))

    def node_executions(self, node_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A node's newest executions, without their job specs (ours: bacalhau-py only)."""
        found = self.call(routes.node_executions(node_id, limit=limit))
        return list(found.get("Items") or []) if isinstance(found, dict) else []

    def jobs_progress(self, job_ids: list[str]) -> dict[str, dict[str, int]]:
        """Each job's current executions counted by state name (ours: bacalhau-py only)."""
        found = self.call(routes.jobs_progress(job_ids))
        return dict(found.get("Items") or {}) if isinstance(found, dict) else {}

    def jobs_summary(self, minutes: int = 60) -> dict[str, Any]:
        """Jobs by state and completions per minute over the last `minutes` (ours: bacalhau-py only)."""
        return cast(dict[str, Any], self.call(routes.jobs_summary(minutes=minutes)))

    def stop_job(self, job_id: str, reason: str = "", *, namespace: str = "") -> api.StopJobResponse:
        """Stop a job; EvaluationID is empty when the job was already stopped."""
        return cast("api.StopJobResponse", self.call(routes.stop_job(job_id, reason=reason, namespace=namespace)))

    def rerun_job(self, job_id: str, version: int = 0, reason: str = "", *, namespace: str = "") -> api.RerunJobResponse:
        """Run a job (its latest version, or `version`) again as a new version."""
        call = routes.rerun_job(job_id, version=version, reason=reason, namespace=namespace)
        return cast("api.RerunJobResponse", self.call(call))

    def job_history(
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
        return cast("api.ListHistoryResponse", self.call(routes.job_history(job_id, filters)))

    def job_executions(
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
        return cast("api.ListExecutionsResponse", self.call(routes.job_executions(job_id, filters)))

    def job_results(self, job_id: str, *, namespace: str = "") -> api.ListResultsResponse:
        """Where each completed execution published its results."""
        return cast("api.ListResultsResponse", self.call(routes.job_results(job_id, namespace=namespace)))

    def job_versions(self, job_id: str, *, namespace: str = "") -> api.ListJobsResponse:
        """Every version of a job's spec."""
        return cast("api.ListJobsResponse", self.call(routes.job_versions(job_id, namespace=namespace)))

    def job_logs(
        self, job_id: str, execution_id: str = "", follow: bool = False, tail: bool = False, *, namespace: str = ""
    ) -> Iterator[ExecutionLog]:
        """Stream log lines over the websocket until the server closes it (or the job ends, with follow)."""
        from websockets.exceptions import ConnectionClosedOK, InvalidHandshake, InvalidStatus, InvalidURI
        from websockets.sync.client import connect

        from bacalhau.client.lazy_tls import websocket_ssl
        from bacalhau.client.logs import decode_frame, logs_url

        url = logs_url(
            self.base_url, job_id, execution_id=execution_id, follow=follow, tail=tail, namespace=namespace
        )
        try:
            ws = connect(url, open_timeout=self.timeout_s, additional_headers=self._headers, max_size=None,
                         ssl=websocket_ssl(url, verify_tls=self.verify_tls, ca_file=self.ca_file))
        except InvalidStatus as exc:
            # The server answered the handshake with an error (401/403 from the API's gate...): its body says why.
            raise error_from_handshake(exc) from exc
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise error_from_transport(exc, self.base_url) from exc
        with ws:
            try:
                for frame in ws:
                    line = decode_frame(frame)
                    if line is not None:
                        yield line
            except ConnectionClosedOK:
                return

    # Results

    def download_results(
        self,
        job_id: str,
        output_dir: str | Path,
        *,
        raw: bool = False,
        overwrite: bool = False,
        namespace: str = "",
        timeout_s: float | None = None,
        progress: results.Progress | None = None,
        status: download.Status | None = None,
        ipfs: download.IpfsAccess | None = None,
    ) -> Path:
        """Download every published result (local, S3 or IPFS) into `output_dir`; return the folder.

        Files already in `output_dir` are kept: a clash raises unless `overwrite`. `ipfs` says how to
        reach IPFS for IPFS results (default: an embedded node dialling the result's providers).
        `timeout_s`: None means results.DEFAULT_DOWNLOAD_TIMEOUT_S.
        """
        import asyncio
        from pathlib import Path

        from bacalhau.client import download, results

        items = results.downloadable(self.job_results(job_id, namespace=namespace).items)
        if not items:
            raise results.no_results_error(job_id)
        options = download.DownloadOptions(
            raw=raw,
            overwrite=overwrite,
            timeout_s=results.DEFAULT_DOWNLOAD_TIMEOUT_S if timeout_s is None else timeout_s,
            progress=progress,
            status=status,
            ipfs=ipfs or download.IpfsAccess(),
        )
        return asyncio.run(download.download_items(items, Path(output_dir), options))

    # Nodes and agent

    def list_nodes(
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
        return cast("api.ListNodesResponse", self.call(call))

    def get_node(self, node_id: str) -> api.GetNodeResponse:
        """One node by ID (or unique prefix)."""
        return cast("api.GetNodeResponse", self.call(routes.get_node(node_id)))

    def update_node(self, node_id: str, action: str, message: str = "", deadline: str = "") -> api.PutNodeResponse:
        """Approve, reject, delete, drain or uncordon a node (`action`: approve|reject|delete|drain|uncordon);
        `deadline` (drain only): a duration such as `10m` after which its work is moved off it."""
        call = routes.update_node(node_id, action=action, message=message, deadline=deadline)
        return cast("api.PutNodeResponse", self.call(call))

    def audit_log(self, *, limit: int = 100, next_token: str = "", since_s: int = 0, principal: str = "",
                  refused_only: bool = False) -> dict[str, Any]:
        """`{Items, NextToken}`: who did what through the API, newest first (needs read:audit)."""
        return cast(dict[str, Any], self.call(routes.audit_log(
            limit=limit, next_token=next_token, since_s=since_s, principal=principal, refused_only=refused_only)))

    def auth_config(self) -> dict[str, Any]:
        """`{Version, Config}`: how the node's SSO is set up (API.Auth.Oauth2; empty Config: none). Open."""
        return cast(dict[str, Any], self.call(routes.auth_config()))

    def alive(self) -> api.AliveResponse:
        """`{Status: OK}` when the node answers."""
        return cast("api.AliveResponse", self.call(routes.alive()))

    def version(self) -> BuildVersionInfo:
        """The server's build version."""
        return cast("BuildVersionInfo", self.call(routes.version()))

    def node_info(self) -> NodeInfo:
        """The answering node's NodeInfo."""
        return cast("NodeInfo", self.call(routes.node_info()))

    def agent_config(self) -> dict[str, Any]:
        """The node's effective (redacted) configuration."""
        return config_of(self.call(routes.agent_config()))


def config_of(payload: Any) -> dict[str, Any]:
    """The config inside an /agent/config answer."""
    # Bacalhau wraps it as {"config": {...}} (lower-case key); accept a bare config too.
    if isinstance(payload, dict):
        inner = payload.get("config", payload.get("Config", payload))
        if isinstance(inner, dict):
            return inner
    return {}
