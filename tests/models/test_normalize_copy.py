"""normalize_job copies the job it is given, unless the caller hands it over (copy=False)."""

from __future__ import annotations

from bacalhau.models.normalize import normalize_job
from factories import make_job


def test_the_given_job_is_left_as_it_was_by_default() -> None:
    job = make_job(name="  etl  ")
    job.meta["bacalhau.org/requester"] = "spoofed"
    before = job.model_copy(deep=True)

    normalized = normalize_job(job)

    assert job == before, "the caller's job must not change"
    assert normalized.job.name == "etl" and "bacalhau.org/requester" not in normalized.job.meta
    assert normalized.job.tasks[0] is not job.tasks[0]


def test_a_job_handed_over_is_normalised_in_place_with_the_same_result() -> None:
    given, kept = make_job(name="  etl  "), make_job(name="  etl  ")
    kept.id = given.id = "j-ignored"

    in_place = normalize_job(given, copy=False)
    copied = normalize_job(kept)

    assert in_place.job is given
    assert in_place.job == copied.job and in_place.warnings == copied.warnings
