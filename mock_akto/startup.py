"""Start-up state: what ``mock-akto serve --state PATH`` loads before it listens (WireMock's root dir), so a
container or a CI job starts already scripted.

``PATH`` is one apply file (:mod:`mock_akto.presets`: ``policies`` or ``policy_preset``, ``faults``,
``verdicts``) or a folder of them (``*.yaml``, ``*.yml``, ``*.json``, read in name order: fault rules and
scripted verdicts add up; at most one file may set the policies). Every namespace starts from this state,
and ``reset`` returns to it. A ``down`` fault is refused here: it closes listener ports, which only a
running engine's admin API should do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import PresetFileError
from .faults import Down
from .policies import PolicySet, load_preset
from .presets import load_preset_file
from .rules import FaultRule
from .scripted import ScriptedVerdict

STATE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class StartupState:
    policies: PolicySet | None = None
    rules: list[FaultRule] = field(default_factory=list)
    scripts: list[ScriptedVerdict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.policies.policies)} policies" if self.policies is not None else "default policies",
                 f"{len(self.rules)} fault rule(s)", f"{len(self.scripts)} scripted verdict(s)"]
        return ", ".join(parts) + f" from {len(self.sources)} file(s)"


def state_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in STATE_SUFFIXES)
        if not files:
            raise PresetFileError(f"{path}: no {', '.join(STATE_SUFFIXES)} files in this folder")
        return files
    if not path.exists():
        raise PresetFileError(f"{path}: no such file or folder")
    return [path]


def load_state(path: str | Path) -> StartupState:
    """The state in a file or folder; :class:`PresetFileError` naming the file and the problem."""
    state = StartupState()
    policy_source: str | None = None
    for file in state_files(Path(path)):
        preset = load_preset_file(file)
        if preset.policies is not None or preset.policy_preset is not None:
            if policy_source is not None:
                raise PresetFileError(f"{file}: sets the policies, but {policy_source} already did (one file may)")
            policy_source = str(file)
            state.policies = (PolicySet(policies=preset.policies) if preset.policies is not None
                              else load_preset(preset.policy_preset or ""))
        for rule in preset.faults or []:
            if isinstance(rule.fault, Down) or any(isinstance(step, Down) for step in rule.sequence or []):
                raise PresetFileError(f"{file}: fault rule {rule.id}: 'down' cannot be a start-up rule "
                                      "(add it through the admin API once the engine runs)")
            state.rules.append(rule)
        state.scripts.extend(preset.verdicts or [])
        state.sources.append(str(file))
    for kind, ids in (("fault rule", [r.id for r in state.rules]), ("scripted verdict", [s.id for s in state.scripts])):
        duplicates = sorted({item for item in ids if ids.count(item) > 1})
        if duplicates:
            raise PresetFileError(f"{path}: duplicate {kind} id(s) across files: {', '.join(duplicates)}")
    return state
