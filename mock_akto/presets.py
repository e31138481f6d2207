"""Apply files: one YAML that sets a namespace's policies and fault rules together (``mock-akto apply``).

    policy_preset: default-policies     # or `policies: [...]` (the policy YAML format)
    faults:                             # FaultRule, exactly as the admin API takes it
      - id: slow
        fault: {type: fixed_delay, ms: 300}
        probability: 0.5
        seed: 7
    verdicts:                           # ScriptedVerdict, exactly as /__admin/verdicts takes it
      - match: {prompt: {contains: wire money}}
        answer: {verdict: {Allowed: false, Reason: fraud, behaviour: block}}

A section that is left out leaves that part of the namespace alone; a section that is present replaces
it (``faults: []`` clears the rules). Bundled apply files live in ``mock_akto/presets/faults/``, apart
from the policy presets, so they never show up as policy presets.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PresetFileError
from .policies import Policy, PolicySet, available_presets, describe_validation_error
from .rules import FaultRule
from .scripted import ScriptedVerdict

FAULT_PRESET_FOLDER = "faults"


class PresetFile(BaseModel):
    """The content of an apply file."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    policies: list[Policy] | None = Field(None, description="replace the namespace's policies with these")
    policy_preset: str | None = Field(None, description="or with a bundled policy preset")
    faults: list[FaultRule] | None = Field(None, description="replace the namespace's fault rules with these")
    verdicts: list[ScriptedVerdict] | None = Field(None, description="replace the namespace's scripted verdicts")

    @model_validator(mode="after")
    def _coherent(self) -> "PresetFile":
        if self.policies is not None and self.policy_preset is not None:
            raise ValueError("give 'policies' or 'policy_preset', not both")
        if self.policies is not None:
            PolicySet(policies=self.policies)  # duplicate names are refused here, before anything is sent
        if self.policy_preset is not None and self.policy_preset not in available_presets():
            raise ValueError(f"unknown policy preset {self.policy_preset!r}; available: {', '.join(available_presets())}")
        for section, items in (("fault rule", self.faults), ("scripted verdict", self.verdicts)):
            ids = [item.id for item in items or []]
            duplicates = sorted({item_id for item_id in ids if ids.count(item_id) > 1})
            if duplicates:
                raise ValueError(f"duplicate {section} id(s): {', '.join(duplicates)}")
        return self


def parse_preset_file(text: str, source: str = "<apply file>") -> PresetFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise PresetFileError(f"{source}:{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise PresetFileError(f"{source}: expected a mapping with 'policies' / 'policy_preset', 'faults' and/or 'verdicts', "
                              f"got {type(data).__name__}")
    try:
        return PresetFile.model_validate(data)
    except ValidationError as exc:
        raise PresetFileError(f"{source}: {describe_validation_error(exc, data)}") from None


def load_preset_file(path: str | Path) -> PresetFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetFileError(f"{path}: cannot read: {exc}") from None
    return parse_preset_file(text, str(path))


def bundled_apply_files() -> list[str]:
    """Names of the bundled apply files (``mock-akto apply --preset NAME``)."""
    folder = resources.files("mock_akto") / "presets" / FAULT_PRESET_FOLDER
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def load_bundled_apply_file(name: str) -> PresetFile:
    if name not in bundled_apply_files():
        raise PresetFileError(f"unknown apply preset {name!r}; available: {', '.join(bundled_apply_files()) or 'none'}")
    text = (resources.files("mock_akto") / "presets" / FAULT_PRESET_FOLDER / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_preset_file(text, f"apply preset {name}")


def rules_from_data(data: Any, source: str) -> list[FaultRule]:
    """Fault rules from a ``fault add --file`` document: one rule mapping, or a list of them."""
    items = data if isinstance(data, list) else [data]
    rules = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PresetFileError(f"{source}: rule {index}: expected a mapping, got {type(item).__name__}")
        try:
            rules.append(FaultRule.model_validate(item))
        except ValidationError as exc:
            where = f"rule {index}: " if isinstance(data, list) else ""
            raise PresetFileError(f"{source}: {where}{describe_validation_error(exc, item)}") from None
    return rules


def load_rules_file(path: str | Path) -> list[FaultRule]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetFileError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise PresetFileError(f"{path}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if isinstance(data, dict) and "faults" in data and "fault" not in data and "sequence" not in data:
        data = data["faults"]  # an apply file's faults section works too
    return rules_from_data(data, str(path))
