"""Run the engine: in the foreground (``python -m mock_akto serve``) or in a background thread for tests.

uvicorn runs with uvloop, the transport-exposing httptools protocol (socket faults need it), no access
log (it would cost throughput and could log tokens in query strings), and lifespan on (listeners close on
shutdown). Once the socket is bound the server prints one machine-readable line,
``mock-akto listening on http://HOST:PORT``, so a parent process can start it with ``--port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import uvicorn
from pydantic import SecretStr

from .app import build_app
from .engine import Engine
from .config import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_KEEP_ALIVE_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_API_KEYS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_LISTENERS,
    DEFAULT_MAX_NAMESPACES,
    ADMIN_TOKEN_ENV,
    TOKEN_ENV,
    EngineConfig,
)
from .journal import DEFAULT_MAX_ENTRIES
from .profiles import DEFAULT_PROFILE, PROFILES
from .protocol import LIMITS_ATTRIBUTE, ConnectionLimits, TransportExposingProtocol

READY_PREFIX = "mock-akto listening on "


class EngineUvicornServer(uvicorn.Server):
    """uvicorn's server, plus the bound port and a callback once it listens."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[["EngineUvicornServer"], None] | None = None) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.bound_port: int | None = None

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)
        if self.started:
            self.bound_port = self.servers[0].sockets[0].getsockname()[1]
            if self.on_ready is not None:
                self.on_ready(self)


def build_server(config: EngineConfig, on_ready: Callable[[EngineUvicornServer], None] | None = None) -> EngineUvicornServer:
    """The engine app wired into a uvicorn server (not started)."""
    app = build_app(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=TransportExposingProtocol,
        lifespan="on",
        access_log=False,
        log_level=config.log_level,
        timeout_graceful_shutdown=2,
        server_header=False,
        proxy_headers=False,  # nothing reads the client address; one middleware less on every call
        timeout_keep_alive=config.keep_alive,
    )
    setattr(uv_config, LIMITS_ATTRIBUTE, ConnectionLimits(
        max_connections=config.max_connections, header_timeout=config.header_timeout,
        body_timeout=config.body_timeout, max_header_bytes=config.max_header_bytes))
    server = EngineUvicornServer(uv_config, on_ready=on_ready)
    app.engine.attach_server(server)
    return server


#: Young-generation collection threshold while serving (CPython's default is 700).
SERVING_GC_THRESHOLD = 20_000


def tune_gc_for_serving() -> None:
    """Keep garbage-collection pauses out of the latency tail of a process that only serves the engine.

    Measured with 500 delayed calls in flight (docs/benchmarks.md, Engine): with the defaults the young
    generation was collected ~35 times a second, each time promoting the in-flight calls' objects, which
    forced a full collection (40-120 ms, every waiting timer fires late) every few seconds. The objects
    built at startup (~77,000: FastAPI, pydantic schemas, policies) live as long as the process, so they are
    frozen out of every collection, and the young threshold is raised: the live young objects are bounded
    by the calls in flight, so a collection costs no more, it just comes ~30 times less often. Only for the
    ``serve`` process: an engine embedded in a test process leaves that process's collector alone.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVING_GC_THRESHOLD, *gc.get_threshold()[1:])


#: Open files the ``serve`` process asks for (every client connection is one): a load test holding
#: thousands of slow calls open must not fail on a default soft limit of 1,024.
OPEN_FILES_WANTED = 65_536


def raise_open_files_limit(wanted: int = OPEN_FILES_WANTED) -> int | None:
    """Raise this process's soft limit on open files towards ``wanted`` (never above the hard limit);
    the limit in effect after, or None where the platform has no such limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def url_of(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def run(config: EngineConfig) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; prints the ready line once bound."""

    def announce(server: EngineUvicornServer) -> None:
        tune_gc_for_serving()
        server.config.app.engine.contract.scan_workers.warm()  # a first big call must not wait for a start
        print(f"{READY_PREFIX}{url_of(config.host, server.bound_port or config.port)}", flush=True)

    raise_open_files_limit()
    server = build_server(config, on_ready=announce)
    server.run()
    if not server.started:
        raise SystemExit(1)


class EngineServer:
    """The engine in a background thread of this process, for tests and embedding.

    >>> with EngineServer(EngineConfig()) as engine:
    ...     httpx.get(engine.url + "/health")
    """

    def __init__(self, config: EngineConfig | None = None, *, startup_timeout: float = 15.0) -> None:
        self.config = config or EngineConfig()
        self.startup_timeout = startup_timeout
        self._ready = threading.Event()
        self._server = build_server(self.config, on_ready=lambda _server: self._ready.set())
        self._thread = threading.Thread(target=self._server.run, name="mock-akto-engine", daemon=True)

    @property
    def port(self) -> int:
        if self._server.bound_port is None:
            raise RuntimeError("the engine is not running")
        return self._server.bound_port

    @property
    def url(self) -> str:
        return url_of(self.config.host, self.port)

    @property
    def engine(self) -> Engine:
        """The running engine's state, for in-process inspection in tests."""
        return self._server.config.app.engine

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the engine serves on (its thread's), for tests that schedule work on it."""
        if not self._server.servers:
            raise RuntimeError("the engine is not running")
        return self._server.servers[0].get_loop()

    def start(self) -> "EngineServer":
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready.wait(0.05):
            if not self._thread.is_alive():
                raise RuntimeError("the engine failed to start (see the uvicorn error above)")
            if time.monotonic() >= deadline:
                self._server.should_exit = True
                raise RuntimeError(f"the engine did not start within {self.startup_timeout:g}s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> "EngineServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------- `serve`


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options (shared with the full CLI in mock_akto.cli)."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--policies", type=Path, default=None, metavar="FILE", help="policies YAML")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"require this Authorization value on "
                        f"/api/* (raw or Bearer); default ${TOKEN_ENV}, which keeps it out of the process list; "
                        f"the admin API then needs it too, unless --admin-token is set")
    parser.add_argument("--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV),
                        help=f"require this Authorization value on /__admin (default ${ADMIN_TOKEN_ENV}, else the "
                        f"--token; with neither the admin API is open to loopback callers, but still refuses "
                        f"cross-origin and non-JSON state changes)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help="open connections at most; one more is answered 503 and closed")
    parser.add_argument("--max-listeners", type=int, default=DEFAULT_MAX_LISTENERS,
                        help="extra listeners at most; one more is refused with 400")
    parser.add_argument("--max-api-keys", type=int, default=DEFAULT_MAX_API_KEYS,
                        help="registered API keys at most; one more is refused with 400")
    parser.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT_S,
                        help="seconds a client may take to send its request headers (then 408, closed)")
    parser.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT_S,
                        help="seconds a client may take to send a request body (then 408, closed)")
    parser.add_argument("--keep-alive", type=float, default=DEFAULT_KEEP_ALIVE_S,
                        help="seconds an idle connection stays open between requests (default "
                             f"{DEFAULT_KEEP_ALIVE_S:g}: longer than client pools keep them)")
    parser.add_argument("--journal-size", type=int, default=DEFAULT_MAX_ENTRIES, help="journal entries per namespace")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="413 above this size")
    parser.add_argument("--max-namespaces", type=int, default=DEFAULT_MAX_NAMESPACES,
                        help="namespaces kept at most; a call that would create one more gets 400")
    parser.add_argument("--state", type=Path, default=None, metavar="PATH",
                        help="apply file or folder of them loaded at start (policies, faults, verdicts)")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="a `mock-akto record` file: recorded calls get the recorded verdicts")
    parser.add_argument("--replay-miss", choices=["policies", "fail"], default="policies",
                        help="a call not in the replay file: the policies decide (default), or 500 naming the miss")
    parser.add_argument("--akto-profile", default=DEFAULT_PROFILE, choices=list(PROFILES), metavar="NAME",
                        help=f"Akto contract version every namespace starts from: {', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        host=args.host, port=args.port, policies_file=args.policies,
        token=SecretStr(args.token) if args.token else None,
        admin_token=SecretStr(args.admin_token) if args.admin_token else None,
        max_connections=args.max_connections, max_listeners=args.max_listeners, max_api_keys=args.max_api_keys, header_timeout=args.header_timeout, body_timeout=args.body_timeout, keep_alive=args.keep_alive,
        journal_size=args.journal_size, ingest_size=args.journal_size,
        max_body_bytes=args.max_body_bytes, max_namespaces=args.max_namespaces, log_level=args.log_level,
        state_path=args.state, replay_file=args.replay, replay_miss=args.replay_miss,
        akto_profile=args.akto_profile,
    )


def serve_main(argv: Sequence[str] | None = None) -> int:
    """A minimal ``mock-akto serve`` (the full CLI lives in mock_akto.cli)."""
    parser = argparse.ArgumentParser(prog="mock-akto", description="The fake Akto guardrail engine.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="run the engine"))
    args = parser.parse_args(argv)
    run(config_from_args(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve_main())
