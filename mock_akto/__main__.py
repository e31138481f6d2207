"""``python -m mock_akto``: the full CLI (mock_akto.cli) when present, else the engine's own ``serve``."""

import importlib.util
import sys

if importlib.util.find_spec("mock_akto.cli") is not None:
    from mock_akto.cli import main
else:  # pragma: no cover - only before the full CLI exists
    from mock_akto.server import serve_main as main

if __name__ == "__main__":
    sys.exit(main())
