"""What this node lets a docker task do: which images from which registries, and how much network.

A job asking for more than the node allows is refused with the reason (so the node declines the bid),
never silently trimmed to fit: a job that needs the network and silently runs without it would fail in
ways its author cannot explain.

Images: `Engines.Types.Docker.AllowedRegistries` (ours) names the registry hosts the engine may be
asked to pull from, `AllowedImages` the image references themselves; both are checked when the node
bids and again before the image is looked up or pulled. The registry list matters beyond tidiness: an
image reference is a URL the Docker engine fetches, so `127.0.0.1:8080/x` makes it call any host:port
the node reaches (an internal service, a cloud metadata address) and the answer's text comes back in
the job's error (capped, one line: docker_images.pull_error).

Network types (CONTRACT 1.10) and what they get (egress/networking.py sets up the last two):

    Default, None      -> none                (always allowed: the locked-down default)
    Host               -> host                (needs JobAdmissionControl.AcceptNetworkedJobs)
    Full, Bridge       -> the node's bridge   (needs AcceptNetworkedJobs; the host itself unreachable)
    HTTP               -> the node's internal network, out only through the egress proxy, to the job's
                          Domains only (needs AcceptNetworkedJobs and at least one domain)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from bacalhau.compute.executors.docker_params import DEFAULT_REGISTRY, ImageRef
from bacalhau.models.errors import FieldError
from bacalhau.models.job import NetworkConfig

_NETWORK_MODES = {
    "": "none",
    "default": "none",
    "none": "none",
    "host": "host",
    # The engine's default bridge only as a name here: egress/networking.py attaches these to the node's
    # own guarded networks instead.
    "full": "bridge",
    "bridge": "bridge",
    "http": "bridge",
}


# Other names of Docker Hub that a reference may spell out.
_DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class DockerPolicy:
    """The node's limits for docker tasks (an empty allow-list allows everything)."""

    allowed_images: Sequence[str] = ()
    accept_networked_jobs: bool = False
    allowed_registries: Sequence[str] = ()
    # JobAdmissionControl.RejectNetworkedJobs: refused with Bacalhau's own words.
    reject_networked_jobs: bool = False

    def image_refusal(self, image: ImageRef) -> FieldError | None:
        """Why the image may not run here, or None: its registry first, then the image itself."""
        return self.registry_refusal(image) or self._image_pattern_refusal(image)

    def registry_refusal(self, image: ImageRef) -> FieldError | None:
        """Why the image's registry may not be used here, or None. Patterns are case-insensitive globs
        over the registry host[:port] (`docker.io`, `ghcr.io`, `*.example.com`, `localhost:5000`);
        Docker Hub is `docker.io`, also for references that name no registry (`busybox`)."""
        if not self.allowed_registries:
            return None
        registry = image.registry.lower()
        hosts = [DEFAULT_REGISTRY, registry] if registry in _DOCKER_HUB_ALIASES else [registry]
        for pattern in self.allowed_registries:
            if any(fnmatch.fnmatchcase(host, pattern.strip().lower()) for host in hosts):
                return None
        allowed = ", ".join(self.allowed_registries)
        return FieldError(
            "Engine.Params.Image",
            f"image {image.reference} comes from registry {image.registry}, which this node does not pull "
            f"from (Engines.Types.Docker.AllowedRegistries: {allowed})",
        )

    def _image_pattern_refusal(self, image: ImageRef) -> FieldError | None:
        # Patterns are globs (`bacalhau-test/*`, `127.0.0.1:*/*`).
        if not self.allowed_images:
            return None
        for pattern in self.allowed_images:
            if any(fnmatch.fnmatchcase(form, pattern.strip()) for form in image.spellings()):
                return None
        allowed = ", ".join(self.allowed_images)
        return FieldError(
            "Engine.Params.Image",
            f"image {image.reference} is not allowed on this node (Engines.Types.Docker.AllowedImages: {allowed})",
        )

    def network_refusal(self, network: NetworkConfig) -> FieldError | None:
        """Why the network the job asks for is not granted here, or None."""
        kind = network.type.strip().lower()
        if kind not in _NETWORK_MODES:
            return FieldError("Network.Type", f"unknown network type {network.type!r}")
        if _NETWORK_MODES[kind] != "none" and self.reject_networked_jobs:
            return FieldError(
                "Network.Type",
                f"this node does not run jobs that require network access (the job asks for network {network.type}; "
                "JobAdmissionControl.RejectNetworkedJobs=true)",
            )
        if _NETWORK_MODES[kind] != "none" and not self.accept_networked_jobs:
            return FieldError(
                "Network.Type",
                f"this node does not accept networked jobs (the job asks for network {network.type}); "
                "run it with network None, or on a node with JobAdmissionControl.AcceptNetworkedJobs=true",
            )
        if network.ports:
            # Declined rather than run without them: a service whose ports are silently not published
            # looks healthy and answers nobody.
            return FieldError(
                "Network.Ports",
                f"this node does not publish ports yet (the job asks for {len(network.ports)}); "
                "run it without Network.Ports",
            )
        return None

    @staticmethod
    def network_mode(network: NetworkConfig) -> str:
        """The Docker network mode for an admitted job's network type."""
        return _NETWORK_MODES.get(network.type.strip().lower(), "none")
