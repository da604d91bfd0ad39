"""Length-prefixed frames over a byte stream, with a hard size limit.

A stream (a libp2p stream, a BLE characteristic) delivers bytes in arbitrary
pieces. :class:`FrameDecoder` is a sans-IO decoder in the h11 style: feed it
whatever arrived with :meth:`~FrameDecoder.receive_data`, then call
:meth:`~FrameDecoder.next_frame` until it returns ``None`` (need more data).
It accepts any split of the stream, byte by byte included.

A frame is a 4-byte big-endian length followed by that many bytes. The limit
is checked on the *header*, before any payload is buffered, so a peer that
announces a 4 GB frame costs us four bytes, not four gigabytes. After a
:class:`FrameError` the decoder is broken for good: a stream that lied about
one length cannot be resynchronised, so the caller closes it.

What this is not: BLE fragmentation (MTU-sized pieces of one message) lives
with the BLE transport; this layer delimits whole messages.
"""

from __future__ import annotations

import struct

from .errors import FrameError, LocalProtocolError

HEADER = struct.Struct(">I")
#: Default frame limit: one sealed request with a long history.
MAX_FRAME_SIZE = 8 * 1024 * 1024


def encode_frame(payload: bytes, *, max_size: int = MAX_FRAME_SIZE) -> bytes:
    """Prefix ``payload`` with its length; refuse to build an oversized frame."""
    if len(payload) > max_size:
        raise LocalProtocolError(f"frame of {len(payload)} bytes exceeds the {max_size}-byte limit")
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Incremental decoder for length-prefixed frames."""

    def __init__(self, *, max_size: int = MAX_FRAME_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._broken: FrameError | None = None

    def receive_data(self, data: bytes) -> None:
        """Append bytes that arrived on the stream.

        Raises :class:`FrameError` at once if the next frame's announced
        length is over the limit, so the caller can close the stream.
        """
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        self._check_header()

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or ``None`` if more data is needed."""
        if self._broken is not None:
            raise self._broken
        self._check_header()
        if len(self._buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack_from(self._buffer)
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        frame = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return frame

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def _check_header(self) -> None:
        if len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self.max_size:
                self._broken = FrameError(
                    f"peer announced a {length}-byte frame; the limit is {self.max_size}"
                )
                raise self._broken
