"""What a docker task asks for: its engine params (CONTRACT 1.5) and the image reference they name.

Pure decoding, no engine calls: `DockerParams.parse` is used both when bidding (`validate`) and when
running, so a job is refused for the same reasons in both places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bacalhau.models.errors import FieldError, ValidationFailed
from bacalhau.models.job import SpecConfig

_PARAMS = "Engine.Params"
# Docker Hub, where a reference without a registry host is pulled from.
DEFAULT_REGISTRY = "docker.io"
# Names the compute node sets itself (CONTRACT 2.4); a task may not shadow them.
_RESERVED_ENV_PREFIX = "BACALHAU_"
_ENV_NAME = re.compile(r"^[^=\s]+$")


@dataclass(frozen=True)
class ImageRef:
    """An image reference split the way the engine splits it: `[registry/]path[:tag][@digest]`."""

    reference: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        """Split a reference; the engine remains the judge of whether it is well formed."""
        ref = reference.strip()
        repository, digest = ref, ""
        if "@" in ref:
            repository, _, digest = ref.rpartition("@")
        tag = ""
        head, sep, tail = repository.rpartition(":")
        # A colon inside the registry part (`127.0.0.1:5000/x`) is a port, not a tag.
        if sep and "/" not in tail:
            repository, tag = head, tail
        return cls(reference=ref, repository=repository, tag=tag, digest=digest)

    @property
    def registry(self) -> str:
        """The registry host the image comes from (Docker Hub when the reference names none)."""
        first, sep, _ = self.repository.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return first
        return DEFAULT_REGISTRY

    @property
    def pull_tag(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag, else `latest`."""
        return self.digest or self.tag or "latest"

    def spellings(self) -> list[str]:
        """The forms an allow-list pattern is matched against: as written, bare repository, and with
        the implicit `:latest`, so `bacalhau-test/busybox` and `bacalhau-test/busybox:latest` agree."""
        forms = [self.reference, self.repository]
        if not self.digest:
            forms.append(f"{self.repository}:{self.tag or 'latest'}")
        return forms


@dataclass(frozen=True)
class DockerParams:
    """The docker engine params, decoded case-insensitively as Bacalhau does."""

    image: ImageRef
    entrypoint: list[str]
    parameters: list[str]
    environment: list[str]
    working_directory: str

    @classmethod
    def parse(cls, engine: SpecConfig) -> DockerParams:
        """Decode and check the params; raise ValidationFailed listing every problem at once."""
        errors: list[FieldError] = []
        image = engine.param("Image")
        if not isinstance(image, str) or not image.strip():
            errors.append(FieldError(f"{_PARAMS}.Image", "'Image' cannot be empty"))
        elif not image.strip().isprintable() or "://" in image:  # no spaces, no control characters
            errors.append(FieldError(f"{_PARAMS}.Image", f"{image!r} is not an image reference like busybox:1.36"))
        entrypoint = _string_list(engine.param("Entrypoint"), "Entrypoint", errors)
        parameters = _string_list(engine.param("Parameters"), "Parameters", errors)
        environment = _string_list(engine.param("EnvironmentVariables"), "EnvironmentVariables", errors)
        for item in environment:
            name, sep, _ = item.partition("=")
            if not sep or not _ENV_NAME.match(name):
                errors.append(FieldError(f"{_PARAMS}.EnvironmentVariables", f"{item!r} is not NAME=VALUE"))
            elif name.upper().startswith(_RESERVED_ENV_PREFIX):
                problem = f"{name} is reserved: names starting with {_RESERVED_ENV_PREFIX} are set by the system"
                errors.append(FieldError(f"{_PARAMS}.EnvironmentVariables", problem))
        workdir = engine.param("WorkingDirectory")
        if workdir is not None and not isinstance(workdir, str):
            errors.append(FieldError(f"{_PARAMS}.WorkingDirectory", "must be a path (string)"))
        elif workdir and not workdir.startswith("/"):
            errors.append(FieldError(f"{_PARAMS}.WorkingDirectory", f"{workdir!r} must be an absolute path"))
        if errors:
            raise ValidationFailed(errors, hint="see the docker engine params in the job spec")
        assert isinstance(image, str)
        return cls(
            image=ImageRef.parse(image),
            entrypoint=entrypoint,
            parameters=parameters,
            environment=environment,
            working_directory=workdir or "",
        )


def _string_list(value: Any, name: str, errors: list[FieldError]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.append(FieldError(f"{_PARAMS}.{name}", "must be a list of strings"))
        return []
    return list(value)
