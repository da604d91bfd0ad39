"""HORIZON's OpenAI wire format: request body, SSE decoding, chunks, Retry-After (pure)."""

from __future__ import annotations

import json

import pytest

from islandrun.node.horizon_wire import (
    CloudError,
    CloudProtocolError,
    Piece,
    SSEDecoder,
    TokenUsage,
    chat_body,
    error_code,
    parse_chunk,
    parse_completion,
    retry_after,
)
from islandrun.protocol import messages as m

STREAM = (
    b": comment\n\n"
    b'data: {"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}\r\n\r\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
EVENTS = [
    '{"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}',
    '{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}',
    '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}',
    "[DONE]",
]


def test_chat_body_asks_for_a_stream_with_usage() -> None:
    request = m.InferenceRequest(
        request_id="r", deadline=1.0, max_tokens=42, temperature=0.2,
        messages=(m.ChatMessage(role=m.Role.SYSTEM, content="be brief"),
                  m.ChatMessage(role=m.Role.USER, content="hi")),
    )
    body = chat_body(request, "gpt-x")
    assert body == {
        "model": "gpt-x",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 42, "temperature": 0.2, "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "stream_options" not in chat_body(request, "gpt-x", stream=False)


def test_sse_whole_buffer() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) + decoder.close() == EVENTS


def test_sse_byte_by_byte() -> None:
    decoder = SSEDecoder()
    events = [e for i in range(len(STREAM)) for e in decoder.feed(STREAM[i : i + 1])]
    assert events + decoder.close() == EVENTS


def test_sse_multi_line_data_and_unterminated_last_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: x\ndata: a\ndata:b\nid: 1\n\ndata: tail") == ["a\nb"]
    assert decoder.close() == ["tail"]


def test_sse_line_limit() -> None:
    decoder = SSEDecoder(max_line=10)
    with pytest.raises(CloudProtocolError, match="longer than 10 bytes"):
        decoder.feed(b"data: " + b"x" * 20)


def test_parse_chunk() -> None:
    assert parse_chunk(EVENTS[0]) == Piece("Hel", None, None)
    assert parse_chunk(EVENTS[1]) == Piece("lo", "stop", None)
    assert parse_chunk(EVENTS[2]) == Piece(usage=TokenUsage(3, 2))
    assert parse_chunk('{"choices":[{"delta":{"role":"assistant"}}]}') == Piece()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"choices": 3}', "choices must be a list"),
        ('{"choices":[{"delta":{"content":5}}]}', "content must be a string"),
        ('{"choices":[{"delta":{},"finish_reason":7}]}', "finish_reason"),
        ('{"usage":{"prompt_tokens":-1,"completion_tokens":2}}', "usage"),
    ],
)
def test_bad_chunks_are_our_error_without_quoting(data: str, words: str) -> None:
    with pytest.raises(CloudProtocolError, match=words) as info:
        parse_chunk(data)
    assert data not in str(info.value)


def test_error_in_stream_names_only_a_safe_code() -> None:
    secret = "Incorrect API key provided: sk-abc...wxyz"
    data = json.dumps({"error": {"message": secret, "code": "invalid_api_key"}})
    with pytest.raises(CloudError, match=r"\(code invalid_api_key\)") as info:
        parse_chunk(data)
    assert "sk-abc" not in str(info.value)
    assert error_code(data.encode()) == " (code invalid_api_key)"
    assert error_code(b'{"error": {"code": "not a code! sk-1"}}') == ""
    assert error_code(b"<html>") == ""


def test_parse_completion() -> None:
    body = {"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    assert parse_completion(json.dumps(body).encode()) == Piece("hi", "length", TokenUsage(1, 1))
    with pytest.raises(CloudProtocolError, match="no choices"):
        parse_completion(b'{"choices": []}')


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # now is 07:28:00
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert retry_after(value, now=1445412480.0) == expected
