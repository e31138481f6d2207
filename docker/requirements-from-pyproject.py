"""Print the project's requirements (core + the named extras) from pyproject.toml, one per line.

Why: the image installs dependencies in a layer keyed on pyproject.toml alone, so a source change reuses
it instead of reinstalling LiteLLM. Usage: python3 requirements-from-pyproject.py [EXTRA ...]
"""

import sys
import tomllib

with open("pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = project.get("optional-dependencies", {})
unknown = [name for name in sys.argv[1:] if name not in extras]
if unknown:
    sys.exit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(extras)}")
requirements = list(project["dependencies"])
for name in sys.argv[1:]:
    requirements += extras[name]
print("\n".join(requirements))
