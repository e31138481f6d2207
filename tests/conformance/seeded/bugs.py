"""The seeded bugs: which scenario catches each first, and the symptom its failure message must name.

The kill-rate test runs every bug's catching scenario first and stops at the first outcome that differs
from the shipped ``litellm`` profile.
"""

from __future__ import annotations

from typing import NamedTuple


class SeededBug(NamedTuple):
    #: The class in seeded_guardrails.py carrying the bug.
    name: str
    #: The scenario that catches it (run first).
    caught_by: str
    #: Text the failure message must contain: the bug's symptom as the scenario reports it.
    symptom: str


BUGS: tuple[SeededBug, ...] = (
    SeededBug("FailsOpenOnTimeout", "hang-fail-closed", "status: expected 503, got 200"),
    SeededBug("FailsOpenOnAuth", "engine-401-fail-open", "status: expected 503, got 200"),
    SeededBug("ServerErrorFailsOpen", "status-500-fail-closed", "status: expected 503, got 200"),
    SeededBug("UnreachableIsBlock", "down-fail-closed", "status: expected 503, got 403"),
    SeededBug("IgnoresFailOpen", "down-fail-open", "status: expected 200, got 503"),
    SeededBug("NoTimeout", "slow-fail-closed", "latency: answered after"),
    SeededBug("PerReadTimeout", "dribble-fail-closed", "latency: answered after"),
    SeededBug("MissingAllowedIsAllow", "missing-allowed-fail-closed", "status: expected 503, got 200"),
    SeededBug("StringBooleans", "wrong-types-fail-closed", "status: expected 503"),
    SeededBug("IgnoresContentType", "wrong-content-type-fail-closed", "status: expected 503, got 200"),
    SeededBug("ReadsOnlyCapitalisedBehaviour", "alert", "status: expected 200, got 403"),
    SeededBug("ReadsOnlyLowercaseBehaviour", "capitalised-behaviour-alert", "status: expected 200, got 403"),
    SeededBug("GatewayFailOpenIsAllow", "gateway-fail-open-verdict", "status: expected 503, got 200"),
    SeededBug("LegacyPayloadField", "block", "status: expected 403"),
    SeededBug("IngestsOnTheCheck", "block", "journal: no engine call matching {'flags': {'guardrails': True, 'ingest_data': False}}"),
    SeededBug("AlertIsBlock", "alert", "status: expected 200, got 403"),
    SeededBug("WarnIsBlock", "warn", "status: expected 200, got 403"),
    SeededBug("RetriesBlock", "block", "journal: expected 2 engine call(s), got 4"),
    SeededBug("BlocksStreamBeforeChecking", "stream-allow", "status: expected 200, got 403"),
    SeededBug("DropsBlockedIngest", "block", "ingest: expected 1 record(s), got 0"),
    SeededBug("NoPostCallIngest", "allow", "ingest: expected 1 record(s), got 0"),
    SeededBug("IgnoresModified", "modify-pii", "'jane.doe@example.com' reached the LLM"),
    SeededBug("PastesModifiedPayload", "modify-pii", "'jane.doe@example.com' reached the LLM"),
    SeededBug("ForwardsUnmappableMask", "modify-unmappable", "status: expected 403, got 200"),
    SeededBug("LeaksAuthorization", "credentials-not-leaked", "requestHeaders"),
    SeededBug("HardCodedAccountIds", "ids-configured", "akto_account_id '1000000'"),
)
