import socket
import sys

import pytest

from harness.process import ManagedProcess, StartupError, http_ready, start_on_free_port


def http_server(port: int, log_dir) -> ManagedProcess:  # noqa: ANN001
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    return ManagedProcess("http-server", argv, ready=http_ready(f"http://127.0.0.1:{port}/", timeout=0.3),
                          startup_timeout=15, log_dir=log_dir)


def test_a_port_taken_between_picking_and_binding_is_retried(tmp_path) -> None:  # noqa: ANN001
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        tried: list[int] = []

        def build(port: int) -> ManagedProcess:
            tried.append(taken if not tried else port)  # the first pick loses the race to the squatter
            return http_server(tried[-1], tmp_path)

        process = start_on_free_port(build)
        try:
            assert tried[0] == taken and len(tried) == 2 and process.running
        finally:
            process.stop()


def test_other_start_failures_are_not_retried(tmp_path) -> None:  # noqa: ANN001
    calls = []

    def build(port: int) -> ManagedProcess:
        calls.append(port)
        return ManagedProcess("broken", [sys.executable, "-c", "raise SystemExit('no config')"],
                              ready=lambda: False, startup_timeout=15, log_dir=tmp_path)

    with pytest.raises(StartupError, match="no config"):
        start_on_free_port(build)
    assert len(calls) == 1
