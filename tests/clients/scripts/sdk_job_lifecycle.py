"""bacalhau_sdk end to end: submit a job built from the client's models, wait for it, read everything back.

Usage: sdk_job_lifecycle.py wasm <module.wasm> <arg>
       sdk_job_lifecycle.py docker <image> <shell command>
"""

import sys

from bacalhau_sdk.jobs import Jobs
from client_common import docker_job, fact, fail, put, state_of, wait_state, wasm_job


def main():
    kind, what, arg = sys.argv[1:4]
    job = wasm_job(what, args=[arg]) if kind == "wasm" else docker_job(what, arg)
    jobs = Jobs()
    fact("host", jobs.orchestrator_service.api_client.configuration.host)
    job_id = put(jobs, job)

    got = wait_state(jobs, job_id)
    fact("get_type", type(got).__name__)
    fact("state", state_of(got))
    fact("state_message", got.job.state.message or "")
    fact("job_type", got.job.type)
    fact("job_namespace", got.job.namespace)
    fact("engine", got.job.tasks[0].engine.type)
    fact("create_time_is_int", isinstance(got.job.create_time, int))
    fact("labels", got.job.labels)

    detailed = jobs.get(job_id, include="executions,history", limit=10)
    if detailed is None:
        fail("Jobs().get(include='executions,history') returned None")
    fact("get_include_executions", len(detailed.executions.items) if detailed.executions else None)
    fact("get_include_history", len(detailed.history.items) if detailed.history else None)

    listed = jobs.list(limit=100)
    fact("list_type", type(listed).__name__)
    fact("list_has_job", any(j.id == job_id for j in listed.items or []))
    fact("list_next_token", listed.next_token or "")

    executions = jobs.executions(job_id)
    if executions is None:
        fail("Jobs().executions returned None")
    fact("executions_type", type(executions).__name__)
    fact("executions", len(executions.items))
    execution = executions.items[0]
    fact("execution_id", execution.id)
    fact("execution_node", execution.node_id)
    fact("execution_compute_state", execution.compute_state.state_type)
    fact("execution_desired_state", execution.desired_state.state_type)
    fact("exit_code", execution.run_output.exit_code)
    fact("stdout", execution.run_output.stdout)
    fact("stderr", execution.run_output.stderr)
    fact("allocated_tasks", sorted((execution.allocated_resources.tasks or {}).keys()))

    history = jobs.history(job_id)
    if history is None:
        fail("Jobs().history returned None")
    fact("history_type", type(history).__name__)
    fact("history_execution_events", len(history.items))
    fact("history_levels", sorted({str(h.type) for h in history.items}))
    everything = jobs.history(job_id, event_type="all")
    fact("history_all_events", len(everything.items))
    fact("history_topics", sorted({h.event.topic for h in everything.items if h.event}))

    results = jobs.results(job_id)
    if results is None:
        fail("Jobs().results returned None")
    fact("results_type", type(results).__name__)
    fact("results", len(results.items))
    fact("result_publisher", results.items[0].type if results.items else "")
    fact("result_params", sorted((results.items[0].params or {}).keys()) if results.items else [])


main()
