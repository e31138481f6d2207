"""After a failed gate, the timeout suite prints what each host's connector logged (not a rerun's guess)."""

from __future__ import annotations

import pytest

from harness.connectors import ClientResponse, ConnectorInstance, Traffic
from harness.payloads import Target
from loadtests.host_logs import print_connector_log_lines

LATE = ("WARNING akto.connector: akto: a request was decided 412 ms past its 1s engine deadline (more than the "
        "250 ms allowed): the host's event loop was too busy to run the decision when it was due")


class LoggedInstance(ConnectorInstance):
    """Only a log: the printer reads nothing else."""

    def __init__(self, log: str) -> None:
        self.log = log

    def send(self, traffic: Traffic) -> ClientResponse:
        raise NotImplementedError

    @property
    def target(self) -> Target:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


def test_the_connector_lines_of_each_host_are_printed_and_the_rest_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    traceback = "\n".join(f'  File "litellm/proxy/x.py", line {n}, in handler' for n in range(200))
    instances = {
        ("fail_open", "slow"): LoggedInstance(f"INFO started\n{LATE}\n{traceback}\n"
                                              "GuardrailUnavailable: Akto guardrail service unreachable\n"),
        ("fail_closed", "slow"): LoggedInstance("WARNING akto.connector: akto truefoundry: engine call failed "
                                                "(timeout)\n[14:28:53.283] akto egress: request check failed\n"),
        ("fail_closed", "down"): LoggedInstance("INFO started\nno connector line here\n"),
    }
    print_connector_log_lines(instances)
    out = capsys.readouterr().out
    assert "fail_open/slow host log, the connector's lines: 1:" in out
    assert "412 ms past its 1s engine deadline" in out  # found before 200 traceback lines, not cut by a tail
    assert "fail_closed/slow host log, the connector's lines: 2:" in out  # the TrueFoundry endpoint's and the addon's
    assert "fail_closed/down host log, the connector's lines: 0" in out
    assert "litellm/proxy/x.py" not in out and "INFO started" not in out and "Akto guardrail" not in out


def test_a_long_log_shows_its_count_and_only_the_last_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log = "\n".join(f"akto: engine call failed (timeout), failing open: call {n}" for n in range(30))
    print_connector_log_lines({("fail_open", "slow"): LoggedInstance(log)}, last=3)
    out = capsys.readouterr().out
    assert "the connector's lines: 30, the last 3:" in out
    assert "call 29" in out and "call 27" in out and "call 26" not in out
