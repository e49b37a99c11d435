"""Helpers shared by the client scripts (run with .venv-clients/bin/python, never with the project's venv).

Only the official clients' own API is used: `bacalhau_sdk.jobs.Jobs` and the generated models of
`bacalhau_apiclient`. Facts are printed as `key=value` lines for the pytest side to assert on.
"""

import base64
import json
import sys
import time

from bacalhau_apiclient.models.api_put_job_request import ApiPutJobRequest
from bacalhau_apiclient.models.input_source import InputSource
from bacalhau_apiclient.models.job import Job
from bacalhau_apiclient.models.resources_config import ResourcesConfig
from bacalhau_apiclient.models.spec_config import SpecConfig
from bacalhau_apiclient.models.task import Task
from bacalhau_apiclient.models.timeout_config import TimeoutConfig

TERMINAL = ("Completed", "Failed", "Stopped")


def fact(key, value):
    """Print one fact on its own line (newlines escaped, so a value never spans lines)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    print(f"{key}={text.replace(chr(10), chr(92) + 'n')}", flush=True)


def fail(message):
    print(f"SCRIPT FAILURE: {message}", file=sys.stderr, flush=True)
    sys.exit(3)


def wasm_job(module_path, args=(), name=None):
    """A batch wasm job built from the client's own model classes, the module inline as a data: URL."""
    with open(module_path, "rb") as f:
        url = "data:application/wasm;base64," + base64.b64encode(f.read()).decode()
    task = Task(
        name="main",
        engine=SpecConfig(type="wasm", params={"EntryModule": "/app/main.wasm", "Entrypoint": "_start", "Parameters": list(args)}),
        input_sources=[InputSource(target="/app/main.wasm", source=SpecConfig(type="inline", params={"URL": url}))],
        publisher=SpecConfig(type="local", params={}),
        timeouts=TimeoutConfig(execution_timeout=120),
    )
    return Job(type="batch", count=1, name=name, labels={"client": "bacalhau-sdk"}, tasks=[task])


def docker_job(image, command):
    """A batch docker job built from the client's own model classes."""
    task = Task(
        name="main",
        engine=SpecConfig(type="docker", params={"Image": image, "Entrypoint": ["/bin/sh", "-c"], "Parameters": [command]}),
        publisher=SpecConfig(type="local", params={}),
        resources=ResourcesConfig(cpu="500m", memory="128Mb"),
        timeouts=TimeoutConfig(execution_timeout=120),
    )
    return Job(type="batch", count=1, labels={"client": "bacalhau-sdk"}, tasks=[task])


def put(jobs, job):
    """Submit with Jobs().put; print the response's facts; return the job ID."""
    response = jobs.put(ApiPutJobRequest(job=job))
    if response is None:
        fail("Jobs().put returned None (the SDK printed the ApiException above)")
    fact("put_type", type(response).__name__)
    fact("job_id", response.job_id)
    fact("evaluation_id", response.evaluation_id)
    return response.job_id


def state_of(response):
    state = response.job.state
    return state.get("StateType") if isinstance(state, dict) else getattr(state, "state_type", None)


def wait_state(jobs, job_id, wanted=TERMINAL, timeout_s=120.0):
    """Poll Jobs().get(job_id) until the job's state is in `wanted`; return the last GetJobResponse."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = jobs.get(job_id)
        if last is None:
            fail(f"Jobs().get({job_id!r}) returned None")
        if state_of(last) in wanted:
            return last
        time.sleep(0.2)
    fail(f"job {job_id} not in {wanted} after {timeout_s}s; last: {last}")
    return None
