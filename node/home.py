"""The node home: the one directory that holds a device's state.

Resolution order, most specific first: ``--home DIR``, ``$ISLANDRUN_HOME``,
then the platform's per-user data directory (``~/.local/share/islandrun`` on
Linux, ``~/Library/Application Support/islandrun`` on macOS), as Syncthing
and Ollama do. The directory is created mode 0700 because it holds the
device key.

Also here: :func:`write_private`, the one way we write a secret or state file
(atomic rename, mode 0600, fsync), and :class:`PersistentSequence`, which
persists :class:`~islandrun.protocol.envelope.SequenceAllocator` reservations.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

from islandrun.protocol.envelope import SequenceAllocator

from .errors import NodeError

ENV_HOME = "ISLANDRUN_HOME"
KEY_FILE = "device.key"
SEQ_FILE = "seq"
CONFIG_FILE = "config.toml"


def resolve_home(explicit: Path | str | None = None) -> Path:
    """The node home directory path (not created)."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    return Path(platformdirs.user_data_dir("islandrun", appauthor=False))


def ensure_home(home: Path) -> Path:
    """Create the home (0700) if needed and return it."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise NodeError(f"cannot create node home {home}: {exc.strerror}") from None
    return home


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PersistentSequence:
    """Envelope seq numbers that strictly increase across restarts.

    Wraps the pure allocator; writes the reservation to ``<home>/seq`` before
    a seq beyond the previous reservation is used.
    """

    def __init__(self, home: Path) -> None:
        self._path = home / SEQ_FILE
        self._alloc = SequenceAllocator(self._load())

    def _load(self) -> int:
        try:
            text = self._path.read_text().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise NodeError(
                f"{self._path} is damaged; delete it (seq numbers restart from the clock)"
            )
        return int(text)

    def next(self, now: float) -> int:
        seq, persist = self._alloc.next(now)
        if persist:
            write_private(self._path, str(self._alloc.reserved).encode())
        return seq
