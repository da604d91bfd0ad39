"""Retrieval on the island that holds the data (paper section III-F).

:class:`RetrievalExecutor` wraps this island's executor. A request that
names a dataset (``InferenceRequest.dataset``, the API's
``"islandrun": {"dataset": ...}``) is searched against that dataset's index
*here*; the best passages are put in front of the conversation as a system
message, and the wrapped executor answers. Only the answer leaves the
island: the passages go no further than the local model. WAVES already sends
such a request only to islands whose advert lists the dataset; if one still
arrives here without it (a stale advert, a forced ``--peer``), it is refused
with :class:`DatasetMissing` -- never answered without the data.

What this module is not: it builds no index (``index``) and routes nothing
(``waves``). Any object with ``info()`` and a blocking ``search(query, k)``
serves as an index (:class:`Retriever`); searches run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

import trio

from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.messages import (
    MAX_HISTORY,
    ChatMessage,
    DatasetInfo,
    InferenceRequest,
    ModelInfo,
    Role,
)

from .executor import Emit, Executor, Usage
from .index import Passage

#: Passages put in front of a request: enough to answer from, few enough
#: (with the index's ~800-character passages) for a small context window.
TOP_K = 4


class Retriever(Protocol):
    def info(self) -> DatasetInfo:
        """The dataset as the advert names it."""
        ...

    def search(self, query: str, k: int) -> list[Passage]:
        """The ``k`` passages most relevant to ``query``, best first (blocking)."""
        ...


class DatasetMissing(IslandRunError):
    """A request names a dataset this island does not hold."""


class RetrievalExecutor:
    """``inner``, with a dataset's passages in front of requests that name one."""

    def __init__(
        self, inner: Executor, indexes: Mapping[str, Retriever], *, k: int = TOP_K
    ) -> None:
        self._inner, self._indexes, self._k = inner, dict(indexes), k

    def models(self) -> tuple[ModelInfo, ...]:
        return self._inner.models()

    def set_indexes(self, indexes: Mapping[str, Retriever]) -> None:
        """Hold ``indexes`` from now on (``node.reload``)."""
        self._indexes = dict(indexes)

    def datasets(self) -> tuple[DatasetInfo, ...]:
        """The datasets held here, for the advert."""
        return tuple(index.info() for _, index in sorted(self._indexes.items()))

    async def run(self, request: InferenceRequest, emit: Emit) -> Usage:
        if request.dataset is None:
            return await self._inner.run(request, emit)
        index = self._indexes.get(request.dataset)
        if index is None:
            held = ", ".join(sorted(self._indexes)) or "none"
            raise DatasetMissing(
                f"dataset {request.dataset!r} is not held on this island (held: {held}); "
                "the request was not answered without it"
            )
        passages = await trio.to_thread.run_sync(index.search, _question(request), self._k)
        return await self._inner.run(with_passages(request, passages), emit)


def _question(request: InferenceRequest) -> str:
    """What to search for: the latest user message."""
    return next((x.content for x in reversed(request.messages) if x.role is Role.USER), "")


def with_passages(request: InferenceRequest, passages: Sequence[Passage]) -> InferenceRequest:
    """``request`` with a system message holding ``passages`` in front."""
    name = request.dataset
    if passages:
        cited = "\n\n".join(f"[{i}] {p.doc}:\n{p.text}" for i, p in enumerate(passages, 1))
        text = (f"Answer from these passages of the dataset {name!r}; cite them by number, "
                f"and say so if they do not hold the answer.\n\n{cited}")
    else:
        text = (f"No passage of the dataset {name!r} matches this question; "
                "say that the dataset does not hold the answer.")
    history = request.messages[-(MAX_HISTORY - 1):]  # room for ours: the oldest one goes
    return replace(request, messages=(ChatMessage(role=Role.SYSTEM, content=text), *history))
