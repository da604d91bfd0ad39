"""Retrieval indexes: building from a directory, BM25 search, bounds, the CLI."""

from __future__ import annotations

import itertools
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandrun.node import cli, index
from islandrun.node.index import DatasetError, IndexLimits, LexicalIndex

CASES = {
    "smith.txt": "Smith v Jones: the tenant's deposit must be returned within thirty days.",
    "notes/acme.md": "# Acme\nAcme Corp breached the supply contract by late delivery.",
    "page.html": "<html><style>.x{}</style><script>var hidden = 1;</script>"
                 "<p>Negligence requires a duty of care &amp; a breach.</p></html>",
    "table.csv": "case,year\nDonoghue v Stevenson,1932\n",
}


def write_docs(root: Path, docs: dict[str, str | bytes]) -> Path:
    for rel, body in docs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
    return root


@pytest.fixture
def built(tmp_path: Path) -> LexicalIndex:
    docs = write_docs(tmp_path / "docs", dict(CASES))
    index.build_index(tmp_path / "home", "caselaw", docs)
    return index.open_indexes(tmp_path / "home").indexes["caselaw"]


def test_search_ranks_the_relevant_document_first(built: LexicalIndex) -> None:
    hits = built.search("when is a deposit returned to the tenant?", 3)
    assert hits[0].doc == "smith.txt" and "thirty days" in hits[0].text
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert built.search("contract delivery", 1)[0].doc == "notes/acme.md"
    assert built.search("Donoghue", 5)[0].doc == "table.csv"


def test_stemming_matches_word_forms(built: LexicalIndex) -> None:
    assert built.search("breaching contracts", 1)[0].doc == "notes/acme.md"


def test_html_is_indexed_as_its_visible_text(built: LexicalIndex) -> None:
    hit = built.search("duty of care", 1)[0]
    assert hit.doc == "page.html" and "duty of care & a breach" in hit.text
    assert "<p>" not in hit.text and built.search("hidden", 5) == []


@pytest.mark.parametrize("page", ["<![foo bar <p>kept", "<!DOCTYPE", "<a href='x", "</b>kept",
                                  "<script>never closed", "&#99999999;kept"])
def test_malformed_html_never_breaks_a_build(page: str) -> None:
    text = index.strip_html(page)
    assert "<p>" not in text and ("kept" in text) == ("kept" in page)


def test_info_names_the_dataset(built: LexicalIndex) -> None:
    info = built.info()
    assert (info.name, info.kind, info.documents) == ("caselaw", "lexical", 4)


@pytest.mark.parametrize("query", [
    '"', 'deposit"', "NEAR(a b)", "text: deposit", "deposit*", "AND OR NOT", "^deposit",
    "(((", "-deposit", "doc:smith", "{text}: x", "deposit + \0 ;", "",
    "'; drop table passages; --",
])
def test_fts5_syntax_in_queries_is_never_interpreted(built: LexicalIndex, query: str) -> None:
    hits = built.search(query, 3)
    assert all(isinstance(h.text, str) for h in hits)
    if "deposit" in query:
        assert hits and hits[0].doc == "smith.txt"
    assert built.search("deposit", 1)  # and the index is intact


@given(st.text(max_size=200))
def test_any_text_is_a_safe_query(query: str) -> None:
    expression = index.fts_query(query)
    assert expression is None or all(
        part.startswith('"') and part.endswith('"') and part.count('"') == 2
        for part in expression.split(" OR ")
    )


def test_binary_undecodable_large_and_other_files_are_skipped(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", {
        "ok.txt": "plain words here",
        "nul.txt": b"text with a \0 NUL byte",
        "latin1.txt": "caf\u00e9".encode("latin-1"),
        "big.md": "x" * 2000,
        "photo.png": b"\x89PNG\r\n",
        ".hidden.txt": "secret hidden file",
    })
    report = index.build_index(tmp_path / "home", "mixed", docs,
                               limits=IndexLimits(max_file_bytes=1000))
    assert (report.documents, report.skipped_binary, report.skipped_large,
            report.skipped_type) == (1, 2, 1, 1)
    found = index.open_indexes(tmp_path / "home").indexes["mixed"]
    assert found.search("secret hidden", 5) == []


def test_file_count_bound_truncates(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", {f"d{i}.txt": f"doc {i}" for i in range(5)})
    report = index.build_index(tmp_path / "home", "few", docs, limits=IndexLimits(max_files=3))
    assert report.documents == 3 and report.truncated


def test_long_documents_are_chunked_with_overlap(tmp_path: Path) -> None:
    words = " ".join(f"w{i}" for i in range(1000))
    docs = write_docs(tmp_path / "docs", {"long.txt": words})
    limits = IndexLimits(chunk_chars=200, overlap_chars=40)
    report = index.build_index(tmp_path / "home", "long", docs, limits=limits)
    assert report.passages > len(words) // 200
    hits = index.open_indexes(tmp_path / "home").indexes["long"].search("w500", 5)
    assert hits and all(len(h.text) <= 200 for h in hits)


def test_chunks_cover_the_text_at_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(300))
    chunks = index.chunk(text, 100, 20)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split().count("word299") >= 1
    assert set(text.split()) <= {w for c in chunks for w in c.split()}
    assert index.chunk("", 100, 20) == []


def test_index_file_is_private_and_replace_is_explicit(tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", {"a.txt": "alpha"})
    home = tmp_path / "home"
    index.build_index(home, "ds", docs)
    path = index.index_path(home, "ds")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(DatasetError, match="--replace"):
        index.build_index(home, "ds", docs)
    write_docs(docs, {"b.txt": "beta"})
    assert index.build_index(home, "ds", docs, replace=True).documents == 2
    assert [p.name for p in path.parent.iterdir()] == ["ds.sqlite"]  # no temp file left


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetError, match="index name"):
        index.build_index(tmp_path / "home", name, tmp_path)


def test_missing_directory_and_damaged_index(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(DatasetError, match="not a directory"):
        index.build_index(home, "ds", tmp_path / "nope")
    (home / "indexes").mkdir(parents=True)
    (home / "indexes" / "bad.sqlite").write_bytes(b"not a database at all" * 10)
    found = index.open_indexes(home)
    assert found.indexes == {} and "bad.sqlite" in found.problems[0]
    with pytest.raises(DatasetError, match="no index named 'gone'"):
        index.remove_index(home, "gone")


def test_cli_add_list_remove(home: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    docs = write_docs(tmp_path / "docs", {**CASES, "x.bin": b"\0\1"})
    run = lambda *a: cli.main(["--home", str(home), "index", *a])  # noqa: E731
    assert run() == 0 and "no indexes" in capsys.readouterr().out
    assert run("add", "caselaw", str(docs)) == 0
    out = capsys.readouterr().out
    assert "indexed 4 documents" in out and "1 not text" in out
    assert run("add", "caselaw", str(docs)) == 1
    assert "--replace" in capsys.readouterr().err
    assert run("list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(x["name"], x["kind"], x["documents"]) for x in listed] == [("caselaw", "lexical", 4)]
    assert run("remove", "caselaw") == 0 and run("list") == 0
    assert "no indexes" in capsys.readouterr().out
