"""The shipped locustfiles run as Locust users run them: ``locust -f``, headless or web UI, ``--csv``,
``--html``, tags, spawn rate, ``--master`` with ``--worker``s, and the harness's budgets and reports.

Each run is a real ``locust`` process against the session's engine (``--host``), a few seconds long.
"""

from __future__ import annotations

import csv
import json
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness import resources
from harness.process import free_port
from harness.timing import Timings
from tests.loadtests.locust_cli import ENV, locust, locustfile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

HOLDS = "budgets:\n  - name: allow\n    status: 200\n    p99: 5000\n    min_count: 10\n    error_rate: 0\n"
#: Broken by any run with --delay-ms 20 (every request waits 20 ms at the engine).
BREAKS = "budgets:\n  - name: '*'\n    p50: 1\n    between: [0, 10000]\n"


def _sigint_at_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def budget(tmp_path: Path, text: str) -> str:
    path = tmp_path / "budget.yaml"
    path.write_text(text)
    return str(path)


def test_headless_with_tags_csv_html_and_a_budget_that_holds(akto_engine, tmp_path) -> None:
    result = locust("engine", "--headless", "-u", "4", "-r", "2", "-t", "3", "--host", akto_engine.url,
                    "--tags", "allow", "--csv", "run", "--html", "locust.html", "--budget", budget(tmp_path, HOLDS),
                    "--akto-report", "report.html", "--akto-csv", "exact.csv", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "BROKE" not in output and "held" in output
    # Locust's own outputs work, and only the tagged task ran.
    stats = list(csv.DictReader((tmp_path / "run_stats.csv").open()))
    assert {row["Name"] for row in stats} == {"allow", "Aggregated"}
    assert (tmp_path / "locust.html").stat().st_size > 1000
    # Ours: exact percentiles per request and status, and the offline HTML report.
    [row] = list(csv.DictReader((tmp_path / "exact.csv").open()))
    assert (row["name"], row["status"], row["exact"]) == ("allow", "200", "yes") and int(row["count"]) >= 10
    report = (tmp_path / "report.html").read_text()
    for part in ("Latency over time", "Latency histogram per request name", "Budgets", "Run configuration",
                 "every budget held", "plotly"):
        assert part in report
    assert "<script src=\"http" not in report  # plotly.js inlined: the report opens offline


def test_a_broken_budget_exits_1_and_says_which_bound(akto_engine, tmp_path) -> None:
    result = locust("engine", "--headless", "-u", "2", "-r", "2", "-t", "2", "--host", akto_engine.url,
                    "--delay-ms", "20", "--budget", budget(tmp_path, BREAKS), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert "BROKE" in output and "<= 1 ms" in output


def test_a_bad_budget_file_stops_locust_before_any_load(akto_engine, tmp_path) -> None:
    result = locust("engine", "--headless", "-u", "1", "-t", "2", "--host", akto_engine.url,
                    "--budget", budget(tmp_path, "budgets:\n  - name: allow\n    p99: soon\n"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "budget.yaml:3: budgets.0.p99: Input should be a valid number" in result.stderr


def test_a_web_ui_run_is_checked_when_it_is_stopped(akto_engine, tmp_path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "locust", "-f", locustfile("engine"), "--web-host", "127.0.0.1",
            "--web-port", str(port), "--host", akto_engine.url, "--delay-ms", "20", "--budget", budget(tmp_path, BREAKS)]
    # Ctrl-C as at a terminal: SIGINT at its default even where this suite runs with it ignored (`make test &`
    # from a shell without job control: every child would inherit the ignore and never stop).
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                               preexec_fn=_sigint_at_default)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5, trust_env=False) as web:
            deadline = time.monotonic() + 30
            while True:  # the web UI is up when it answers
                try:
                    web.get("/")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            # No host in the form: the web UI keeps the one the file set at init (this run's engine namespace).
            assert web.post("/swarm", data={"user_count": 2, "spawn_rate": 2}).status_code == 200
            deadline = time.monotonic() + 20
            while web.get("/stats/requests").json()["total_rps"] == 0 and sum(
                    s["num_requests"] for s in web.get("/stats/requests").json()["stats"]) < 20:
                assert time.monotonic() < deadline, "no requests went out"
                time.sleep(0.2)
            assert web.get("/stop").status_code == 200 or web.post("/stop").status_code == 200
        process.send_signal(2)  # Ctrl-C: Locust quits, the budgets decide the exit code
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert "budgets (exact timings)" in output and "BROKE" in output, output[-4000:]
    assert process.returncode == 1, output[-4000:]


def test_master_and_two_workers_merge_exact_timings(akto_engine, tmp_path) -> None:
    # --autostart --autoquit 4 rather than --headless: a headless master quits 0.5 s after telling its
    # workers to, before their last report (every 3 s) arrives; stopping first and quitting 4 s later lets
    # every worker's last histograms in (loadtests/README.md, "Distributed").
    port = free_port()
    common = ["-f", locustfile("engine")]
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", *common, "--autostart", "--autoquit", "4", "--web-host", "127.0.0.1",
         "--web-port", str(free_port()), "--master", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), "--expect-workers", "2", "-u", "6", "-r", "6", "-t", "4",
         "--host", akto_engine.url, "--budget", budget(tmp_path, HOLDS), "--dump-timings", "merged.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    workers = [subprocess.Popen([sys.executable, "-m", "locust", *common, "--worker", "--master-host", "127.0.0.1",
                                 "--master-port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=ENV) for _ in range(2)]
    try:
        output, _ = master.communicate(timeout=60)
        worker_logs = [w.communicate(timeout=30)[0] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)
    assert master.returncode == 0, output[-4000:] + "".join(worker_logs)[-2000:]
    merged = json.loads((tmp_path / "merged.json").read_text())
    dumps = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("merged.json.worker-*.json"))]
    assert len(dumps) == 2, list(tmp_path.iterdir())
    assert all(sum(d["count"] for d in dump.values()) > 0 for dump in dumps)  # both workers sent load
    assert set(merged) == set(dumps[0]) | set(dumps[1])
    for key, timings in merged.items():
        union = sorted(v for dump in dumps for v in dump.get(key, {}).get("samples_us", []))
        assert timings["count"] == len(union), key  # every request every worker made, once
        # The merge is lossless: the master's percentiles are those of one histogram of the union of every
        # value the workers measured (HDR: 3 significant digits), not of Locust's rounded buckets.
        together = Timings(keep_exact=0)
        for value_us in union:
            together.record_ms(value_us / 1000)
        for p in (50.0, 90.0, 99.0, 99.9):
            assert timings[f"p{p:g}_ms"] == pytest.approx(together.hdr_ms(p), abs=1e-9), (key, p)
        assert timings["max_ms"] == pytest.approx(together.histogram.get_max_value() / 1000, abs=1e-9)
    assert "budgets (exact timings)" in output


def test_akto_harness_load_finds_and_runs_the_shipped_files(akto_engine, tmp_path) -> None:
    cli = str(Path(sys.executable).parent / "akto-harness")
    listed = subprocess.run([cli, "load", "list"], capture_output=True, text=True, timeout=30, env=ENV)
    assert listed.returncode == 0 and "engine_open" in listed.stdout and "engine-budget.yaml" in listed.stdout
    path = subprocess.run([cli, "load", "path", "engine"], capture_output=True, text=True, timeout=30, env=ENV)
    assert path.stdout.strip() == str(resources.locustfiles()["engine"])
    run = subprocess.run([cli, "load", "run", "engine_open", "--headless", "-u", "1", "-t", "2", "--arrival-rate",
                          "50", "--host", akto_engine.url, "--akto-csv", "open.csv"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "open.csv").open()))
    assert 10 <= sum(int(r["count"]) for r in rows) <= 110  # at most 50 per second for 2 s: the schedule


def test_the_connector_file_starts_the_connector_in_its_host(akto_engine, tmp_path) -> None:
    # The TrueFoundry endpoint (uvicorn) starts in about a second; every connector comes from the registry.
    text = "budgets:\n  - name: allow\n    error_rate: 0\n    min_count: 5\n  - name: block\n    error_rate: 0\n    min_count: 2\n"
    result = locust("connector", "--headless", "-u", "2", "-r", "2", "-t", "3", "--host", akto_engine.url,
                    "--connector", "truefoundry", "--fail-mode", "fail_closed", "--budget", budget(tmp_path, text),
                    "--akto-csv", "exact.csv", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "started truefoundry" in output
    statuses = {(r["name"], r["status"]) for r in csv.DictReader((tmp_path / "exact.csv").open())}
    assert statuses == {("allow", "200"), ("block", "400")}  # passed, and blocked by the engine's verdict
