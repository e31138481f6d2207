"""The curated public API: every name resolves, ``import mock_akto`` stays cheap, errors share one base."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mock_akto
from mock_akto import errors


def test_every_public_name_resolves_to_its_defining_module() -> None:
    for name in mock_akto.__all__:
        value = getattr(mock_akto, name)
        defined_in = getattr(value, "__module__", None)
        if defined_in is not None and isinstance(value, type):
            assert defined_in == f"mock_akto.{mock_akto._PUBLIC[name]}", name


def test_the_type_checking_imports_name_exactly_the_public_api() -> None:
    tree = ast.parse(Path(mock_akto.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING")
    imported = {(node.module, alias.name) for node in guarded.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == {(module, name) for name, module in mock_akto._PUBLIC.items()}


def test_importing_the_package_does_not_load_the_server_stack() -> None:
    code = "import sys, mock_akto; mock_akto.EngineConfig; print(sorted(m for m in ('uvicorn', 'fastapi') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        mock_akto.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_every_exception_shares_the_base_and_keeps_its_standard_base() -> None:
    classes = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == errors.__name__]
    assert {cls.__name__ for cls in classes} == {n for n, module in mock_akto._PUBLIC.items() if module == "errors"}
    assert all(issubclass(cls, errors.MockAktoError) for cls in classes)
    for cls in (errors.NamespaceError, errors.PolicyLoadError, errors.PresetFileError):
        assert issubclass(cls, ValueError)
    for cls in (errors.RegexTimeout, errors.ListenerError, errors.AdminError):
        assert issubclass(cls, RuntimeError)
    assert issubclass(errors.JournalTimeout, TimeoutError)
    for cls in classes:  # the tree in the module docstring names every class
        assert cls.__name__ in errors.__doc__


def test_fault_registry_is_the_union() -> None:
    from typing import get_args

    from mock_akto.faults import FAULTS, Fault

    (union, _discriminator) = get_args(Fault)
    assert list(get_args(union)) == list(FAULTS.values())
