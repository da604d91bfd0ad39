"""Benchmark MIST on the two PII sets in shared/data/pii; prints ONE JSON line.

Figures: ``recall_asq`` / ``recall_presidio`` (a gold span counts as caught when any
detected entity overlaps it), ``overredaction_asq`` (share of ASQ-PHI's PHI-free queries
rated confidential or above) and ``ms_per_kb`` (median milliseconds per 1 KB prompt
for detection plus sanitization, one thread). When ``presidio_analyzer`` is importable,
its figures are added under ``presidio_*`` keys. Usage: ``python bench/mist.py [DATA]``.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from islandrun.node import mist

Spans = list[tuple[int, int]]
Detector = Callable[[str], Spans]
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pii"


def load_asq(path: Path) -> list[tuple[str, Spans]]:
    """ASQ-PHI queries with gold spans found by searching each tagged value."""
    samples = []
    for block in path.read_text(encoding="utf-8").split("===QUERY===")[1:]:
        query, _, tags = block.partition("===PHI_TAGS===")
        text = query.strip()
        spans: Spans = []
        for line in tags.strip().splitlines():
            value = json.loads(line)["value"]
            spans += _occurrences(text, value)
        samples.append((text, spans))
    return samples


def _occurrences(text: str, value: str) -> Spans:
    found, start = [], text.find(value)
    while value and start >= 0:
        found.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return found


def load_presidio(path: Path) -> list[tuple[str, Spans]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        (s["full_text"], [(x["start_position"], x["end_position"]) for x in s["spans"]])
        for s in data
    ]


def recall(samples: Iterable[tuple[str, Spans]], detect: Detector) -> float:
    caught = total = 0
    for text, gold in samples:
        found = detect(text)
        total += len(gold)
        caught += sum(any(s < e2 and s2 < e for s2, e2 in found) for s, e in gold)
    return caught / total


def mist_spans(text: str) -> Spans:
    return [(e.start, e.end) for e in mist.analyze(text).entities]


def prompts_1kb(texts: list[str]) -> list[str]:
    """Consecutive samples joined into prompts of about 1 KB (1024 UTF-8 bytes)."""
    prompts, current = [], ""
    for t in texts:
        current = f"{current}\n{t}" if current else t
        if len(current.encode()) >= 1024:
            prompts.append(current)
            current = ""
    return prompts


def ms_per_kb(prompts: list[str], work: Callable[[str], object]) -> float:
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        work(p)
        times.append((time.perf_counter() - t0) * 1000 / (len(p.encode()) / 1024))
    return round(statistics.median(times), 3)


def presidio_figures(asq: list, pres: list, negatives: list[str], prompts: list[str]) -> dict:
    try:
        from presidio_analyzer import AnalyzerEngine
    except ImportError:
        return {}
    engine = AnalyzerEngine()

    def detect(text: str) -> Spans:
        return [(r.start, r.end) for r in engine.analyze(text=text, language="en")]

    return {
        "presidio_recall_asq": round(recall(asq, detect), 4),
        "presidio_recall_presidio": round(recall(pres, detect), 4),
        "presidio_flagged_negatives": sum(bool(detect(q)) for q in negatives),
        "presidio_ms_per_kb": ms_per_kb(prompts[:100], detect),
    }


def main(data: Path) -> dict:
    asq = load_asq(data / "asq-phi" / "synthetic_clinical_queries.txt")
    pres = load_presidio(data / "presidio-research" / "synth_dataset_v2.json")
    negatives = [t for t, gold in asq if not gold]
    flagged = sum(mist.analyze(q).level >= mist.Level.CONFIDENTIAL for q in negatives)
    texts = [t for t, _ in asq] + [t for t, _ in pres]
    random.Random(0).shuffle(texts)
    prompts = prompts_1kb(texts)
    vault = mist.Vault(random.Random(0))
    figures = {
        "recall_asq": round(recall(asq, mist_spans), 4),
        "recall_presidio": round(recall(pres, mist_spans), 4),
        "overredaction_asq": round(flagged / len(negatives), 4),
        "ms_per_kb": ms_per_kb(prompts, lambda p: mist.sanitize(p, vault)),
        "negatives": len(negatives),
        "prompts_1kb": len(prompts),
    }
    figures.update(presidio_figures(asq, pres, negatives, prompts))
    return figures


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)))
