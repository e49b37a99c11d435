"""bacalhau_sdk with relative input targets, the way Bacalhau's own jobs are written: `EntryModule: main.wasm`
and the module's input at `Target: main.wasm`, plus a data file at `Target: data/words.txt`; then a job
whose target climbs out of the task (`../x`), which the orchestrator must refuse.

Usage: sdk_relative_targets.py <cat.wasm> <words>
"""

import base64
import sys

from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
from bacalhau_apiclient.models.api_put_job_request import ApiPutJobRequest
from bacalhau_apiclient.models.input_source import InputSource
from bacalhau_apiclient.models.job import Job
from bacalhau_apiclient.models.spec_config import SpecConfig
from bacalhau_apiclient.models.task import Task
from bacalhau_apiclient.models.timeout_config import TimeoutConfig
from bacalhau_apiclient.rest import ApiException
from bacalhau_sdk.jobs import Jobs
from client_common import fact, fail, put, state_of, wait_state


def inline(data, mime):
    return SpecConfig(type="inline", params={"URL": f"data:{mime};base64," + base64.b64encode(data).decode()})


def job_with_data_at(module, words, data_target):
    task = Task(
        name="main",
        engine=SpecConfig(type="wasm", params={"EntryModule": "main.wasm", "Parameters": ["data/words.txt"]}),
        input_sources=[
            InputSource(target="main.wasm", source=inline(module, "application/wasm")),
            InputSource(target=data_target, source=inline(words.encode(), "text/plain")),
        ],
        publisher=SpecConfig(type="local", params={}),
        timeouts=TimeoutConfig(execution_timeout=120),
    )
    return Job(type="batch", count=1, labels={"client": "bacalhau-sdk"}, tasks=[task])


def main():
    module_path, words = sys.argv[1:3]
    with open(module_path, "rb") as f:
        module = f.read()
    jobs = Jobs()

    job_id = put(jobs, job_with_data_at(module, words, "data/words.txt"))
    got = wait_state(jobs, job_id)
    fact("state", state_of(got))
    fact("state_message", got.job.state.message or "")
    task = got.job.tasks[0]
    fact("entry_module", task.engine.params.get("EntryModule"))
    fact("targets", [source.target for source in task.input_sources])
    executions = jobs.executions(job_id)
    if executions is None or not executions.items:
        fail("Jobs().executions returned no execution")
    fact("exit_code", executions.items[0].run_output.exit_code)
    fact("stdout", executions.items[0].run_output.stdout)

    # Jobs().put swallows errors (prints them, returns None); the generated API shows the answer.
    orchestrator = OrchestratorApi(jobs.orchestrator_service.api_client)
    try:
        orchestrator.orchestratorput_job(ApiPutJobRequest(job=job_with_data_at(module, words, "../x")))
        fact("escape_outcome", "accepted")
    except ApiException as exc:
        fact("escape_outcome", "ApiException")
        fact("escape_status", exc.status)
        fact("escape_body", exc.body.decode() if isinstance(exc.body, bytes) else exc.body)


main()
