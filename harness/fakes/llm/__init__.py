"""A fake OpenAI / Anthropic provider that connectors under test forward to, scriptable at run time.

    with FakeLLMServer() as llm:
        llm.client.update_script(reply="call me at 555-0100", first_byte_ms=200)
        ...  # point the connector at llm.url + "/v1" (OpenAI) or llm.url (Anthropic)
        assert llm.client.last_request().json_body["model"] == "gpt-4o-mini"
"""

from harness.fakes.llm.app import create_app
from harness.fakes.llm.client import FakeLLMClient, FakeLLMError
from harness.fakes.llm.script import InjectedError, RecordedRequest, Script
from harness.fakes.llm.server import FakeLLMServer

__all__ = ["FakeLLMClient", "FakeLLMError", "FakeLLMServer", "InjectedError", "RecordedRequest", "Script", "create_app"]
