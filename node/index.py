"""Retrieval indexes: named, searchable collections of this island's documents.

The paper's data locality (section III-F, Scenario 3) says a request about a
dataset runs on the island that holds it, and the documents never leave that
island. This module is the "holds it" part: ``islandnode index add NAME DIR``
turns a directory of text-like files into ``<home>/indexes/NAME.sqlite``
(mode 0600), an SQLite FTS5 full-text index searched with BM25 ranking. A
running node finds the indexes there when it starts and names them in its
advert (:class:`~islandrun.protocol.messages.DatasetInfo`).

Building is bounded (:class:`IndexLimits`: file size, file count, chunk
size) and tolerant: binary or undecodable files are skipped and counted,
never fatal. Searching is safe for any input: the user's text is reduced to
word tokens, each quoted, so FTS5's query syntax (``AND``, ``NEAR``,
``col:``, ``*``, unbalanced quotes) is never interpreted.

What this module is not: it does not inject passages into prompts (that is
``retrieval``), and it computes no embeddings: :mod:`.embed` adds passage
vectors to an index being built and searches BM25 and vectors together.
"""

from __future__ import annotations

import contextlib
import html
import html.parser
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from islandrun.protocol.messages import DatasetInfo

from .errors import NodeError

log = logging.getLogger("islandrun.node.index")

INDEX_DIR = "indexes"
SUFFIX = ".sqlite"
KIND = "lexical"
#: Schema version stored in each index; bump when the layout changes.
SCHEMA = "1"
TEXT_TYPES = frozenset({".txt", ".md", ".rst", ".csv", ".json", ".html", ".htm"})
#: Index names become file names and advert fields: keep them plain.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: At most this many query words are searched (the rest are ignored).
MAX_QUERY_TOKENS = 32
#: Query text beyond this many characters is ignored before tokenising.
MAX_QUERY_CHARS = 4096
#: Bytes read to decide whether a file is binary (a NUL byte means yes).
SNIFF_BYTES = 8192


class DatasetError(NodeError):
    """An index cannot be built, opened or removed; the message says why."""


@dataclass(frozen=True, slots=True)
class IndexLimits:
    """Bounds on what one build reads and how it cuts documents."""

    #: Larger files are skipped (bytes): a log dump is not a document.
    max_file_bytes: int = 4 * 1024 * 1024
    #: Files indexed at most; the build stops there and reports truncation.
    max_files: int = 20_000
    #: Characters per passage: a few passages must fit a small model's context.
    chunk_chars: int = 800
    #: Characters shared by neighbouring passages, so a sentence cut at a
    #: boundary is still whole in one of them.
    overlap_chars: int = 150

    def __post_init__(self) -> None:
        if not 0 <= self.overlap_chars < self.chunk_chars // 2:
            raise DatasetError("overlap_chars must be below half of chunk_chars")


@dataclass(slots=True)
class BuildReport:
    """What a build indexed and what it skipped (counts only, no contents)."""

    documents: int = 0
    passages: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_type: int = 0
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Passage:
    """One search hit: the document (path relative to the indexed directory),
    the passage text, and its BM25 relevance (higher is better)."""

    doc: str
    text: str
    score: float


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise DatasetError(
            f"index name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def index_path(home: Path, name: str) -> Path:
    return home / INDEX_DIR / f"{validate_name(name)}{SUFFIX}"


# -------------------------------------------------------------------- reading


_HIDDEN_TAGS = ("script", "style")


class _TextOfHtml(html.parser.HTMLParser):
    """The visible text of an HTML page (script and style dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def strip_html(text: str) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(text)
        parser.close()
    except AssertionError:  # CPython's parser asserts on malformed <![...]> sections
        return html.unescape(re.sub(r"<[^>]*>", " ", text))
    return " ".join(parser.parts)


def _read_text(path: Path, limits: IndexLimits, report: BuildReport) -> str | None:
    """The file's text, or None (counted in ``report``) if it is not a document."""
    if path.suffix.lower() not in TEXT_TYPES:
        report.skipped_type += 1
        return None
    try:
        if path.stat().st_size > limits.max_file_bytes:
            report.skipped_large += 1
            return None
        data = path.read_bytes()
    except OSError:
        report.skipped_binary += 1  # unreadable counts with undecodable
        return None
    text = _decode(data)
    if text is None:
        report.skipped_binary += 1
        return None
    if path.suffix.lower() in (".html", ".htm"):
        text = strip_html(text)
    return " ".join(text.split())


def _decode(data: bytes) -> str | None:
    """UTF-8 text, or None for binary (a NUL byte early on) or undecodable bytes."""
    if b"\0" in data[:SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _files(directory: Path) -> Iterator[Path]:
    """Regular files under ``directory``, sorted, hidden ones and symlinks skipped."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                yield path


def chunk(text: str, size: int, overlap: int) -> list[str]:
    """Cut ``text`` into passages of at most ``size`` characters, at spaces
    where one falls in the second half, neighbours sharing ``overlap``."""
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > 0 else end
        out.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [c for c in out if c]


# ------------------------------------------------------------------- building


def build_index(
    home: Path, name: str, directory: Path, *, replace: bool = False,
    limits: IndexLimits | None = None,
    extend: Callable[[sqlite3.Connection], object] | None = None,
) -> BuildReport:
    """Index the text-like files under ``directory`` as ``name`` in ``home``.

    The index is written to a temporary file and renamed into place, so a
    running node or a failed build never sees half an index. ``extend`` runs
    on the finished index before the rename (``embed.store_vectors``).
    """
    limits = limits or IndexLimits()
    target = index_path(home, name)
    if not directory.is_dir():
        raise DatasetError(f"{directory} is not a directory")
    if target.exists() and not replace:
        raise DatasetError(f"an index named {name!r} exists; pass --replace to rebuild it")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)  # mkstemp made it 0600; SQLite writes into the empty file
    try:
        report = _write(Path(tmp), name, directory, limits)
        if extend is not None:
            with contextlib.closing(sqlite3.connect(tmp)) as db, db:
                extend(db)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return report


def _write(path: Path, name: str, directory: Path, limits: IndexLimits) -> BuildReport:
    report = BuildReport()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("create table meta(key text primary key, value text not null)")
        db.execute("create virtual table passages using fts5("
                   "doc unindexed, text, tokenize='porter unicode61 remove_diacritics 2')")
        for file in _files(directory):
            if report.documents >= limits.max_files:
                report.truncated = True
                break
            text = _read_text(file, limits, report)
            if not text:
                continue
            doc = file.relative_to(directory).as_posix()
            rows = [(doc, p) for p in chunk(text, limits.chunk_chars, limits.overlap_chars)]
            db.executemany("insert into passages(doc, text) values (?, ?)", rows)
            report.documents += 1
            report.passages += len(rows)
        meta = {"schema": SCHEMA, "name": name, "kind": KIND,
                "documents": str(report.documents), "passages": str(report.passages)}
        db.executemany("insert into meta values (?, ?)", meta.items())
    return report


# ------------------------------------------------------------------ searching


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for ``text``: its words, quoted, OR-ed.

    None when there is no word to search for. Quoting every token means no
    user input is ever read as FTS5 syntax.
    """
    words = re.findall(r"\w+", text[:MAX_QUERY_CHARS])[:MAX_QUERY_TOKENS]
    return " OR ".join(f'"{w}"' for w in words) or None


@dataclass(frozen=True, slots=True)
class LexicalIndex:
    """A built index on disk; searches open their own read-only connection
    (so searches may run in worker threads)."""

    name: str
    path: Path
    documents: int
    passages: int

    @classmethod
    def open(cls, path: Path) -> LexicalIndex:
        try:
            with contextlib.closing(_connect(path)) as db:
                meta = dict(db.execute("select key, value from meta").fetchall())
        except sqlite3.Error as exc:
            raise DatasetError(f"{path.name} is not a readable index ({exc}); "
                              "rebuild it with `islandnode index add NAME DIR --replace`") from None
        if meta.get("schema") != SCHEMA or meta.get("kind") != KIND:
            raise DatasetError(f"{path.name} has an unknown index layout; rebuild it")
        return cls(name=path.name.removesuffix(SUFFIX), path=path,
                   documents=int(meta["documents"]), passages=int(meta["passages"]))

    def info(self) -> DatasetInfo:
        return DatasetInfo(name=self.name, kind=KIND, documents=self.documents)

    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the index file (the caller closes it)."""
        return _connect(self.path)

    def search(self, query: str, k: int) -> list[Passage]:
        """The ``k`` passages most relevant to ``query`` (BM25), best first."""
        match = fts_query(query)
        if match is None or k <= 0:
            return []
        try:
            with contextlib.closing(_connect(self.path)) as db:
                rows = db.execute(
                    "select doc, text, bm25(passages) from passages where passages match ? "
                    "order by bm25(passages) limit ?", (match, k),
                ).fetchall()
        except sqlite3.Error as exc:
            raise DatasetError(f"index {self.name!r} cannot be searched ({exc})") from None
        # SQLite's bm25() is lower-is-better; a Passage's score is higher-is-better.
        return [Passage(doc=d, text=t, score=-s) for d, t, s in rows]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# ------------------------------------------------------------------- the home


@dataclass(frozen=True, slots=True)
class Found:
    """The indexes of a home that open, and one line per file that did not."""

    indexes: dict[str, LexicalIndex] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def open_indexes(home: Path) -> Found:
    """Every index under ``<home>/indexes``, by name."""
    indexes, problems = {}, []
    for path in sorted((home / INDEX_DIR).glob(f"*{SUFFIX}")):
        try:
            index = LexicalIndex.open(path)
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        indexes[index.name] = index
    return Found(indexes, tuple(problems))


def remove_index(home: Path, name: str) -> None:
    path = index_path(home, name)
    try:
        path.unlink()
    except FileNotFoundError:
        have = ", ".join(open_indexes(home).indexes) or "none"
        raise DatasetError(f"no index named {name!r} (have: {have})") from None
