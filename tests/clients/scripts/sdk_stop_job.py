"""bacalhau_sdk: stop a long-running job with Jobs().stop, with and without a reason.

Usage: sdk_stop_job.py <loop.wasm>
"""

import sys

from bacalhau_sdk.jobs import Jobs
from client_common import fact, fail, put, state_of, wait_state, wasm_job


def main():
    jobs = Jobs()
    job_id = put(jobs, wasm_job(sys.argv[1], name="sdk-spinner"))
    wait_state(jobs, job_id, wanted=("Running",))
    # Wait until the execution is really running on the node, not only scheduled.
    running = None
    for _ in range(300):
        executions = jobs.executions(job_id)
        running = [e for e in (executions.items if executions else []) if e.compute_state.state_type in (5, 6)]
        if running:
            break
        __import__("time").sleep(0.1)
    fact("running_before_stop", bool(running))

    stopped = jobs.stop(job_id, reason="stopped by the official SDK")
    if stopped is None:
        fail("Jobs().stop returned None (the SDK printed the ApiException above)")
    fact("stop_type", type(stopped).__name__)
    fact("stop_evaluation_id", stopped.evaluation_id or "")
    final = wait_state(jobs, job_id)
    fact("state", state_of(final))
    fact("state_message", final.job.state.message or "")
    executions = jobs.executions(job_id)
    fact("execution_compute_states", sorted({e.compute_state.state_type for e in executions.items}))
    fact("execution_desired_states", sorted({e.desired_state.state_type for e in executions.items}))
    # No reason: the SDK sends the literal query string `reason=None`; stopping a stopped job is a no-op.
    again = jobs.stop(job_id)
    fact("stop_again_type", type(again).__name__)
    fact("stop_again_evaluation_id", (again.evaluation_id or "") if again else "<None>")
    history = jobs.history(job_id, event_type="job")
    fact("history_messages", [h.event.message for h in history.items if h.event])


main()
