"""The job store: jobs, executions, evaluations and the permanent job history."""
