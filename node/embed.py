"""Dense retrieval: passage embeddings from a llama.cpp embedding model, fused with BM25.

When ``islandnode index add NAME DIR --embed MODEL`` names an embedding model
(a GGUF file, or a ``[[models]]`` entry by name), building the index also
embeds every passage with llama.cpp (``llama_cpp.Llama(embedding=True)``;
no PyTorch) and stores the unit-length float32 vectors in the index's own
SQLite file (table ``vectors``, keyed by the passage's rowid), with the
model's path and the dimension in its ``meta`` table.

Searching such an index is hybrid: the BM25 ranking of the lexical index and
the cosine ranking of the query's embedding against every stored vector
are merged by reciprocal rank fusion (RRF: ``sum 1 / (RRF_K + rank)``), which
needs no score calibration between the two. An index without vectors stays
lexical; a vector index whose embedding model is gone fails with a clear
error, not quietly lexical.

What this is not: an approximate-nearest-neighbour index (a brute-force
matrix product is exact and fast for the tens of thousands of passages an
island indexes) or the lexical index itself (:mod:`.index`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from islandrun.protocol.messages import DatasetInfo

from .errors import NodeError
from .index import Found, LexicalIndex, Passage, open_indexes

KIND = "hybrid"
#: Reciprocal rank fusion constant (Cormack et al. 2009 use 60).
RRF_K = 60
#: Each ranking contributes this many candidates per result asked for.
CANDIDATES_PER_RESULT = 4
#: Context for embedding one passage (tokens); passages are ~1,000 characters.
EMBED_CONTEXT = 2048


class EmbeddingError(NodeError):
    """An embedding model cannot be loaded or used; the message says which."""


class LlamaEmbedder:
    """Unit-length embeddings from a GGUF model with llama.cpp, loaded on first use.

    Models without a pooling layer return one vector per token; those are
    averaged. Thread safe (one embedding at a time).
    """

    def __init__(self, path: str, loader: Callable[[str], Any] | None = None) -> None:
        self.path = path
        self._loader = loader or _load_llama
        self._llm: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._llm is None:
                self._llm = self._loader(self.path)
            rows = [_pool(self._llm.embed(text)) for text in texts]
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def _load_llama(path: str) -> Any:
    import llama_cpp

    if not Path(path).is_file():
        raise EmbeddingError(f"embedding model {path} does not exist")
    try:
        return llama_cpp.Llama(model_path=path, embedding=True, n_ctx=EMBED_CONTEXT,
                               verbose=False)
    except (ValueError, OSError, RuntimeError) as exc:
        raise EmbeddingError(f"llama.cpp cannot load embedding model {path} ({exc})") from None


def _pool(embedding: Any) -> np.ndarray:
    vector = np.asarray(embedding, dtype=np.float32)
    if vector.ndim == 2:  # one vector per token: mean pooling
        vector = vector.mean(axis=0)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


# ------------------------------------------------------------------- building


def store_vectors(db: sqlite3.Connection, *, embedder: LlamaEmbedder) -> int:
    """Embed every passage in ``db`` (an index being built); the dimension."""
    db.execute("create table vectors(rowid integer primary key, v blob not null)")
    dim = 0
    for rowid, text in db.execute("select rowid, text from passages").fetchall():
        vector = embedder.embed([text])[0]
        dim = len(vector)
        db.execute("insert into vectors values (?, ?)", (rowid, vector.tobytes()))
    db.executemany("insert into meta values (?, ?)",
                   {"embed_path": embedder.path, "dim": str(dim)}.items())
    return dim


# ------------------------------------------------------------------ searching


@dataclass
class HybridIndex:
    """A lexical index plus its passage vectors: BM25 and cosine, fused."""

    lexical: LexicalIndex
    embedder: LlamaEmbedder
    dim: int
    _matrix: tuple[np.ndarray, list[tuple[str, str]]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.lexical.name

    @property
    def documents(self) -> int:
        return self.lexical.documents

    @property
    def passages(self) -> int:
        return self.lexical.passages

    @property
    def path(self) -> Path:
        return self.lexical.path

    def info(self) -> DatasetInfo:
        return DatasetInfo(name=self.name, kind=KIND, documents=self.lexical.documents)

    def search(self, query: str, k: int) -> list[Passage]:
        if k <= 0 or not query.strip():
            return []
        wide = k * CANDIDATES_PER_RESULT
        lexical = self.lexical.search(query, wide)
        dense = self.nearest(query, wide)
        return fuse([lexical, dense], k)

    def nearest(self, query: str, k: int) -> list[Passage]:
        """The ``k`` passages whose vectors are closest to the query's (cosine)."""
        matrix, keys = self._load()
        if not keys:
            return []
        scores = matrix @ self.embedder.embed([query])[0]
        best = np.argsort(-scores)[:k]
        return [Passage(doc=keys[i][0], text=keys[i][1], score=float(scores[i])) for i in best]

    def _load(self) -> tuple[np.ndarray, list[tuple[str, str]]]:
        if self._matrix is None:
            with contextlib.closing(self.lexical.connect()) as db:
                rows = db.execute("select p.doc, p.text, v.v from passages p "
                                  "join vectors v on v.rowid = p.rowid").fetchall()
            keys = [(doc, text) for doc, text, _ in rows]
            matrix = np.stack([np.frombuffer(v, dtype=np.float32) for *_, v in rows]) \
                if rows else np.zeros((0, self.dim), dtype=np.float32)
            self._matrix = (matrix, keys)
        return self._matrix


def fuse(rankings: Sequence[Sequence[Passage]], k: int) -> list[Passage]:
    """Reciprocal rank fusion of passage rankings (best first); a passage's
    score becomes its fused score."""
    scores: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking):
            key = (passage.doc, passage.text)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(key, passage)
    order = sorted(scores, key=lambda key: -scores[key])[:k]
    return [replace(first[key], score=scores[key]) for key in order]


# ------------------------------------------------------------------- the home


def open_retrievers(home: Path) -> Found:
    """:func:`~.index.open_indexes`, with each index that has vectors made hybrid."""
    found = open_indexes(home)
    indexes: dict[str, Any] = {}
    for name, lexical in found.indexes.items():
        with contextlib.closing(lexical.connect()) as db:
            meta = dict(db.execute("select key, value from meta").fetchall())
        path = meta.get("embed_path")
        indexes[name] = lexical if path is None else HybridIndex(
            lexical, LlamaEmbedder(path), int(meta.get("dim", "0")))
    return Found(indexes, found.problems)
