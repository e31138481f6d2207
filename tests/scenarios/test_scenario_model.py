"""The scenario files and their model: every shipped file loads, and a bad field is named precisely."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.connectors import registry
from harness.scenarios.model import Scenario, ScenarioError, load_file, load_scenarios
from harness.scenarios.pytest_support import SCENARIO_DIR, group_name
from harness.scenarios.report import junit_xml, markdown_matrix
from harness.scenarios.runner import ScenarioResult

MINIMAL = "description: d\ntraffic: {prompt: hi}\nexpect: {default: {status: 200}}\n"


def write(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_scenario_loads_with_unique_names() -> None:
    scenarios = load_scenarios(SCENARIO_DIR)
    assert len(scenarios) >= 50
    assert len({s.name for s in scenarios}) == len(scenarios)
    for scenario in scenarios:
        expected = scenario.expect.default
        assert expected.status is not None, f"{scenario.name}: every scenario states the status"
        assert expected.llm_called is not None, f"{scenario.name}: every scenario states whether the LLM is called"


def test_single_file_takes_its_name_from_the_file(tmp_path: Path) -> None:
    [scenario] = load_file(write(tmp_path, MINIMAL, "my-case.yaml"))
    assert scenario.name == "my-case" and scenario.traffic.chat_messages() == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace("status: 200", "stauts: 200"), "expect.default.stauts: unknown field"),
        (MINIMAL + "conector: {}\n", "conector: unknown field"),
        (MINIMAL.replace("{default:", "{litelm: {}, default:"), "unknown connector 'litelm'"),
        (MINIMAL.replace("{prompt: hi}", "{prompt: hi, messages: []}"), "traffic: give exactly one of prompt or messages"),
        (MINIMAL + "connector: {fail_mode: fail_sometimes}\n", "connector.fail_mode"),
        (MINIMAL + "engine: {faults: [{type: no_such_fault}]}\n", "engine.faults.0"),
        (MINIMAL + "connector: {timeout_s: 0}\n", "connector.timeout_s"),
        (("- " + MINIMAL.replace("\n", "\n  ").rstrip() + "\n") * 2, "case.yaml[0]: name: Field required"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert str(path) in str(caught.value) or "case.yaml" in str(caught.value)
    assert message in str(caught.value), str(caught.value)


def test_connector_overrides_merge_field_by_field() -> None:
    scenario = Scenario.model_validate({
        "name": "x", "description": "d", "traffic": {"prompt": "p"},
        "expect": {"default": {"status": 503, "llm_called": False}, "litellm-builtin": {"xfail": "gap", "status": 200}},
    })
    merged = scenario.expect.for_connector("litellm-builtin")
    assert (merged.status, merged.llm_called, merged.xfail) == (200, False, "gap")
    assert scenario.expect.for_connector("litellm").xfail is None


def test_the_registry_lists_the_four_connectors_each_described_once() -> None:
    assert registry.names() == ["egress", "litellm", "litellm-builtin", "truefoundry"]
    for connector in registry.connectors():
        assert registry.get(connector.name) is connector
        assert connector.host and connector.profile == connector.name
        assert connector.answers.passed == 200 and connector.answers.unreachable == 503
    assert [registry.get(n).answers.blocked for n in registry.names()] == [403, 403, 400, 400]


def test_an_unknown_connector_name_is_refused_with_the_registered_names() -> None:
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate({"name": "x", "description": "d", "traffic": {"prompt": "p"},
                                 "expect": {"litelm": {"status": 200}}})
    assert "unknown connector 'litelm' (known: egress, litellm, litellm-builtin, truefoundry)" in str(caught.value)
    with pytest.raises(registry.UnknownConnector, match="registered: egress, litellm, litellm-builtin, truefoundry"):
        registry.get("litelm")


def test_a_second_class_cannot_take_a_registered_name() -> None:
    from harness.connectors.base import Answers, Connector

    class Impostor(Connector):
        name = "litellm"
        host = "nowhere"
        answers = Answers(blocked=403, unreachable=503)

        def start(self, config, engine, llm):  # pragma: no cover - never started
            raise AssertionError

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)
    assert type(registry.get("litellm")).__name__ == "LiteLLMConnector"


def test_tagging_marks_the_last_user_message_only() -> None:
    scenario = Scenario.model_validate({
        "name": "x", "description": "d", "expect": {},
        "traffic": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
    })
    tagged = scenario.traffic.tagged("abc")
    assert tagged.chat_messages() == [{"role": "system", "content": "s"}, {"role": "user", "content": "u [ref abc]"}]
    assert scenario.traffic.chat_messages()[1]["content"] == "u"  # the original is untouched


def test_instances_group_by_connector_config() -> None:
    a, b = load_scenarios(SCENARIO_DIR, "hang-fail-*")
    assert group_name("litellm", a.connector) != group_name("litellm", b.connector)
    closed = [s for s in load_scenarios(SCENARIO_DIR, "*-fail-closed") if s.connector.timeout_s == 1]
    assert len({group_name("litellm", s.connector) for s in closed}) == 1


def test_reports_show_every_outcome() -> None:
    results = [
        ScenarioResult("allow", "litellm", "passed", elapsed_ms=12),
        ScenarioResult("allow", "litellm-builtin", "xfailed", problems=["journal: x"], reason="records twice"),
        ScenarioResult("block", "litellm", "failed", problems=["status: expected 403, got 200"]),
        ScenarioResult("block", "litellm-builtin", "skipped", reason="n/a"),
    ]
    matrix = markdown_matrix(results, {"allow": "A harmless prompt."})
    assert "| allow | ✅ pass | ⚠️ known gap [1] |" in matrix
    assert "| block | ❌ FAIL [2] | ⏭ skip [3] |" in matrix
    assert "records twice" in matrix and "status: expected 403, got 200" in matrix
    suite = ET.fromstring(junit_xml(results))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    failed = suite.find("testcase[@name='block'][@classname='litellm']/failure")
    assert failed is not None and "expected 403" in failed.get("message", "")


@pytest.mark.parametrize("traffic", ["{api: mcp, provider: anthropic, prompt: hi}", "{api: mcp, stream: true, prompt: hi}"])
def test_mcp_traffic_is_an_openai_style_call_without_stream(tmp_path: Path, traffic: str) -> None:
    with pytest.raises(ScenarioError, match="api: mcp goes with provider openai, without stream"):
        load_file(write(tmp_path, MINIMAL.replace("{prompt: hi}", traffic)))


def test_mcp_scenarios_need_a_connector_that_guards_mcp() -> None:
    mcp = [s for s in load_scenarios(SCENARIO_DIR) if s.traffic.api == "mcp"]
    assert len(mcp) == 4 and all(s.connector.mcp for s in mcp)
