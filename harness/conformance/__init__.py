"""``akto-harness conformance``: the scenario catalogue against a connector described by a target
(a LiteLLM config.yaml, a mitmproxy addon file, a guardrail endpoint URL, or a shipped reference
connector), judged by a profile of expected failures, reported as JUnit XML, Markdown and an HTML matrix."""
