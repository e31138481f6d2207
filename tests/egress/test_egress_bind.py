"""The documented egress command listens on loopback only, even without ``--listen-host`` (issue 11.7).

mitmproxy's own default listens on every interface (an open proxy); the addon makes an unset
``listen_host`` 127.0.0.1. Read from the kernel's socket table, not from mitmdump's own log line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.hosts.mitmdump import LISTENING_LINE, mitmdump_binary
from harness.process import ManagedProcess, free_port

pytestmark = pytest.mark.mitm

ADDON = Path(__file__).resolve().parents[2] / "reference_impl" / "egress" / "addon.py"
TCP_LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp{,6}) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == TCP_LISTEN:
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the Linux socket table")
@pytest.mark.timeout(60)
def test_documented_command_without_listen_host_binds_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    argv = [mitmdump_binary(), "-s", str(ADDON), "--listen-port", str(port), "--set", f"confdir={tmp_path}",
            "--set", "akto_url=http://127.0.0.1:9"]
    process = ManagedProcess("mitmdump-bind", argv, ready=lambda: bool(listening_addresses(port)),
                             startup_timeout=30)
    with process:
        addresses = listening_addresses(port)
        assert LISTENING_LINE in process.log_path.read_text(errors="replace")
    loopback_v4 = "0100007F"  # 127.0.0.1, little-endian hex
    assert addresses == {loopback_v4}, f"listening on {addresses} (00000000 = every interface)"
