"""The flags of an ``/api/http-proxy`` call: which work it asks for, and for which connector.

The names are written once here; everything that sends, reads, matches or lists a flag uses these.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, get_args

from pydantic import BaseModel

GUARDRAILS = "guardrails"
RESPONSE_GUARDRAILS = "response_guardrails"
INGEST_DATA = "ingest_data"
#: Not an on/off flag: the connector's name, which picks the ``mode`` tag of ingested traffic.
AKTO_CONNECTOR = "akto_connector"

#: A flag that is on or off (``akto_connector`` is a name, not one of these).
FlagName = Literal["guardrails", "response_guardrails", "ingest_data"]
#: The on/off flags the ingestion service binds, in wire order.
FLAG_NAMES: tuple[FlagName, ...] = get_args(FlagName)
#: The wire value that turns a flag on (any case).
FLAG_ON = "true"


def flag_on(value: Any) -> bool:
    """Akto's flag rule: only the string ``true`` (any case, nothing around it: `` true`` is off, as for
    Java's ``Boolean.parseBoolean``) turns a flag on; JSON ``true`` counts too."""
    if value is True:
        return True
    return isinstance(value, str) and value.lower() == FLAG_ON


class Flags(BaseModel):
    """Which work an ``/api/http-proxy`` call asks for. Query parameters win over body fields."""

    guardrails: bool = False
    response_guardrails: bool = False
    ingest_data: bool = False
    akto_connector: str = ""

    @classmethod
    def resolve(cls, query: Mapping[str, str], body: Mapping[str, Any]) -> "Flags":
        def pick(name: str) -> Any:
            return query[name] if name in query else body.get(name)

        connector = pick(AKTO_CONNECTOR)
        return cls(
            guardrails=flag_on(pick(GUARDRAILS)),
            response_guardrails=flag_on(pick(RESPONSE_GUARDRAILS)),
            ingest_data=flag_on(pick(INGEST_DATA)),
            akto_connector=connector if isinstance(connector, str) else "",
        )

    @property
    def any_guardrails(self) -> bool:
        return self.guardrails or self.response_guardrails
