"""LiteLLM tests: every fixture comes from the akto_harness plugin (harness/pytest_plugin.py).

The in-process hook tests import litellm, which downloads its model price map from the internet at import
unless told otherwise; these tests talk only to loopback. (Proxies started by the harness get the same
setting in their own environment.)
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
