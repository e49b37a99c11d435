"""`bacalhau job ...`: submit, query and manage jobs. Each verb lives in its own module."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.job."
job = BacalhauGroup(
    name="job",
    help="Commands to submit, query and update jobs.",
    lazy={
        "describe": (_P + "describe:describe", "Get the info of a job by ID or name."),
        "executions": (_P + "executions:executions", "List the executions of a job."),
        "get": (_P + "get:get", "Download the results of a job."),
        "history": (_P + "history:history", "List the history events of a job."),
        "list": (_P + "list:list_jobs", "List jobs."),
        "logs": (_P + "logs:logs", "Follow the logs of a job's execution."),
        "rerun": (_P + "rerun:rerun", "Rerun a job."),
        "run": (_P + "run:run", "Run a job from a YAML or JSON file (or stdin)."),
        "stop": (_P + "stop:stop", "Stop a job."),
        "validate": (_P + "validate:validate", "Validate a job file without submitting it."),
        "versions": (_P + "versions:versions", "List the versions of a job."),
    },
)
