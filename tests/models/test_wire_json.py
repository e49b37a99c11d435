"""WireModel.to_wire_json: the stored form of a model is its wire form, whatever text it holds."""

from __future__ import annotations

import json

from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job
from factories import make_job


def test_a_job_as_json_is_its_wire_form_with_the_count_in_effect() -> None:
    job = make_job(name="héllo wörld", labels={"zone": "eu-ß"})
    job.count = None  # unset: the wire form says the count in effect, never null

    text = job.to_wire_json()

    assert json.loads(text) == job.to_wire()
    assert json.loads(text)["Count"] == 1
    assert "héllo wörld" in text, "written as UTF-8, not escaped"
    assert Job.model_validate_json(text) == job.model_copy(update={"count": 1})


def test_text_utf8_cannot_encode_is_written_escaped_as_before() -> None:
    # The API turns half a surrogate pair into U+FFFD (as Go does); one that reaches a model another
    # way is still written, \u-escaped, as json.dumps wrote every model before.
    event = JobHistory.model_validate({"JobID": "j-1", "Event": {"Message": "bad \ud800 byte"}})

    text = event.to_wire_json()

    assert text.isascii() and "\\ud800" in text
    assert json.loads(text) == event.to_wire()
