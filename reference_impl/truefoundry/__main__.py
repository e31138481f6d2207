"""``python -m reference_impl.truefoundry``: serve the TrueFoundry guardrail endpoint (options: ``--help``)."""

import sys

from .app import main

sys.exit(main())
