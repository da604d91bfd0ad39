"""Dense retrieval: passage vectors from llama.cpp (the tiny random model), hybrid search.

The tiny model's weights are random, so its vectors carry no meaning; these
tests check the mechanics: vectors stored with the model's dimension, an
exact duplicate of a passage finds it through cosine alone, rank fusion,
and indexes without vectors staying lexical.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from islandrun.node import cli, embed, index
from islandrun.node.embed import EmbeddingError, HybridIndex, LlamaEmbedder, fuse
from islandrun.node.index import Passage

from .test_index import CASES, write_docs


@pytest.fixture(scope="module")
def embedder(tiny_model: Path) -> LlamaEmbedder:
    return LlamaEmbedder(str(tiny_model))


def build(tmp_path: Path, embedder: LlamaEmbedder | None) -> Path:
    home = tmp_path / "home"
    docs = write_docs(tmp_path / "docs", dict(CASES))
    extend = None if embedder is None else (lambda db: embed.store_vectors(db, embedder=embedder))
    index.build_index(home, "caselaw", docs, extend=extend)
    return home


def test_every_passage_gets_a_unit_vector_of_the_model_dimension(
    tmp_path: Path, embedder: LlamaEmbedder
) -> None:
    home = build(tmp_path, embedder)
    with sqlite3.connect(index.index_path(home, "caselaw")) as db:
        passages = db.execute("select count(*) from passages").fetchone()[0]
        blobs = [v for (v,) in db.execute("select v from vectors")]
        meta = dict(db.execute("select key, value from meta"))
    assert len(blobs) == passages == 4
    vectors = [np.frombuffer(b, dtype=np.float32) for b in blobs]
    assert {len(v) for v in vectors} == {int(meta["dim"])} == {128}  # the tiny model's width
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-4 for v in vectors)


def test_an_exact_duplicate_finds_its_passage_by_cosine(
    tmp_path: Path, embedder: LlamaEmbedder
) -> None:
    found = embed.open_retrievers(build(tmp_path, embedder))
    hybrid = found.indexes["caselaw"]
    assert isinstance(hybrid, HybridIndex) and hybrid.info().kind == "hybrid"
    with sqlite3.connect(hybrid.path) as db:
        texts = [t for (t,) in db.execute("select text from passages")]
    for text in texts:
        best = hybrid.nearest(text, 4)[0]
        assert best.text == text and best.score == pytest.approx(1.0, abs=1e-4)
        assert hybrid.search(text, 2)[0].text == text


def test_without_vectors_an_index_stays_lexical(tmp_path: Path) -> None:
    found = embed.open_retrievers(build(tmp_path, None))
    assert found.indexes["caselaw"].info().kind == "lexical"


def test_rank_fusion_rewards_agreement() -> None:
    a, b, c = (Passage(doc=d, text=d, score=0.0) for d in "abc")
    fused = fuse([[a, b, c], [b, c]], 3)
    assert [p.doc for p in fused] == ["b", "c", "a"]  # found twice beats first once
    assert fused[0].score == pytest.approx(1 / (embed.RRF_K + 2) + 1 / (embed.RRF_K + 1))


def test_a_missing_embedding_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="does not exist"):
        LlamaEmbedder(str(tmp_path / "absent.gguf")).embed(["x"])


def test_cli_add_with_embed(home: Path, tmp_path: Path, tiny_model: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    docs = write_docs(tmp_path / "docs", dict(CASES))
    run = lambda *a: cli.main(["--home", str(home), "index", *a])  # noqa: E731
    assert run("add", "caselaw", str(docs), "--embed", "no-such-model") == 1
    assert "no such model" in capsys.readouterr().err
    assert run("add", "caselaw", str(docs), "--embed", str(tiny_model)) == 0
    capsys.readouterr()
    assert run("list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(x["name"], x["kind"]) for x in listed] == [("caselaw", "hybrid")]
