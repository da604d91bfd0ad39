"""The tiny test model: deterministic bytes, a real tokenizer, real llama.cpp."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from islandrun.node import tinymodel
from islandrun.node.tinymodel import TinyModelError, TinyShape

ROOT = Path(__file__).resolve().parent.parent


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_weights(tiny_model: Path, tmp_path: Path) -> None:
    vocab = tinymodel.ensure_vocab()
    again = tinymodel.build_tiny_model(vocab, tmp_path / "again.gguf", seed=0)
    assert digest(again) == digest(tiny_model)
    small = TinyShape(embedding=16, heads=2, feed_forward=32, blocks=1)
    one = tinymodel.build_tiny_model(vocab, tmp_path / "one.gguf", seed=1, shape=small)
    two = tinymodel.build_tiny_model(vocab, tmp_path / "two.gguf", seed=2, shape=small)
    assert digest(one) != digest(two) and one.stat().st_size == two.stat().st_size


def test_about_17_mb_with_llamas_real_tokenizer(tiny_model: Path) -> None:
    import llama_cpp

    assert 15 * 2**20 < tiny_model.stat().st_size < 19 * 2**20
    llm = llama_cpp.Llama(str(tiny_model), n_ctx=256, n_threads=1, verbose=False)
    assert llm.n_vocab() == 32000
    # Reference ids from llama.cpp's own tokenizer tests (ggml-vocab-llama-spm.gguf.out).
    assert llm.tokenize(b"Hello world") == [1, 15043, 3186]
    assert llm.tokenize(b" Hello, world!", add_bos=False) == [29871, 15043, 29892, 3186, 29991]
    out = llm.create_completion("Once upon a time", max_tokens=8, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1


def test_cached_vocab_is_used_without_fetching(tmp_path: Path) -> None:
    cached = tmp_path / tinymodel.VOCAB_FILE
    cached.write_bytes(b"cached")
    assert tinymodel.ensure_vocab(tmp_path) == cached


def test_sdist_without_the_vocab_file_is_a_clear_error(tmp_path: Path) -> None:
    sdist = tmp_path / "llama_cpp_python-0.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("llama_cpp_python-0.0.0/README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(TinyModelError, match=r"has no vendor/llama.cpp/models/.*--vocab"):
        tinymodel._extract_vocab(sdist, tmp_path / "vocab.gguf")
    assert not (tmp_path / "vocab.gguf").exists()


def test_not_a_vocabulary(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(TinyModelError, match="not a readable GGUF"):
        tinymodel.build_tiny_model(junk, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.slow
def test_script_writes_the_model(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "script.gguf"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_gguf.py"), str(out), "--seed", "0"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "MiB" in done.stdout and digest(out) == digest(tiny_model)
