from __future__ import annotations

import pytest

from islandrun.protocol.errors import FrameError, LocalProtocolError
from islandrun.protocol.framing import FrameDecoder, encode_frame

FRAMES = [b"", b"a", b"hello world", bytes(range(256)) * 10]
STREAM = b"".join(encode_frame(f) for f in FRAMES)


def drain(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (frame := decoder.next_frame()) is not None:
        out.append(frame)
    return out


def test_whole_buffer() -> None:
    d = FrameDecoder()
    d.receive_data(STREAM)
    assert drain(d) == FRAMES
    assert d.buffered == 0


def test_byte_by_byte() -> None:
    d = FrameDecoder()
    got = []
    for i in range(len(STREAM)):
        d.receive_data(STREAM[i : i + 1])
        got += drain(d)
    assert got == FRAMES


@pytest.mark.parametrize("cut", range(0, len(STREAM), 97))
def test_every_two_way_split(cut: int) -> None:
    d = FrameDecoder()
    d.receive_data(STREAM[:cut])
    got = drain(d)
    d.receive_data(STREAM[cut:])
    assert got + drain(d) == FRAMES


def test_oversized_header_rejected_before_payload() -> None:
    d = FrameDecoder(max_size=100)
    with pytest.raises(FrameError, match="limit is 100"):
        d.receive_data((101).to_bytes(4, "big"))
    with pytest.raises(FrameError):  # broken for good
        d.receive_data(b"")
    with pytest.raises(FrameError):
        d.next_frame()


def test_oversized_frame_after_good_one() -> None:
    d = FrameDecoder(max_size=10)
    d.receive_data(encode_frame(b"ok") + (11).to_bytes(4, "big"))
    assert d.next_frame() == b"ok"
    with pytest.raises(FrameError):
        d.next_frame()


def test_refuses_to_encode_oversized() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"x" * 11, max_size=10)
