"""Finding a task's image on the engine: local first, else pulled, then pinned to a digest.

    ImageRef ── images.get ── found ───────────────────────────┐
                    │ ImageNotFound                            │
                    v                                          v
               api.pull(stream) ── {"error": ...} / APIError ──> ExecutionError "image <ref> could
                    │                                           not be pulled from <registry>: <why>"
                    v
               images.get ──> ResolvedImage(id, digest)

What a registry answers is quoted in the error, but only as one line of at most `MAX_REASON_CHARS`
with control characters removed: the "registry" may be any HTTP server the reference points at (see
docker_policy), and its body (an internal page, escape sequences) must not flow whole into the job's
state, the CLI and the logs.

The container is created from the image ID, not the tag, so a tag that moves between the look-up and
the start cannot change what runs; the digest is recorded on the execution so a rerun is reproducible.
Blocking calls: run these in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from bacalhau.compute.executors.docker_params import DEFAULT_REGISTRY, ImageRef
from bacalhau.compute.executors.docker_stop import engine_reason
from bacalhau.models.errors import ErrorCode, ExecutionError
from bacalhau.models.printable import one_line

_PULL_HINT = (
    "check the image name and tag, that the registry is reachable from the compute node and, for a "
    "private registry, that the node is logged in to it; or load the image on the node (docker load)"
)
# Registry answers that name the image itself as the problem (access denied is how Docker Hub answers
# for a repository that does not exist).
_REFUSALS = ("denied", "unauthorized", "invalid reference", "forbidden")
# Enough for any real registry error ("manifest unknown", "unauthorized: ..."), not for a page.
MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class ResolvedImage:
    """The local image a container will be created from."""

    image_id: str
    # `sha256:...`: the registry's manifest digest, or the image ID for an image never pushed/pulled.
    digest: str

    def details(self, image: ImageRef) -> dict[str, str]:
        """What to record on the execution."""
        return {"Image": image.reference, "ImageDigest": self.digest}


def resolve_image(client: docker.DockerClient, image: ImageRef) -> ResolvedImage:
    """Use the local image when present, else pull it; raise ExecutionError naming image and registry."""
    try:
        found = _local(client, image)
        if found is None:
            _pull(client, image)
            found = _local(client, image)
        if found is None:  # the pull "succeeded" yet left nothing under that name
            raise ExecutionError(
                f"image {image.reference} could not be pulled from {image.registry}: "
                "the engine reported success but has no such image",
                hint=_PULL_HINT,
            )
    except ExecutionError:
        raise
    except docker.errors.APIError as exc:
        raise pull_error(image, engine_reason(exc)) from exc
    except (docker.errors.DockerException, OSError) as exc:
        raise ExecutionError(
            f"image {one_line(image.reference)}: the Docker engine could not be reached: "
            f"{one_line(str(exc), max_chars=MAX_REASON_CHARS)}",
            code=ErrorCode.ServiceUnavailable,
            hint="check that dockerd is running on the compute node",
            retryable=True,
        ) from exc
    return found


def pull_error(image: ImageRef, why: str) -> ExecutionError:
    """The error a user reads when an image cannot be had; `why` (the engine's or registry's words) is
    cut to one clean line of at most MAX_REASON_CHARS."""
    registry = "Docker Hub (docker.io)" if image.registry == DEFAULT_REGISTRY else image.registry
    why = one_line(why, max_chars=MAX_REASON_CHARS)
    lowered = why.lower()
    # The registry answered that the image is not there (or not for us): the job's fault, not retried.
    # Anything else (refused connection, timeout, 5xx) may be this node's network: another node may pull it.
    missing = "not found" in lowered or "unknown" in lowered
    refused = any(word in lowered for word in _REFUSALS)
    return ExecutionError(
        f"image {image.reference} could not be pulled from {registry}: {why}",
        code=ErrorCode.NotFound if missing else ErrorCode.ExecutionError,
        hint=_PULL_HINT,
        retryable=not (missing or refused),
    )


def _local(client: docker.DockerClient, image: ImageRef) -> ResolvedImage | None:
    try:
        attrs: dict[str, Any] = client.api.inspect_image(image.reference)
    except docker.errors.ImageNotFound:
        return None
    return ResolvedImage(image_id=str(attrs["Id"]), digest=_digest(attrs, image))


def _pull(client: docker.DockerClient, image: ImageRef) -> None:
    # The low-level stream, not images.pull(): that one discards the progress lines, and with them the
    # registry's error when a pull fails half way (only a later "No such image" would remain).
    for line in client.api.pull(image.repository, tag=image.pull_tag, stream=True, decode=True):
        if isinstance(line, dict) and line.get("error"):
            detail = line.get("errorDetail")
            message = detail.get("message") if isinstance(detail, dict) else None
            raise pull_error(image, str(message or line["error"]))


def _digest(attrs: dict[str, Any], image: ImageRef) -> str:
    repo_digests = [str(d) for d in attrs.get("RepoDigests") or []]
    # An image can be known under several repositories: prefer the one the job named.
    for entry in repo_digests:
        name, _, digest = entry.rpartition("@")
        if name == image.repository:
            return digest
    if repo_digests:
        return repo_digests[0].rpartition("@")[2]
    return str(attrs["Id"])


def image_details(client: docker.DockerClient, image: ImageRef, image_id: str) -> dict[str, str]:
    """The details `resolve_image` records, for a container created earlier from `image_id` (re-attach):
    the digest of the image it runs, not of what the tag names now. Only the reference if it is gone."""
    try:
        attrs: dict[str, Any] = client.api.inspect_image(image_id)
    except docker.errors.ImageNotFound:
        return {"Image": image.reference}
    return ResolvedImage(image_id=str(attrs["Id"]), digest=_digest(attrs, image)).details(image)
