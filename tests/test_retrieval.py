"""Retrieval on the island holding the dataset: passages in front, or a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from islandrun.node import index, waves
from islandrun.node.dispatch import local_snapshot
from islandrun.node.executor import EchoExecutor, Emit, Usage
from islandrun.node.retrieval import DatasetMissing, RetrievalExecutor, with_passages
from islandrun.node.waves_inputs import RouteRequest
from islandrun.protocol import messages as m
from tests.waves_helpers import IDLE, island


class Recorder:
    """An executor that keeps the requests it was given and answers "ok"."""

    def __init__(self) -> None:
        self.seen: list[m.InferenceRequest] = []

    def models(self) -> tuple[m.ModelInfo, ...]:
        return (m.ModelInfo(name="rec", context=4096),)

    async def run(self, request: m.InferenceRequest, emit: Emit) -> Usage:
        self.seen.append(request)
        await emit("ok")
        return Usage(prompt_tokens=1, completion_tokens=1)


def request(
    text: str, dataset: str | None, history: tuple[m.ChatMessage, ...] = ()
) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r1", messages=(*history, m.ChatMessage(role=m.Role.USER, content=text)),
        dataset=dataset, deadline=1e10,
    )


@pytest.fixture
def caselaw(tmp_path: Path) -> dict[str, index.LexicalIndex]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "smith.txt").write_text("Smith v Jones: deposits are returned within thirty days.")
    (docs / "acme.txt").write_text("Acme breached the supply contract.")
    index.build_index(tmp_path / "home", "caselaw", docs)
    return index.open_indexes(tmp_path / "home").indexes


async def collect(executor: RetrievalExecutor, req: m.InferenceRequest) -> str:
    out: list[str] = []

    async def emit(text: str) -> None:
        out.append(text)

    await executor.run(req, emit)
    return "".join(out)


async def test_passages_are_put_in_front_as_a_system_message(caselaw: dict) -> None:
    inner = Recorder()
    wrapped = RetrievalExecutor(inner, caselaw)
    earlier = (m.ChatMessage(role=m.Role.USER, content="hi"),
               m.ChatMessage(role=m.Role.ASSISTANT, content="hello"))
    question = "when are deposits returned?"
    assert await collect(wrapped, request(question, "caselaw", earlier)) == "ok"
    (seen,) = inner.seen
    first = seen.messages[0]
    assert first.role is m.Role.SYSTEM
    assert "[1] smith.txt:" in first.content and "thirty days" in first.content
    assert "Acme" not in first.content.split("[2]")[0]
    assert seen.messages[1:] == (*earlier, m.ChatMessage(role=m.Role.USER, content=question))


async def test_no_match_still_says_so_to_the_model(caselaw: dict) -> None:
    inner = Recorder()
    await collect(RetrievalExecutor(inner, caselaw), request("zebra", "caselaw"))
    assert "No passage" in inner.seen[0].messages[0].content


async def test_requests_without_a_dataset_pass_through_untouched(caselaw: dict) -> None:
    inner = Recorder()
    req = request("when are deposits returned?", None)
    await collect(RetrievalExecutor(inner, caselaw), req)
    assert inner.seen == [req]


async def test_a_dataset_not_held_here_is_refused_never_answered(caselaw: dict) -> None:
    inner = Recorder()
    held = r"'medical' is not held on this island \(held: caselaw\)"
    with pytest.raises(DatasetMissing, match=held):
        await collect(RetrievalExecutor(inner, caselaw), request("x", "medical"))
    with pytest.raises(DatasetMissing, match=r"held: none"):
        await collect(RetrievalExecutor(inner, {}), request("x", "caselaw"))
    assert inner.seen == []


async def test_echo_counts_the_injected_passages_as_prompt(caselaw: dict) -> None:
    """What the process test relies on: injection shows in prompt_tokens."""
    plain = await EchoExecutor().run(request("deposits returned", None), _drop)
    wrapped = RetrievalExecutor(EchoExecutor(), caselaw)
    injected = await wrapped.run(request("deposits returned", "caselaw"), _drop)
    assert injected.prompt_tokens > plain.prompt_tokens + 5


async def _drop(_: str) -> None:
    return None


def test_datasets_and_models_for_the_advert(caselaw: dict) -> None:
    wrapped = RetrievalExecutor(Recorder(), caselaw)
    assert wrapped.datasets() == (m.DatasetInfo(name="caselaw", kind="lexical", documents=2),)
    assert wrapped.models() == Recorder().models()


def test_a_full_history_keeps_its_latest_messages() -> None:
    history = tuple(m.ChatMessage(role=m.Role.USER, content=str(i))
                    for i in range(m.MAX_HISTORY - 1))
    req = request("last", "d", history)
    out = with_passages(req, [index.Passage(doc="a", text="t", score=1.0)])
    assert len(out.messages) == m.MAX_HISTORY
    assert out.messages[-1].content == "last" and out.messages[1].content == "1"


def test_waves_routes_a_dataset_request_to_the_local_holder_only() -> None:
    here = local_snapshot("here", "here", (m.ModelInfo(name="m", context=10),), IDLE,
                          (m.DatasetInfo(name="caselaw"),))
    assert here.datasets == frozenset({"caselaw"})
    other = island("other")
    route = RouteRequest(request_id="r", client_id="c", datasets=frozenset({"caselaw"}))
    decision = waves.decide(route, 0.0, [other, here], waves.RoutePolicy(), IDLE)
    assert decision.island is not None and decision.island.device_id == "here"
    nowhere = RouteRequest(request_id="r", client_id="c", datasets=frozenset({"medical"}))
    refused = waves.decide(nowhere, 0.0, [other, here], waves.RoutePolicy(), IDLE)
    assert refused.island is None and "dataset" in refused.reason
