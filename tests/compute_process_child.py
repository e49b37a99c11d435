"""A scripted compute child for tests/test_compute_process.py: speaks ComputeProcess's control protocol
(compute_process.py) without running a compute node, so that the supervisor's own behaviour (restart,
first-start failure, unanswered questions, a child that will not stop) can be provoked on purpose.

    python compute_process_child.py MODE [STATE_FILE]

MODE: ok (answers, exits on drain/stop_now/EOF), fail (reports an error before starting), crash-once
(starts, then dies the first time: STATE_FILE remembers), hang-once (starts, then hangs the first time:
alive, reading and answering nothing), mute (takes its hello, then hangs before it starts), silent
(starts, answers nothing, exits on EOF), stubborn (starts, ignores drain, stop_now and SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

out = os.fdopen(int(os.environ["BACALHAU_PY_COMPUTE_CONTROL_FD"]), "wb", buffering=0)


def tell(**message: object) -> None:
    out.write(json.dumps(message).encode() + b"\n")


def first_time(state: Path) -> bool:
    """True for the first child of a test (it leaves `state` behind), False for its replacements."""
    if state.exists():
        return False
    state.write_text(sys.argv[1])
    return True


def main() -> int:
    mode = sys.argv[1]
    hello = json.loads(sys.stdin.readline())
    if mode == "fail":
        tell(event="error", message="cannot start: boom", hint="fix the thing", code="ConfigurationError")
        return 1
    if mode == "mute":
        time.sleep(120)  # hung while starting: the supervisor's start deadline is what ends this
        return 4
    if mode in ("crash-once", "hang-once") and first_time(Path(sys.argv[2])):
        tell(event="started")
        if mode == "crash-once":
            time.sleep(0.2)
            return 3
        time.sleep(120)  # a hung event loop: the supervisor's watchdog is what ends this
        return 4
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tell(event="started")
    for line in sys.stdin:
        message = json.loads(line)
        if mode in ("silent", "stubborn"):
            continue
        if message["op"] == "ask":
            tell(id=message["id"], answer={"what": message["what"], "node": hello["node_id"],
                                           "labels": hello.get("labels", {})})
        elif message["op"] == "labels":
            tell(id=0, answer=message["labels"])
        elif message["op"] in ("drain", "stop_now"):
            return 0
    if mode == "stubborn":
        time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
