"""Live reload: model and index changes take effect in a running node, no restart.

``islandnode models add/remove`` edits ``<home>/config.toml`` and
``islandnode index add/remove`` writes or deletes ``<home>/indexes/*.sqlite``
(both by atomic rename). The running node notices: every ``interval``
seconds :func:`reload_loop` compares a fingerprint of those files (path,
modification time, size) with the last one, and on a change re-reads the
``[[models]]`` list into SHORE and re-opens the indexes, then wakes the
advertiser, so the next advert lists what is there now.

Rules: a config file that does not parse keeps the models as they were (a
warning says why; the next edit is tried again); models whose entry did not
change stay loaded; a request already running finishes on what it started
with. Only the executor's models and the datasets reload -- other settings
(listen addresses, trust, policy) still need a restart.

What this is not: a file-system watcher (polling a few ``stat`` calls a
second is cheaper than a dependency and works on every platform) or a
config editor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import trio

from .config import ModelSection, config_path, load_config
from .embed import open_retrievers
from .errors import NodeError
from .index import INDEX_DIR, SUFFIX
from .retrieval import RetrievalExecutor

log = logging.getLogger("islandrun.node.reload")

#: Seconds between two looks at the files.
INTERVAL = 1.0

Fingerprint = tuple[tuple[str, int, int], ...]


@runtime_checkable
class ModelsReloadable(Protocol):
    """An executor whose models can change while it runs (SHORE)."""

    def update_models(self, models: Sequence[ModelSection]) -> None: ...


def fingerprint(home: Path) -> Fingerprint:
    """(name, mtime in ns, size) of the config file and of every index file."""
    paths = [config_path(home), *sorted((home / INDEX_DIR).glob(f"*{SUFFIX}"))]
    out = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between the listing and the stat: gone
        out.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class Reloader:
    """Re-reads models and indexes when their files changed since the last look."""

    def __init__(self, home: Path, executor: RetrievalExecutor, models: object) -> None:
        self._home, self._executor, self._models = home, executor, models
        self._seen = fingerprint(home)

    def check(self) -> bool:
        """Reload if anything changed; whether something did (blocking: file I/O)."""
        now = fingerprint(self._home)
        if now == self._seen:
            return False
        self._seen = now
        found = open_retrievers(self._home)
        for problem in found.problems:
            log.warning("index skipped: %s", problem)
        self._executor.set_indexes(found.indexes)
        if isinstance(self._models, ModelsReloadable):
            try:
                self._models.update_models(load_config(self._home).models)
            except NodeError as exc:
                log.warning("config not reloaded, models unchanged: %s", exc)
        return True


async def reload_loop(
    reloader: Reloader, on_change: Callable[[], None], interval: float = INTERVAL
) -> None:
    while True:
        await trio.sleep(interval)
        if await trio.to_thread.run_sync(reloader.check):
            on_change()
