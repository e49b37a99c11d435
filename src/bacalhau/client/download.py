"""`job get`: fetch every published result, whichever publisher stored it, and merge them (archive.py).

    result item (GET /jobs/:id/results)
      ├─ has URL / PreSignedURL (local publisher, presigned S3) ── HTTP GET ──> .tar.gz ─┐
      ├─ has CID (ipfs publisher) ── IPFS get by CID (Kubo RPC, or an embedded node) ─> folder ─┤─> ResultMerger
      └─ S3 Bucket/Key, no URL (presigning off) ── S3 GET with the user's credentials ─> .tar.gz / folder ─┘

Everything lands in hidden staging files inside the output folder first, so a failed download leaves
the folder as it was (apart from results already merged). The IPFS and S3 libraries are imported only
when a result needs them: most `job get` calls never pay for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bacalhau.client import results
from bacalhau.client.archive import ResultMerger
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.job import SpecConfig

if TYPE_CHECKING:
    from bacalhau.ipfs.base import IpfsClient

# status(message): one line about what is being fetched, for results without byte counts (IPFS).
Status = Callable[[str], None]


@dataclass(frozen=True)
class IpfsAccess:
    """How this client reaches IPFS: a Kubo RPC endpoint, else an embedded node dialling `peers`."""

    endpoint: str = ""
    peers: list[str] = field(default_factory=list)


@dataclass
class DownloadOptions:
    raw: bool = False
    overwrite: bool = False
    timeout_s: float = results.DEFAULT_DOWNLOAD_TIMEOUT_S
    progress: results.Progress | None = None
    status: Status | None = None
    ipfs: IpfsAccess = field(default_factory=IpfsAccess)


async def download_items(items: list[SpecConfig], output_dir: Path, options: DownloadOptions) -> Path:
    """Fetch and merge each result into `output_dir`; return the folder. Raises BacalhauError."""
    merger = ResultMerger(output_dir, raw=options.raw, overwrite=options.overwrite)
    existed = await asyncio.to_thread(output_dir.exists)
    await asyncio.to_thread(output_dir.mkdir, parents=True, exist_ok=True)
    try:
        async with httpx.AsyncClient(trust_env=True) as http, _LazyIpfs(options.ipfs) as ipfs:
            for index, item in enumerate(items):
                await _download_one(item, index, len(items), merger, http, ipfs, options)
    except BaseException:
        if not existed:  # a download that got nothing leaves no empty folder behind
            await asyncio.to_thread(_remove_if_empty, output_dir)
        raise
    return output_dir


async def _download_one(
    item: SpecConfig,
    index: int,
    count: int,
    merger: ResultMerger,
    http: httpx.AsyncClient,
    ipfs: _LazyIpfs,
    options: DownloadOptions,
) -> None:
    out = merger.output_dir
    url = results.result_url(item)
    cid = item.param("CID")
    if url:
        _say(options, f"Downloading result {index + 1}/{count} from {results.redact_query(url)}")
        archive = results.temp_archive(out)
        try:
            await results.afetch(http, url, archive, timeout_s=options.timeout_s, progress=options.progress)
            await asyncio.to_thread(merger.add, archive, results.result_name(url, index))
        finally:
            archive.unlink(missing_ok=True)
    elif isinstance(cid, str) and cid:
        _say(options, f"Downloading result {index + 1}/{count} from ipfs://{cid}")
        client = await ipfs.client(providers=_providers(item))
        with tempfile.TemporaryDirectory(prefix=".bacalhau-ipfs-", dir=out) as staging:
            folder = await client.get(cid, Path(staging) / "result", timeout_s=options.timeout_s)
            await asyncio.to_thread(merger.add_tree, folder, cid)
    elif item.param("Bucket"):
        _say(options, f"Downloading result {index + 1}/{count} from s3://{item.param('Bucket')}/{item.param('Key')}")
        await _download_s3(item, index, merger, options)
    else:
        raise results.no_url_error(item)


async def _download_s3(item: SpecConfig, index: int, merger: ResultMerger, options: DownloadOptions) -> None:
    """An S3 result the orchestrator did not presign: fetched with this user's own AWS credentials.

    A gzip result is one `.tar.gz` object; a plain one is every object under the `Key/` prefix.
    """
    # botocore is heavy: loaded only when a result needs it.
    from bacalhau.s3.client import endpoint_label, open_client, resolve_region
    from bacalhau.s3.errors import translated
    from bacalhau.s3.location import S3Location
    from bacalhau.s3.transfer import ByteBudget, download_object, download_prefix

    key = str(item.param("Key") or "")
    location = S3Location(
        bucket=str(item.param("Bucket")),
        key=key,
        endpoint=str(item.param("Endpoint") or ""),
        region=resolve_region(str(item.param("Region") or "")),
    )
    subject = f"result {index + 1}"
    budget = ByteBudget(1 << 62, subject=subject, uri=location.uri)  # the user asked for it: no cap
    out = merger.output_dir
    with tempfile.TemporaryDirectory(prefix=".bacalhau-s3-", dir=out) as staging:
        target = Path(staging) / "result"
        with translated(
            BacalhauError, subject=subject, location=location,
            endpoint_url=endpoint_label(location.endpoint, location.region),
        ):
            async with asyncio.timeout(options.timeout_s), open_client(location.endpoint, location.region) as s3:
                if location.is_prefix:
                    await download_prefix(s3, location, target, subject=subject, budget=budget)
                else:
                    await download_object(s3, location, target, subject=subject, budget=budget)
        name = f"result-{index}"
        if target.is_dir():
            await asyncio.to_thread(merger.add_tree, target, name)
        else:
            await asyncio.to_thread(merger.add, target, name)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (some results were merged), or already gone
        folder.rmdir()


def _providers(item: SpecConfig) -> list[str]:
    value = item.param("Providers")
    return [str(v) for v in value] if isinstance(value, list) else []


def _say(options: DownloadOptions, message: str) -> None:
    if options.status is not None:
        options.status(message)


class _LazyIpfs:
    """One IPFS client for the whole download, started only when the first IPFS result comes up."""

    def __init__(self, access: IpfsAccess) -> None:
        self._access = access
        self._client: IpfsClient | None = None
        self._repo: tempfile.TemporaryDirectory[str] | None = None

    async def __aenter__(self) -> _LazyIpfs:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.stop()
        if self._repo is not None:
            await asyncio.to_thread(shutil.rmtree, self._repo.name, True)

    async def client(self, *, providers: list[str]) -> IpfsClient:
        """The started client; an embedded node also dials the result's providers and the configured peers."""
        from bacalhau.ipfs.factory import ipfs_client  # loads Kubo: only for IPFS results

        if self._client is None:
            # The embedded node's repo is throwaway: this client keeps nothing once the download is done.
            self._repo = tempfile.TemporaryDirectory(prefix="bacalhau-get-ipfs-")
            client = ipfs_client(self._access.endpoint, repo_dir=Path(self._repo.name), peers=list(self._access.peers))
            try:
                await client.start()
            except BacalhauError:
                raise
            except Exception as exc:
                raise BacalhauError(
                    f"could not start an IPFS node to download results: {exc}",
                    code=ErrorCode.IOError,
                    component="Downloader",
                    hint="set ResultDownloaders.Types.IPFS.Endpoint (or BACALHAU_IPFS_CONNECT) to a Kubo RPC address",
                ) from exc
            self._client = client
        if not self._access.endpoint:
            for peer in providers:
                # A provider we cannot dial may still not be needed (the data can come from another peer).
                with contextlib.suppress(BacalhauError):
                    await self._client.connect(peer)
        return self._client
