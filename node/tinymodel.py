"""The tiny test model: a small random-weight llama GGUF with a real tokenizer.

Tests, benchmarks and the demo need real llama.cpp generation without a
multi-gigabyte download. This module writes a complete llama-architecture
GGUF file (about 17 MB) whose tokenizer is real -- the 32,000-token
SentencePiece vocabulary of LLaMA, taken from the vocab-only file
``vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf`` in the
llama-cpp-python source distribution -- and whose weights are random,
drawn from a seeded generator, so the same seed always gives the same bytes.
It loads in well under a second and generates tokens at full llama.cpp
speed; the text it generates is gibberish.

The built llama-cpp-python wheel does not ship the vocab files, so
:func:`ensure_vocab` fetches the source distribution once with ``pip
download`` (pip's cache usually makes that fast), extracts the one file and
keeps it in a cache directory.

What this is not: a model anyone should ask questions. Real users point
``[[models]]`` in their config at their own GGUF files.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import platformdirs

from .errors import NodeError

VOCAB_FILE = "ggml-vocab-llama-spm.gguf"
VOCAB_MEMBER = f"vendor/llama.cpp/models/{VOCAB_FILE}"
DEMO_MODEL_FILE = "tiny-llama.gguf"
DEMO_MODEL_NAME = "tiny-llama"
#: Tokenizer keys copied from the vocab-only file.
_TOKENIZER_PREFIX = "tokenizer."


class TinyModelError(NodeError):
    """The tiny model could not be made (usually: no tokenizer vocabulary)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TinyShape:
    """Hyper-parameters of the generated model.

    The token embedding and output matrices (vocab x ``embedding``, f16)
    dominate the size: 2 x 32,000 x 128 x 2 bytes = 16.4 MB; each block adds
    about 0.3 MB.
    """

    #: Width of the residual stream.
    embedding: int = 128
    #: Transformer blocks.
    blocks: int = 2
    #: Attention heads (also key/value heads: no grouped-query attention).
    heads: int = 4
    #: Hidden width of the feed-forward layers.
    feed_forward: int = 256
    #: Context length the model claims to have been trained for (tokens).
    context: int = 2048
    #: Standard deviation of the random weights; small keeps activations sane.
    scale: float = 0.02


def default_cache_dir() -> Path:
    """Where the extracted vocabulary is kept (the per-user cache dir)."""
    return Path(platformdirs.user_cache_dir("islandrun", appauthor=False))


def ensure_vocab(cache_dir: Path | None = None) -> Path:
    """The vocab-only GGUF, fetched from the llama-cpp-python sdist once."""
    cache = cache_dir or default_cache_dir()
    path = cache / VOCAB_FILE
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".sdist-") as tmp:
        sdist = _download_sdist(Path(tmp))
        _extract_vocab(sdist, path)
    return path


def _download_sdist(into: Path) -> Path:
    version = importlib.metadata.version("llama-cpp-python")
    command = [
        sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
        "--quiet", f"llama-cpp-python=={version}", "-d", str(into),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _no_vocab(f"pip download failed ({exc})") from None
    found = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise _no_vocab(f"pip download failed: {last}")
    return found[0]


def _extract_vocab(sdist: Path, dest: Path) -> None:
    try:
        with tarfile.open(sdist) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(VOCAB_MEMBER)), None)
            source = tar.extractfile(member) if member else None
            if source is None:
                raise _no_vocab(f"{sdist.name} has no {VOCAB_MEMBER}")
            partial = dest.with_suffix(".part")
            partial.write_bytes(source.read())
            partial.replace(dest)
    except (OSError, tarfile.TarError) as exc:
        raise _no_vocab(f"cannot read {sdist.name}: {exc}") from None


def _no_vocab(why: str) -> TinyModelError:
    return TinyModelError(
        f"cannot get the tokenizer vocabulary for the tiny model: {why}. Download the "
        f"llama-cpp-python source distribution and pass its {VOCAB_MEMBER} with --vocab"
    )


def build_tiny_model(
    vocab: Path, out: Path, *, seed: int = 0, shape: TinyShape = TinyShape()
) -> Path:
    """Write a random-weight llama GGUF at ``out``; same seed, same bytes."""
    try:
        reader = gguf.GGUFReader(vocab)
    except (OSError, ValueError) as exc:
        raise TinyModelError(f"{vocab} is not a readable GGUF vocabulary: {exc}") from None
    tokenizer = {k: f for k, f in reader.fields.items() if k.startswith(_TOKENIZER_PREFIX)}
    if "tokenizer.ggml.tokens" not in tokenizer:
        raise TinyModelError(f"{vocab} has no tokenizer.ggml.tokens; use {VOCAB_FILE}")
    n_vocab = len(tokenizer["tokenizer.ggml.tokens"].contents())
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part")
    writer = gguf.GGUFWriter(partial, "llama")
    _write_hparams(writer, shape, n_vocab)
    for key, field in tokenizer.items():
        writer.add_key_value(key, field.contents(), field.types[0], field.types[-1])
    for name, array in _weights(shape, n_vocab, np.random.default_rng(seed)):
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out


def _write_hparams(writer: gguf.GGUFWriter, shape: TinyShape, n_vocab: int) -> None:
    writer.add_name("islandrun tiny random llama")
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.embedding)
    writer.add_block_count(shape.blocks)
    writer.add_feed_forward_length(shape.feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.heads)
    writer.add_rope_dimension_count(shape.embedding // shape.heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)


def _weights(
    shape: TinyShape, n_vocab: int, rng: np.random.Generator
) -> list[tuple[str, np.ndarray]]:
    """Tensors in llama.cpp's naming; numpy shapes are (rows=out, cols=in)."""
    d, ff = shape.embedding, shape.feed_forward

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * shape.scale).astype(
            np.float16
        )

    def norm() -> np.ndarray:
        return np.ones(d, dtype=np.float32)

    tensors = [("token_embd.weight", matrix(n_vocab, d))]
    for i in range(shape.blocks):
        tensors += [
            (f"blk.{i}.attn_norm.weight", norm()),
            (f"blk.{i}.attn_q.weight", matrix(d, d)),
            (f"blk.{i}.attn_k.weight", matrix(d, d)),
            (f"blk.{i}.attn_v.weight", matrix(d, d)),
            (f"blk.{i}.attn_output.weight", matrix(d, d)),
            (f"blk.{i}.ffn_norm.weight", norm()),
            (f"blk.{i}.ffn_gate.weight", matrix(ff, d)),
            (f"blk.{i}.ffn_up.weight", matrix(ff, d)),
            (f"blk.{i}.ffn_down.weight", matrix(d, ff)),
        ]
    tensors += [("output_norm.weight", norm()), ("output.weight", matrix(n_vocab, d))]
    return tensors


def make_tiny_model(out: Path, *, seed: int = 0, vocab: Path | None = None) -> Path:
    """Fetch the vocabulary if needed and write the tiny model at ``out``."""
    return build_tiny_model(vocab or ensure_vocab(), out, seed=seed)
