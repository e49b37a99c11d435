"""Our transport messages survive the trip through NCL payloads, and Go peers find what they look for."""

from __future__ import annotations

from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.job import Job, SpecConfig
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages as m
from bacalhau.transport.ncl import convert, data


def execution() -> Execution:
    job = Job.from_user({"ID": "j-1", "Name": "j", "Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]})
    return Execution(ID="e-1", NodeID="n-1", JobID="j-1", Job=job)


def test_an_offer_carries_the_whole_execution_and_an_event() -> None:
    payload = convert.ask_for_bid_to_ncl(m.AskForBid(execution=execution()))
    wire = payload.to_wire()
    assert isinstance(wire["Execution"]["Job"]["Meta"], dict)  # never null: a Go compute writes into it
    assert wire["Events"][0]["Message"] == "Requested execution on n-1"
    assert convert.ask_for_bid_from_ncl(data.AskForBidRequest.from_user(wire)).execution.id == "e-1"


def test_a_cancel_reason_rides_in_the_first_event() -> None:
    payload = convert.cancel_to_ncl(m.CancelExecution(execution_id="e-1", reason="job stopped by user"))
    assert payload.to_wire()["Events"][0]["Message"] == "job stopped by user"
    back = convert.cancel_from_ncl(payload)
    assert (back.execution_id, back.reason) == ("e-1", "job stopped by user")


def test_a_go_bid_rejection_becomes_a_cancel() -> None:
    back = convert.cancel_from_ncl(data.BidRejectedRequest(ExecutionID="e-9"))
    assert back.execution_id == "e-9" and "orchestrator" in back.reason


def test_a_rejected_bid_keeps_its_reason() -> None:
    message = m.BidResult(execution_id="e-1", job_id="j-1", accepted=False, reason="not enough memory")
    payload = convert.bid_result_to_ncl(message, "batch")
    assert payload.to_wire()["JobType"] == "batch"
    assert convert.bid_result_from_ncl(payload) == message


def test_a_run_result_keeps_output_publisher_and_executor_facts() -> None:
    message = m.RunResult(
        execution_id="e-1",
        job_id="j-1",
        run_output=RunCommandResult(Stdout="hi\n", ExitCode=0),
        published_result=SpecConfig(Type="local", Params={"URL": "http://n-1:6001/e-1.tar.gz"}),
        details={"ImageDigest": "sha256:abc"},
    )
    payload = convert.run_result_to_ncl(message)
    wire = payload.to_wire()
    assert wire["RunCommandResult"]["Stdout"] == "hi\n"
    assert wire["Events"][0]["Details"] == {"ImageDigest": "sha256:abc"}  # where Go keeps event details
    assert convert.run_result_from_ncl(data.RunResult.from_user(wire)) == message


def test_a_compute_error_keeps_its_text_code_and_output() -> None:
    message = m.ComputeError(
        execution_id="e-1", job_id="j-1", message="image not found",
        run_output=RunCommandResult(Stderr="pull failed"), details={"ErrorCode": "ImageNotFound", "Retryable": "false"},
    )
    payload = convert.compute_error_to_ncl(message)
    assert payload.message == "image not found"  # Events[0].Message, as a Go orchestrator reads it
    assert convert.compute_error_from_ncl(data.ComputeError.from_user(payload.to_wire())) == message


def test_progress_keeps_the_state() -> None:
    message = m.ExecutionProgress(execution_id="e-1", job_id="j-1", state=ExecutionStateType.Publishing, message="Publishing")
    back = convert.progress_from_ncl(convert.progress_to_ncl(message))
    assert back.state is ExecutionStateType.Publishing and back.message == "Publishing"


def test_an_offer_goes_out_as_a_new_execution_a_go_compute_accepts() -> None:
    stored = execution()
    stored.compute_state.state_type = ExecutionStateType.AskForBid  # how the planner records an offer
    stored.revision = 3
    wire = convert.ask_for_bid_to_ncl(m.AskForBid(execution=stored)).to_wire()
    assert wire["Execution"]["ComputeState"]["StateType"] == int(ExecutionStateType.New)
    assert wire["Execution"]["Revision"] <= 1
    assert stored.compute_state.state_type is ExecutionStateType.AskForBid  # the caller's copy is untouched


def test_steps_ride_a_final_report_and_a_go_peer_sees_no_steps_key() -> None:
    steps = [
        m.ExecutionStep(state=ExecutionStateType.BidAccepted, message="Bid accepted", time_ns=1_796_000_000_000_000_001),
        m.ExecutionStep(state=ExecutionStateType.Running, message="Running", time_ns=1_796_000_000_000_000_002),
    ]
    result = m.RunResult(execution_id="e-1", job_id="j-1", steps=steps)
    error = m.ComputeError(execution_id="e-1", job_id="j-1", message="boom", steps=steps)
    result_wire = convert.run_result_to_ncl(result).to_wire()
    error_wire = convert.compute_error_to_ncl(error).to_wire()
    assert result_wire["Steps"][1] == {"State": int(ExecutionStateType.Running), "Message": "Running",
                                       "Time": 1_796_000_000_000_000_002}
    assert convert.run_result_from_ncl(data.RunResult.from_user(result_wire)).steps == steps
    assert convert.compute_error_from_ncl(data.ComputeError.from_user(error_wire)).steps == steps
    # Without steps the payloads are exactly Go's shape.
    assert "Steps" not in convert.run_result_to_ncl(m.RunResult(execution_id="e-1", job_id="j-1")).to_wire()
    assert "Steps" not in convert.compute_error_to_ncl(m.ComputeError(execution_id="e-1", job_id="j-1")).to_wire()


def test_a_step_of_an_unknown_state_is_left_out_and_the_report_kept() -> None:
    wire = convert.run_result_to_ncl(m.RunResult(execution_id="e-1", job_id="j-1")).to_wire()
    wire["Steps"] = [{"State": 99, "Message": "from the future", "Time": 1}, {"State": int(ExecutionStateType.Running)}]
    back = convert.run_result_from_ncl(data.RunResult.from_user(wire))
    assert [s.state for s in back.steps] == [ExecutionStateType.Running]
