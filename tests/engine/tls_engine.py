"""The engine served over TLS, as a separate process standing in for a real Akto in the record tests:
``python tests/engine/tls_engine.py PORT CERT KEY STATE`` (token from ``$MOCK_AKTO_TOKEN``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from mock_akto.app import build_app
from mock_akto.config import EngineConfig


def main() -> None:
    port, cert, key, state = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    config = EngineConfig(port=port, token=SecretStr(os.environ["MOCK_AKTO_TOKEN"]), state_path=state)
    uvicorn.run(build_app(config), host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key,
                log_level="warning", lifespan="on", access_log=False)


if __name__ == "__main__":
    main()
