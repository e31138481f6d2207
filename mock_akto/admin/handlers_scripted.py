"""Admin handlers for the namespace's scripted verdicts (``/__admin/verdicts``)."""

from fastapi import HTTPException

from ..scripted import ScriptedVerdict
from .deps import NS


async def list_verdicts(ns: NS) -> list[ScriptedVerdict]:
    return ns.scripts.list()


async def add_verdict(ns: NS, script: ScriptedVerdict) -> ScriptedVerdict:
    try:
        return ns.scripts.add(script)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


async def delete_verdict(ns: NS, script_id: str) -> None:
    if not ns.scripts.remove(script_id):
        raise HTTPException(404, f"no scripted verdict {script_id!r}")


async def clear_verdicts(ns: NS) -> None:
    ns.scripts.clear()
