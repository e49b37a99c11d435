"""The result cache (ours, opt-in per job): an identical job reuses a completed result instead of running.

A job asks for it with Meta `results.reuse: "true"`. It is identical to an earlier one when its
*fingerprint* is: a SHA-256 over its namespace and its task's engine, inputs, environment, publisher
and result paths, in canonical JSON (name, labels, Meta, resources, timeouts and constraints do not
change what a task computes, so they are left out). Only what cannot change under the same spec is
fingerprinted, so a job is eligible only when everything it reads is pinned to content:

    engine        docker: image pinned by digest (`image@sha256:...`; a tag can move)
                  wasm: its module comes from an input, which must be pinned like any input
    inputs        inline (the bytes are in the spec), ipfs (a CID is content), s3 with VersionID or
                  ChecksumSHA256, urlDownload with Checksum; never local folders or s3PreSigned
    network       none: a networked task can read anything, anywhere
    environment   no `env:` value (forwarded from the node, often a secret, not in the spec)
    type          batch, Count 1

An ineligible job runs as usual and its history says why it was not reused. When an eligible job
completes, its fingerprint points to the completed execution (the store's result_cache table); the
next eligible job with that fingerprint gets a Completed execution copied from it (its run output
and published result), on the same node, and no task runs: "Result reused from execution e-...".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bacalhau.models import constants as c
from bacalhau.models.job import InputSource, Job

_NO_NETWORK = ("", "default", "none")
# ComputeState.Details of a reused execution: the execution that ran (its logs are that one's).
DETAIL_REUSED_FROM = "ReusedFrom"


@dataclass(frozen=True)
class ReuseCheck:
    """A job's fingerprint when it may reuse (and be reused), else why not ('' / '' when not asked)."""

    fingerprint: str = ""
    refusal: str = ""


NOT_ASKED = ReuseCheck()


def wants_reuse(job: Job) -> bool:
    """Whether the job asks for a reused result (Meta results.reuse true, yes or 1)."""
    return job.meta.get(c.META_RESULTS_REUSE, "").strip().lower() in c.META_BOOLEAN_TRUE


def check(job: Job) -> ReuseCheck:
    """The job's fingerprint, or why it cannot be reused (the module docstring lists the rules)."""
    if not wants_reuse(job):
        return NOT_ASKED
    refusal = _refusal(job)
    if refusal:
        return ReuseCheck(refusal=f"result not reused: {refusal}")
    task = job.task
    canonical = {
        "Namespace": job.namespace,
        "Engine": task.engine.to_wire(),
        "InputSources": [s.to_wire() for s in task.input_sources],
        "Env": dict(sorted(task.env.items())),
        "Publisher": task.publisher.to_wire(),
        "ResultPaths": [p.to_wire() for p in task.result_paths],
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return ReuseCheck(fingerprint=digest)


def _refusal(job: Job) -> str:
    if job.type != c.JOB_TYPE_BATCH or job.effective_count != 1:
        return "only batch jobs with Count 1 are reused"
    task = job.task
    if task.network.type.strip().lower() not in _NO_NETWORK:
        return f"the task has network access ({task.network.type}), so its result may depend on more than its spec"
    secret = sorted(k for k, v in task.env.items() if str(v).startswith("env:"))
    if secret:
        return f"Env {', '.join(secret)} is forwarded from the node (env:), not part of the spec"
    if task.engine.is_type(c.ENGINE_DOCKER):
        image = str(task.engine.param("Image", "") or "")
        if "@sha256:" not in image:
            return f"the image {image!r} is a tag, which can move: pin it by digest (image@sha256:...)"
    for source in task.input_sources:
        why = _unpinned(source)
        if why:
            return f"input {source.alias or source.target or source.source.type!r} {why}"
    return ""


def _unpinned(source: InputSource) -> str:
    spec = source.source
    kind = spec.type.lower()
    if kind in (c.STORAGE_INLINE, c.STORAGE_IPFS):
        return ""
    if kind == c.STORAGE_S3:
        if spec.param("VersionID") or spec.param("ChecksumSHA256"):
            return ""
        return "(s3) names no VersionID or ChecksumSHA256, so the object may change"
    if kind == c.STORAGE_URL.lower():
        return "" if spec.param("Checksum") else "(urlDownload) has no Checksum, so the download may change"
    return f"({spec.type}) may change between runs"
