"""``python -m harness.fakes.llm --port P [--tls-cert C --tls-key K]``: serve the fake LLM on loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from harness.fakes import FAKE_KEEP_ALIVE_S
from harness.fakes.llm.app import create_app
from harness.fakes.llm.script import DEFAULT_MAX_RECORDED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fakes.llm", description="Fake OpenAI / Anthropic provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (chain); serves HTTPS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument("--max-recorded", type=int, default=DEFAULT_MAX_RECORDED, help="recording ring size")
    args = parser.parse_args(argv)
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    if args.max_recorded < 1:
        parser.error("--max-recorded must be at least 1")
    uvicorn.run(
        create_app(max_recorded=args.max_recorded),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        # Idle keep-alive TLS connections otherwise hold shutdown until the stop grace runs out.
        timeout_graceful_shutdown=1,
        timeout_keep_alive=FAKE_KEEP_ALIVE_S,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
