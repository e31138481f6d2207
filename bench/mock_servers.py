"""The fake engine beside WireMock and mountebank serving the same verdict, side by side in one run.

``python -m bench mock_servers --node-modules DIR`` (``npm install --prefix DIR wiremock mountebank``; java and
node on PATH). Each server answers ``POST /api/http-proxy`` with the bytes the engine answers for an allow
prompt (WireMock: one stub mapping; mountebank: one imposter with an ``is`` response); wrk (core 1) drives each
(core 0) in interleaved rounds after a warm-up (the JVM needs one). The engine does more per call (parses the
envelope, runs the default policies, journals): the ratios say what that costs against tools that only
replay bytes.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import httpx

from akto_wire import HTTP_PROXY_PATH
from bench._common import console, machine_notes, print_comparison, round_orders
from bench.servers import SERVER_CPU, LOADGEN_CPU, engine_process, pin_process, server_pid
from bench.wrk import run_wrk
from harness.payloads import ENGINE_QUERY, engine_chat_body
from harness.process import ManagedProcess, free_port, port_open

HEADERS = {"content-type": "application/json"}
PATH = f"{HTTP_PROXY_PATH}?{ENGINE_QUERY}"


def wiremock(node_modules: Path, verdict: bytes) -> tuple[ManagedProcess, str]:
    jars = sorted(glob.glob(str(node_modules / "wiremock" / "build" / "wiremock-standalone-*.jar")))
    if not jars or not shutil.which("java"):
        sys.exit(f"WireMock not found under {node_modules} (npm install --prefix {node_modules.parent} wiremock) or no java")
    port = free_port()
    proc = ManagedProcess("wiremock", ["java", "-jar", jars[-1], "--port", str(port), "--bind-address", "127.0.0.1",
                                       "--disable-banner"], ready=port_open(port), startup_timeout=60)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    stub = {"request": {"method": "POST", "urlPath": HTTP_PROXY_PATH},
            "response": {"status": 200, "body": verdict.decode(), "headers": HEADERS}}
    httpx.post(f"{url}/__admin/mappings", json=stub, timeout=10).raise_for_status()
    return proc, url


def mountebank(node_modules: Path, verdict: bytes) -> tuple[ManagedProcess, str]:
    mb = node_modules / ".bin" / "mb"
    if not mb.exists() or not shutil.which("node"):
        sys.exit(f"mountebank not found under {node_modules} (npm install --prefix {node_modules.parent} mountebank) or no node")
    admin, port = free_port(), free_port()
    proc = ManagedProcess("mountebank", [str(mb), "--port", str(admin), "--localOnly", "--nologfile"], ready=port_open(admin),
                          startup_timeout=60)
    proc.start()
    imposter = {"port": port, "protocol": "http", "stubs": [
        {"responses": [{"is": {"statusCode": 200, "headers": HEADERS, "body": verdict.decode()}}]}]}
    httpx.post(f"http://127.0.0.1:{admin}/imposters", json=imposter, timeout=10).raise_for_status()
    return proc, f"http://127.0.0.1:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mock_servers", description=__doc__.split("\n")[0])
    parser.add_argument("--node-modules", type=Path, required=True, help="where npm installed wiremock and mountebank")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round (default 5)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    body = engine_chat_body()
    console.print(machine_notes())
    with ExitStack() as stack:
        engine = stack.enter_context(engine_process())
        verdict = httpx.post(f"{engine.url}{PATH}", content=body, headers=HEADERS, timeout=10).content
        wm, wm_url = wiremock(args.node_modules, verdict)
        stack.callback(wm.stop)
        mbp, mb_url = mountebank(args.node_modules, verdict)
        stack.callback(mbp.stop)
        servers = {"mock-akto engine": (engine.url, server_pid(engine)), "WireMock": (wm_url, wm.proc.pid),
                   "mountebank": (mb_url, mbp.proc.pid)}
        for name, (url, pid) in servers.items():
            pin_process(pid, SERVER_CPU)
            answer = httpx.post(f"{url}{PATH}", content=body, headers=HEADERS, timeout=10)
            if answer.content != verdict:
                sys.exit(f"{name} does not answer the engine's verdict: {answer.status_code} {answer.text[:200]}")
            run_wrk(f"{url}{PATH}", body=body, headers=HEADERS, connections=args.connections, duration_s=3,
                    cpu=LOADGEN_CPU)  # warm-up (the JVM's JIT), thrown away
        results: dict[str, list] = {name: [] for name in servers}
        for order in round_orders(list(servers), args.rounds):
            for name in order:
                url, _ = servers[name]
                results[name].append(run_wrk(f"{url}{PATH}", body=body, headers=HEADERS,
                                             connections=args.connections, duration_s=args.duration, cpu=LOADGEN_CPU))
    best = {name: max(runs, key=lambda r: r.rps).summary for name, runs in results.items()}
    rows = print_comparison(best, baseline="mock-akto engine",
                            title=f"same verdict, wrk -t1 -c{args.connections}, best of {args.rounds} x {args.duration} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
