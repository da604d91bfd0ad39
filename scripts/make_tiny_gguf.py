"""Write the tiny random-weight llama GGUF used by tests, benchmarks and the demo.

Usage: python scripts/make_tiny_gguf.py OUT.gguf [--seed N] [--vocab FILE]

The tokenizer is LLaMA's real 32,000-token vocabulary, taken from the
llama-cpp-python source distribution (fetched once with pip and cached);
the weights are random from ``--seed``, so the same seed gives the same
file. ``islandnode models add-demo`` does the same and registers the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from islandrun.node.tinymodel import TinyModelError, make_tiny_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .gguf file to write")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (%(default)s)")
    parser.add_argument("--vocab", type=Path, help="ggml-vocab-llama-spm.gguf to use")
    args = parser.parse_args()
    try:
        path = make_tiny_model(args.out, seed=args.seed, vocab=args.vocab)
    except TinyModelError as exc:
        print(f"make_tiny_gguf: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
