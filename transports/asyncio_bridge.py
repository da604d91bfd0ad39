"""Running asyncio-only libraries (bleak, bless) from trio without letting asyncio own the process.

The node is trio everywhere; bleak and bless are asyncio libraries. Rather
than hand the process to asyncio (or add trio-asyncio), an
:class:`AsyncioBridge` runs one asyncio event loop in a dedicated daemon
thread:

* trio -> asyncio: :meth:`AsyncioBridge.call` schedules a coroutine on that
  loop (``asyncio.run_coroutine_threadsafe``) and waits for it without
  blocking a trio thread: the future's done-callback wakes the trio task
  through its trio token. Cancelling the trio task cancels the future.
* asyncio -> trio: :class:`TrioInbox` is a bounded trio channel that
  callbacks on the asyncio thread (GATT notifications, write requests)
  post into with :meth:`TrioInbox.post`, which hops threads with
  ``TrioToken.run_sync_soon``.

What this is not: anything Bluetooth-specific (``ble_bleak`` is).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")
_log = logging.getLogger(__name__)


class AsyncioBridge:
    """An asyncio loop in its own thread, callable from trio."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="islandrun-asyncio", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def call(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``factory()`` on the asyncio loop and return its result."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future = asyncio.run_coroutine_threadsafe(factory(), self._loop)

        def wake(_: object) -> None:
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()


class TrioInbox(Generic[T]):
    """A bounded channel that the asyncio thread posts into and trio reads."""

    def __init__(self, capacity: int) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._send, self._receive = trio.open_memory_channel[T](capacity)
        self.dropped = 0

    def post(self, item: T) -> None:
        """Thread-safe, non-blocking; a full inbox drops ``item`` (counted)."""
        with suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._put, item)

    def close(self) -> None:
        """Thread-safe: the reader gets ``EndOfChannel`` after what is queued."""
        with suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._send.close)

    async def get(self) -> T:
        return await self._receive.receive()

    def _put(self, item: T) -> None:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.dropped += 1
        except trio.ClosedResourceError:
            pass


@asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """An asyncio loop thread for the duration of the block."""
    bridge = AsyncioBridge()
    bridge.start()
    try:
        yield bridge
    finally:
        await trio.to_thread.run_sync(bridge.stop)
