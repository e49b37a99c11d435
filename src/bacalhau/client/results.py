"""Pieces of downloading a job's published results over HTTP (download.py puts them together).

`GET /jobs/:id/results` lists one SpecConfig per completed execution; for the local publisher and
presigned S3 results its Params carry a URL (`URL`, or `PreSignedURL`) serving a .tar.gz of the results.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bacalhau.client.errors import error_from_transport
from bacalhau.models.errors import BacalhauError, ErrorCode, NotFoundError
from bacalhau.models.job import SpecConfig

# progress(bytes_done, bytes_total_or_None) after every chunk.
Progress = Callable[[int, int | None], None]
DEFAULT_DOWNLOAD_TIMEOUT_S = 300.0
_CHUNK_BYTES = 64 * 1024


def downloadable(items: list[SpecConfig]) -> list[SpecConfig]:
    """Results that hold something: the noop publisher (or none) publishes nothing to fetch."""
    return [item for item in items if item.type and item.type.lower() != "noop"]


def result_url(result: SpecConfig) -> str:
    """The http(s) URL a result is served from (local publisher, presigned S3), or '' when it has none."""
    for key in ("URL", "PreSignedURL"):
        value = result.param(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return ""


def no_url_error(result: SpecConfig) -> BacalhauError:
    """A result this client has no way to fetch."""
    return BacalhauError(
        f"the {result.type or 'unknown'} result has no download location (no URL, CID or S3 bucket)",
        code=ErrorCode.NotImplemented,
        component="Downloader",
        hint="results published with the local, s3 or ipfs publishers can be downloaded",
    )


def redact_query(url: str) -> str:
    """The URL without its query string: presigned URLs carry credentials there."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def result_name(url: str, index: int) -> str:
    """A folder name for one result under raw/: the archive's file name without its extension."""
    name = Path(urlsplit(url).path).name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name if name and name not in (".", "..") else f"result-{index}"


def temp_archive(output_dir: Path) -> Path:
    """A fresh file next to the output folder to download into (same filesystem, no leftovers)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".bacalhau-download-", suffix=".tar.gz", dir=output_dir)
    os.close(fd)
    return Path(name)


async def afetch(
    http: httpx.AsyncClient, url: str, dest: Path, *, timeout_s: float, progress: Progress | None
) -> None:
    """Stream `url` into `dest`; raise a BacalhauError naming the URL on any failure."""
    try:
        async with http.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code >= 300:
                await response.aread()
                raise download_error(url, response)
            total = _content_length(response)
            done = 0
            with dest.open("wb") as fh:
                async for chunk in response.aiter_bytes(_CHUNK_BYTES):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except httpx.TransportError as exc:
        raise unreachable_error(url, exc) from exc


def no_results_error(job_id: str) -> BacalhauError:
    """The job has published nothing (no publisher, or no completed execution yet)."""
    return NotFoundError(
        f"no published results found for job {job_id}",
        component="Downloader",
        hint="results are published only when the job sets a publisher (e.g. -p local) and an execution completed",
    )


def download_error(url: str, response: httpx.Response) -> BacalhauError:
    """A failed (non-2xx) result download."""
    return BacalhauError(
        f"failed to download results from {url}: HTTP {response.status_code} {response.text[:200].strip()}",
        code=ErrorCode.NotFound if response.status_code == 404 else ErrorCode.IOError,
        component="Downloader",
        hint="the compute node that published the results may have been restarted or cleaned them up",
    )


def unreachable_error(url: str, exc: Exception) -> BacalhauError:
    """The publisher's address could not be reached."""
    err = error_from_transport(exc, url)
    err.component = "Downloader"
    err.hint = (
        "the compute node serving local results must be reachable from here "
        "(its Publishers.Types.Local.Address/Port)"
    )
    return err


def _content_length(response: httpx.Response) -> int | None:
    raw = response.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None
