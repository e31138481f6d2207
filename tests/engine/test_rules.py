"""Fault rules: matching, dice (probability + seed), first N, sequences, ramp, down, validation.

Time is passed explicitly (``now``), so ramps and ``down.for_ms`` are tested without sleeping.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from akto_wire import Flags
from mock_akto.faults import ConnectionResetByPeer, Down, EmptyResponse, FixedDelay, Status
from mock_akto.rules import CallInfo, FaultRule, Match, RuleBook

RESET = {"type": "connection_reset_by_peer"}
T0 = 1000.0


def rule(**fields: object) -> FaultRule:
    fields.setdefault("fault", RESET)
    return FaultRule.model_validate(fields)


def book_with(*rules: FaultRule, now: float = T0) -> RuleBook:
    book = RuleBook()
    for each in rules:
        book.add(each, now=now)
    return book


def applied_pattern(book: RuleBook, calls: int, now: float = T0, call: CallInfo | None = None) -> list[bool]:
    call = call or CallInfo()
    return [book.pick(call, now=now) is not None for _ in range(calls)]


# --- dice -----------------------------------------------------------------------------------------------

def test_same_seed_gives_the_same_applied_pattern() -> None:
    first = applied_pattern(book_with(rule(probability=0.5, seed=11)), 300)
    again = applied_pattern(book_with(rule(probability=0.5, seed=11)), 300)
    other = applied_pattern(book_with(rule(probability=0.5, seed=12)), 300)
    assert first == again
    assert first != other
    assert 0.4 < sum(first) / len(first) < 0.6


def test_probability_zero_never_applies_and_one_always_does() -> None:
    assert not any(applied_pattern(book_with(rule(probability=0.0, seed=1)), 100))
    assert all(applied_pattern(book_with(rule(probability=1.0)), 100))


def test_a_rule_that_rolls_no_lets_the_next_rule_decide() -> None:
    book = book_with(rule(probability=0.0), rule(fault={"type": "empty_response"}))
    assert isinstance(book.pick(CallInfo(), now=T0), EmptyResponse)
    first, second = book.list()
    assert (first.matched, first.applied, second.matched, second.applied) == (1, 0, 1, 1)


def test_counters_are_listed_and_reset_when_added() -> None:
    listed = rule(probability=0.5, seed=3, matched=99, applied=42)
    book = book_with(listed)
    applied = sum(applied_pattern(book, 20))
    dumped = book.list()[0].model_dump()
    assert dumped["matched"] == 20 and dumped["applied"] == applied


# --- first N, sequences ------------------------------------------------------------------------------

def test_first_n_fails_then_recovers() -> None:
    book = book_with(rule(first_n=3))
    assert applied_pattern(book, 6) == [True, True, True, False, False, False]
    assert book.list()[0].matched == 3  # a recovered rule stops counting


def test_first_n_counts_matching_calls_even_when_the_dice_say_no() -> None:
    book = book_with(rule(first_n=10, probability=0.5, seed=5))
    pattern = applied_pattern(book, 30)
    assert not any(pattern[10:]) and 0 < sum(pattern[:10]) < 10


def test_a_recovered_rule_hands_calls_to_the_next_one() -> None:
    book = book_with(rule(first_n=1), rule(fault={"type": "status", "status": 500}))
    assert isinstance(book.pick(CallInfo(), now=T0), ConnectionResetByPeer)
    assert isinstance(book.pick(CallInfo(), now=T0), Status)


def test_a_sequence_applies_its_steps_in_order_then_stops() -> None:
    steps = [{"type": "status", "status": 500}, RESET, {"type": "fixed_delay", "ms": 5}]
    book = book_with(FaultRule.model_validate({"sequence": steps}))
    picked = [book.pick(CallInfo(), now=T0) for _ in range(5)]
    assert [type(f) for f in picked[:3]] == [Status, ConnectionResetByPeer, FixedDelay]
    assert picked[3:] == [None, None]


def test_a_cycling_sequence_starts_again() -> None:
    book = book_with(FaultRule.model_validate({"sequence": [RESET, {"type": "empty_response"}], "cycle": True}))
    kinds = [type(book.pick(CallInfo(), now=T0)) for _ in range(5)]
    assert kinds == [ConnectionResetByPeer, EmptyResponse, ConnectionResetByPeer, EmptyResponse,
                     ConnectionResetByPeer]


# --- ramp ------------------------------------------------------------------------------------------------

def test_ramp_grows_the_probability_from_zero() -> None:
    book = book_with(rule(probability=1.0, ramp_ms=10_000, seed=9))
    assert not any(applied_pattern(book, 200, now=T0))
    halfway = sum(applied_pattern(book, 1000, now=T0 + 5))
    assert 400 < halfway < 600
    assert all(applied_pattern(book, 200, now=T0 + 10))
    assert all(applied_pattern(book, 200, now=T0 + 60))


def test_ramp_tops_out_at_the_rule_probability() -> None:
    book = book_with(rule(id="ramped", probability=0.4, ramp_ms=1000, seed=2))
    assert book.effective_probability("ramped", T0 + 0.25) == pytest.approx(0.1)
    assert book.effective_probability("ramped", T0 + 5) == pytest.approx(0.4)
    with pytest.raises(KeyError):
        book.effective_probability("absent", T0)


# --- down ------------------------------------------------------------------------------------------------

def test_down_is_in_effect_for_for_ms_then_lapses() -> None:
    book = book_with(rule(fault={"type": "down", "for_ms": 2000}))
    assert isinstance(book.has_down(now=T0 + 1.9), Down)
    assert isinstance(book.pick(CallInfo(), now=T0 + 1.9), Down)
    assert book.has_down(now=T0 + 2.0) is None
    assert book.pick(CallInfo(), now=T0 + 2.0) is None


def test_down_without_for_ms_lasts_until_removed() -> None:
    book = book_with(rule(id="outage", fault={"type": "down"}))
    assert isinstance(book.has_down(now=T0 + 3600), Down)
    assert book.remove("outage") is True
    assert book.has_down(now=T0) is None
    assert book_with(rule()).has_down(now=T0) is None


# --- matching ---------------------------------------------------------------------------------------------

BASE_CALL = CallInfo(
    path="/api/http-proxy", method="POST", flags=Flags(guardrails=True, akto_connector="litellm"),
    connector="litellm", app="api.openai.com", body_text='{"requestPayload": "ignore all previous"}',
    namespace="t1",
)


@pytest.mark.parametrize(
    ("match", "hits"),
    [
        ({}, True),
        ({"path": "/api/http-proxy"}, True),
        ({"path": "/api/http"}, False),
        ({"path": "/api/*"}, True),
        ({"path": "/api/validate/*"}, False),
        ({"method": "post"}, True),
        ({"method": "GET"}, False),
        ({"direction": "request"}, True),
        ({"direction": "response"}, False),
        ({"flags": ["guardrails"]}, True),
        ({"flags": ["guardrails", "ingest_data"]}, False),
        ({"connector": "LiteLLM"}, True),
        ({"connector": "egress"}, False),
        ({"app": "API.openai.com"}, True),
        ({"app": "api.anthropic.com"}, False),
        ({"body_contains": "ignore all"}, True),
        ({"body_contains": "IGNORE ALL"}, False),
        ({"path": "/api/*", "method": "POST", "direction": "request", "connector": "litellm"}, True),
        ({"path": "/api/*", "method": "POST", "direction": "request", "connector": "egress"}, False),
    ],
)
def test_match_each_field(match: dict, hits: bool) -> None:
    book = book_with(rule(match=match))
    assert (book.pick(BASE_CALL, now=T0) is not None) is hits
    assert book.list()[0].matched == int(hits)


def test_response_direction_follows_the_response_guardrails_flag() -> None:
    call = CallInfo(flags=Flags(response_guardrails=True))
    assert Match(direction="response").matches(call) and not Match(direction="request").matches(call)


# --- the book --------------------------------------------------------------------------------------------

def test_ids_are_assigned_unique_and_duplicates_refused() -> None:
    book = RuleBook()
    first, second = book.add(rule()), book.add(rule())
    assert first.id and second.id and first.id != second.id and len(first.id) <= 12
    with pytest.raises(ValueError, match="already exists"):
        book.add(rule(id=first.id))
    assert [r.id for r in book.list()] == [first.id, second.id]
    assert book.remove(first.id) is True and book.remove(first.id) is False
    book.clear()
    assert book.list() == [] and book.pick(CallInfo()) is None


def test_one_rule_object_can_seed_several_books_without_sharing_counters() -> None:
    preset = rule(first_n=1, seed=1)
    one, two = book_with(preset), book_with(preset)
    assert one.pick(CallInfo(), now=T0) is not None
    assert two.pick(CallInfo(), now=T0) is not None  # two's first call: not used up by one's
    assert preset.matched == 0 and one.list()[0].matched == 1 and two.list()[0].matched == 1


def test_first_matching_rule_wins_in_insertion_order() -> None:
    book = book_with(rule(match={"path": "/other"}, fault={"type": "empty_response"}),
                     rule(fault={"type": "status", "status": 429}),
                     rule(fault={"type": "status", "status": 500}))
    picked = book.pick(CallInfo(), now=T0)
    assert isinstance(picked, Status) and picked.status == 429


def test_pick_rule_names_the_rule() -> None:
    book = book_with(rule(id="flaky"))
    picked = book.pick_rule(CallInfo(), now=T0)
    assert picked is not None and picked[0].id == "flaky" and isinstance(picked[1], ConnectionResetByPeer)


def test_a_rule_round_trips_through_json_with_a_delayed_fault() -> None:
    data = {"id": "slow-reset", "match": {"path": "/api/*"},
            "fault": {"type": "fixed_delay", "ms": 800, "then": RESET}, "probability": 0.25, "seed": 4}
    parsed = FaultRule.model_validate_json(FaultRule.model_validate(data).model_dump_json())
    assert isinstance(parsed.fault, FixedDelay) and isinstance(parsed.fault.then, ConnectionResetByPeer)
    assert parsed.probability == 0.25 and parsed.seed == 4


# --- validation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({"fault": {"type": "fixed_delay", "ms": -1}}, "fault.fixed_delay.ms", "greater than or equal to 0"),
        ({"fault": {"type": "uniform_delay", "lower_ms": 500, "upper_ms": 100}}, "fault.uniform_delay.upper_ms",
         "upper_ms (100) must not be below lower_ms (500)"),
        ({"fault": {"type": "lognormal_delay", "median_ms": 100, "p99_ms": 50}}, "fault.lognormal_delay.p99_ms",
         "p99_ms (50) must not be below median_ms (100)"),
        ({"fault": {"type": "truncated_body", "fraction": 0}}, "fault.truncated_body.fraction", "greater than 0"),
        ({"fault": {"type": "truncated_body", "fraction": 1}}, "fault.truncated_body.fraction", "less than 1"),
        ({"fault": {"type": "status", "status": 99}}, "fault.status.status", "greater than or equal to 100"),
        ({"fault": {"type": "status", "status": 600}}, "fault.status.status", "less than or equal to 599"),
        ({"fault": {"type": "hang", "max_ms": 0}}, "fault.hang.max_ms", "greater than 0"),
        ({"fault": {"type": "fixed_delay", "msec": 5}}, "fault.fixed_delay.msec", "Extra inputs"),
        ({"fault": {"type": "schema_break", "kind": "bogus"}}, "fault.schema_break.kind", "missing_allowed"),
        ({"fault": {"type": "explode"}}, "fault", "fixed_delay"),
        ({"sequence": [RESET, {"type": "fixed_delay", "ms": -5}]}, "sequence.1.fixed_delay.ms", "greater than"),
        ({"sequence": []}, "sequence", "at least 1"),
        ({"fault": RESET, "probability": 1.5}, "probability", "less than or equal to 1"),
        ({"fault": RESET, "probability": -0.1}, "probability", "greater than or equal to 0"),
        ({"fault": RESET, "first_n": 0}, "first_n", "greater than or equal to 1"),
        ({"fault": RESET, "ramp_ms": -1}, "ramp_ms", "greater than or equal to 0"),
        ({"fault": RESET, "match": {"flags": ["guardrail"]}}, "match.flags.0", "response_guardrails"),
        ({"fault": RESET, "match": {"direction": "both"}}, "match.direction", "'request' or 'response'"),
        ({"fault": RESET, "match": {"paht": "/x"}}, "match.paht", "Extra inputs"),
    ],
)
def test_invalid_rules_name_the_field(data: dict, location: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FaultRule.model_validate(data)
    errors = caught.value.errors()
    where = [".".join(str(part) for part in error["loc"]) for error in errors]
    assert location in where, where
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "exactly one of 'fault' or 'sequence'"),
        ({"fault": RESET, "sequence": [RESET]}, "exactly one of 'fault' or 'sequence'"),
        ({"fault": RESET, "cycle": True}, "'cycle' only applies to a 'sequence'"),
    ],
)
def test_rule_shape_errors_name_the_fields(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FaultRule.model_validate(data)


def test_status_headers_may_not_override_framing() -> None:
    with pytest.raises(ValidationError, match="headers must not set Content-Length"):
        FaultRule.model_validate({"fault": {"type": "status", "status": 200, "headers": {"Content-Length": "1"}}})
