import json

import pytest

from reference_impl.core.masking import MaskingError, apply_changes, decode_layers, masked_changes


def litellm_payload(body: dict) -> str:
    """LiteLLM v3's double encoding: a JSON string of {"body": "<json string>"}."""
    return json.dumps({"body": json.dumps(body)})


def test_double_encoded_payload_decodes_to_the_inner_body():
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert decode_layers(litellm_payload(body)) == body


def test_masked_leaf_is_applied_and_every_other_field_is_kept():
    request = {"model": "gpt-4o", "temperature": 0.2, "messages": [{"role": "user", "content": "mail me at a@b.io"}]}
    sent = json.dumps({"messages": request["messages"]})
    modified = sent.replace("a@b.io", "[REDACTED_EMAIL]")
    changes = masked_changes(sent, modified)
    assert changes == {("messages", 0, "content"): "mail me at [REDACTED_EMAIL]"}
    masked = apply_changes(request, changes)
    assert masked["messages"][0]["content"] == "mail me at [REDACTED_EMAIL]"
    assert masked["model"] == "gpt-4o" and masked["temperature"] == 0.2
    assert request["messages"][0]["content"] == "mail me at a@b.io", "the original must not be mutated"


def test_masking_through_litellm_double_encoding():
    body = {"model": "m", "messages": [{"role": "user", "content": "card 4111 1111 1111 1111"}]}
    sent = litellm_payload(body)
    modified = sent.replace("4111 1111 1111 1111", "[REDACTED_CARD]")
    assert masked_changes(sent, modified) == {("messages", 0, "content"): "card [REDACTED_CARD]"}


def test_unchanged_payload_gives_no_changes():
    sent = json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    assert masked_changes(sent, sent) == {}


@pytest.mark.parametrize(
    "modified",
    [
        json.dumps({"messages": []}),  # narrowed history
        json.dumps({"messages": [{"role": "user", "content": "x", "extra": "y"}]}),  # new leaf
        "not json at all",
        json.dumps({"messages": [{"role": "user", "content": 5}]}),  # non-text change
    ],
)
def test_structure_changes_are_refused(modified):
    sent = json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    with pytest.raises(MaskingError):
        masked_changes(sent, modified)


def test_change_at_a_path_missing_from_the_traffic_is_refused():
    with pytest.raises(MaskingError, match="no text at"):
        apply_changes({"messages": []}, {("messages", 0, "content"): "x"})
