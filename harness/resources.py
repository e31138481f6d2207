"""Where the files the harness reads at run time live, in a checkout and in an installed wheel alike.

The single place that knows these paths. Everything is found through the installed packages
(``importlib``), never by walking up from a module's ``__file__``, so the same code works from an editable
checkout and from a wheel in someone else's virtual environment:

* the scenario catalogue is the package ``harness.catalogue``. In the repository ``harness/catalogue`` is a
  symbolic link to the top-level ``scenarios/`` folder; setuptools follows it when it builds the wheel, so
  the wheel carries the YAML files as package data and an editable install reads ``scenarios/`` itself.
* addon scripts that ``mitmdump`` loads by path are located from their module spec (the module is not
  imported: it needs mitmproxy, which lives in another environment).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The package that holds the shipped scenario YAML (``*.yaml`` plus ``truefoundry/``).
CATALOGUE_PACKAGE = "harness.catalogue"
#: The reference egress addon and the test-only upstream router, loaded by ``mitmdump -s <path>``.
EGRESS_ADDON_MODULE = "reference_impl.egress.addon"
ROUTE_ADDON_MODULE = "harness.hosts.mitm_route"


def scenario_catalogue() -> Path:
    """The folder of the shipped scenario YAML files (``scenarios/`` of the checkout, or the wheel's copy)."""
    spec = importlib.util.find_spec(CATALOGUE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the scenario catalogue ({CATALOGUE_PACKAGE}) is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def module_file(module: str) -> Path:
    """The source file of ``module`` (its parents are imported, the module itself is not)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"module {module} is not installed")
    return Path(spec.origin)


def egress_addon() -> Path:
    """Our reference egress addon, as a script path for ``mitmdump -s``."""
    return module_file(EGRESS_ADDON_MODULE)


def route_addon() -> Path:
    """The harness's plain-HTTP upstream router addon, as a script path for ``mitmdump -s``."""
    return module_file(ROUTE_ADDON_MODULE)


def import_root() -> Path:
    """The folder the ``reference_impl`` package is imported from (for a child's ``PYTHONPATH``)."""
    return module_file("reference_impl").parent.parent


def source_checkout() -> Path | None:
    """The repository checkout this code runs from (an editable install), or None for an installed wheel."""
    root = import_root()
    return root if (root / "pyproject.toml").is_file() and (root / "scenarios").is_dir() else None


#: The shipped locustfiles (``locust -f <path>``) and example budget files.
LOCUSTFILES_PACKAGE = "loadtests.locustfiles"
LOADTEST_EXAMPLES_PACKAGE = "loadtests"


def locustfiles() -> dict[str, Path]:
    """Every shipped locustfile by name (``engine``, ``engine_open``, ``connector``, ``target``)."""
    folder = _package_folder(LOCUSTFILES_PACKAGE)
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def loadtest_examples() -> dict[str, Path]:
    """The shipped example budget files by file name (``engine-budget.yaml``...)."""
    folder = _package_folder(LOADTEST_EXAMPLES_PACKAGE) / "examples"
    return {p.name: p for p in sorted(folder.glob("*.yaml"))}


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # imports the parents only: loadtests/__init__ imports no locust
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed (pip install 'akto-harness[load]')")
    return Path(next(iter(spec.submodule_search_locations))).resolve()
