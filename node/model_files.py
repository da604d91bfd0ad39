"""Model files on disk: is each configured ``[[models]]`` path a readable GGUF file?

The config parser checks a model entry's *shape* (pure, text only); whether
the file is there is a fact of this machine, checked here -- by ``islandnode
run`` before anything starts, by ``islandnode doctor``, and by ``models add``.
A missing or foreign file is reported with the config file and line of its
``path`` and the command that fixes it, instead of failing on the first
request that needs the model.

What this is not: it does not load models (SHORE does) or validate a GGUF
beyond its magic bytes.
"""

from __future__ import annotations

from pathlib import Path

from .config import NodeConfig
from .config_lines import line_of
from .errors import ConfigError

#: The first four bytes of every GGUF file.
GGUF_MAGIC = b"GGUF"


def gguf_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a GGUF model file, or None if nothing."""
    try:
        with path.open("rb") as f:
            magic = f.read(len(GGUF_MAGIC))
    except FileNotFoundError:
        return f"cannot read {path}: it does not exist"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if magic != GGUF_MAGIC:
        return f"{path} is not a GGUF file; llama.cpp runs .gguf models only"
    return None


def model_file_errors(cfg: NodeConfig) -> list[ConfigError]:
    """One error per ``[[models]]`` entry whose file is missing or not GGUF,
    each naming the config file, the line of its ``path`` and the fix."""
    text = _text(cfg.path)
    errors = []
    for i, model in enumerate(cfg.models):
        problem = gguf_problem(Path(model.path))
        if problem is not None:
            line = line_of(text, "models", "path", i)
            where = f"{cfg.path}:{line}" if line else str(cfg.path)
            errors.append(ConfigError(
                f"{where}: model {model.name!r}: {problem}; put the file back, or remove it "
                f"with `islandnode models remove {model.name}`"
            ))
    return errors


def check_model_files(cfg: NodeConfig) -> None:
    """Raise the first :func:`model_file_errors` error, if any."""
    errors = model_file_errors(cfg)
    if errors:
        raise errors[0]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""  # only used to find line numbers
