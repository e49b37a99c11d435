"""RetryingPublisher: passing publish failures are retried with backoff, lasting ones fail at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.compute.publishers.retrying import RetryingPublisher
from bacalhau.models.errors import PublishError
from bacalhau.models.job import SpecConfig


class _Flaky:
    """A publisher that fails `failures` times with `error`, then succeeds; records what it was given."""

    def __init__(self, failures: int, *, retryable: bool = True) -> None:
        self.failures = failures
        self.retryable = retryable
        self.calls: list[tuple[str, str, str]] = []

    def is_installed(self) -> bool:
        return True

    def validate(self, spec: SpecConfig) -> None:
        if spec.params.get("bad"):
            raise PublishError("bad params")

    async def publish(
        self, spec: SpecConfig, execution_id: str, job_id: str, results_dir: Path, *, node_id: str = ""
    ) -> SpecConfig:
        self.calls.append((execution_id, job_id, node_id))
        if len(self.calls) <= self.failures:
            raise PublishError(f"upload failed #{len(self.calls)}", retryable=self.retryable)
        return SpecConfig(Type="s3", Params={"Key": f"{job_id}/{execution_id}"})


class _Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_a_passing_failure_is_retried_with_growing_waits(tmp_path: Path) -> None:
    inner, sleeps = _Flaky(failures=2), _Sleeps()
    publisher = RetryingPublisher(inner, attempts=4, backoff_s=0.5, sleep=sleeps)

    result = await publisher.publish(SpecConfig(Type="s3"), "e-1", "j-1", tmp_path, node_id="n-1")

    assert result.params == {"Key": "j-1/e-1"}
    assert inner.calls == [("e-1", "j-1", "n-1")] * 3
    assert sleeps.waits == [0.5, 1.0]


async def test_a_lasting_failure_is_reported_with_the_attempt_count(tmp_path: Path) -> None:
    inner, sleeps = _Flaky(failures=10), _Sleeps()
    publisher = RetryingPublisher(inner, attempts=3, backoff_s=1.0, sleep=sleeps)

    with pytest.raises(PublishError, match=r"upload failed #3 \(gave up after 3 attempts\)") as err:
        await publisher.publish(SpecConfig(Type="s3"), "e-1", "j-1", tmp_path)

    assert len(inner.calls) == 3 and sleeps.waits == [1.0, 2.0]
    assert "kept on the compute node" in err.value.hint


async def test_a_failure_that_cannot_pass_is_not_retried(tmp_path: Path) -> None:
    inner, sleeps = _Flaky(failures=1, retryable=False), _Sleeps()
    publisher = RetryingPublisher(inner, sleep=sleeps)

    with pytest.raises(PublishError, match=r"^upload failed #1$"):
        await publisher.publish(SpecConfig(Type="s3"), "e-1", "j-1", tmp_path)

    assert len(inner.calls) == 1 and sleeps.waits == []


def test_validate_and_is_installed_are_the_inner_publishers() -> None:
    publisher = RetryingPublisher(_Flaky(0))
    assert publisher.is_installed()
    with pytest.raises(PublishError, match="bad params"):
        publisher.validate(SpecConfig(Type="s3", Params={"bad": True}))
