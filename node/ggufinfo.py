"""What a GGUF model file says about itself, read from its header: the quantisation.

Adverts list each model with its quantisation (``Q4_K_M``, ``F16``...), which
llama.cpp's converters record as the ``general.file_type`` key. The ``gguf``
package's reader parses the whole file (vocabulary arrays included: over a
second for a 17 MB model), so this module walks the header's key-value list
itself, with the ``gguf`` package's type codes and names, and stops at that
key -- microseconds, and nothing is loaded.

What this is not: a GGUF validator (llama.cpp decides whether it can load a
file) or a model loader. A file that is missing, not GGUF, or without the key
gives ``""`` (unknown), never an error: the advert is still valid without it.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import gguf

_KEY = "general.file_type"
#: Most header entries looked at before giving up (converters write the
#: ``general.*`` keys first, a handful in).
MAX_KEYS = 256
#: Longest key or string value read (bytes); longer means a broken file.
MAX_STRING = 1 << 20
_SCALAR_SIZES = {
    gguf.GGUFValueType.UINT8: 1, gguf.GGUFValueType.INT8: 1, gguf.GGUFValueType.BOOL: 1,
    gguf.GGUFValueType.UINT16: 2, gguf.GGUFValueType.INT16: 2,
    gguf.GGUFValueType.UINT32: 4, gguf.GGUFValueType.INT32: 4, gguf.GGUFValueType.FLOAT32: 4,
    gguf.GGUFValueType.UINT64: 8, gguf.GGUFValueType.INT64: 8, gguf.GGUFValueType.FLOAT64: 8,
}


class _Unreadable(Exception):
    """The header ended early or holds something this walker does not expect."""


def quantization(path: str | Path) -> str:
    """The quantisation name of the GGUF file at ``path``, or ``""`` if unknown."""
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    return _cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _cached(path: str, _mtime_ns: int, _size: int) -> str:
    try:
        with open(path, "rb") as f:
            file_type = _find_file_type(f)
    except (OSError, _Unreadable):
        return ""
    return "" if file_type is None else file_type_name(file_type)


def file_type_name(file_type: int) -> str:
    """``MOSTLY_Q4_K_M`` -> ``Q4_K_M``, ``ALL_F32`` -> ``F32``; unknown codes by number."""
    try:
        name = gguf.LlamaFileType(file_type).name
    except ValueError:
        return f"file type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _find_file_type(f: BinaryIO) -> int | None:
    if _read(f, 4) != b"GGUF":
        raise _Unreadable
    version, _tensors, keys = struct.unpack("<IQQ", _read(f, 20))
    if version not in (2, 3):
        raise _Unreadable
    for _ in range(min(keys, MAX_KEYS)):
        key = _string(f)
        kind = _uint(f, 4)
        if key == _KEY and kind in (gguf.GGUFValueType.UINT32, gguf.GGUFValueType.INT32):
            return int(struct.unpack("<i" if kind == gguf.GGUFValueType.INT32 else "<I",
                                     _read(f, 4))[0])
        _skip_value(f, kind)
    return None


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _SCALAR_SIZES:
        _read(f, _SCALAR_SIZES[gguf.GGUFValueType(kind)])
    elif kind == gguf.GGUFValueType.STRING:
        _string(f)
    elif kind == gguf.GGUFValueType.ARRAY:
        item, count = _uint(f, 4), _uint(f, 8)
        if item in _SCALAR_SIZES:
            f.seek(_SCALAR_SIZES[gguf.GGUFValueType(item)] * count, 1)
        elif item == gguf.GGUFValueType.STRING:
            for _ in range(count):
                _string(f)
        else:
            raise _Unreadable
    else:
        raise _Unreadable


def _string(f: BinaryIO) -> str:
    size = _uint(f, 8)
    if size > MAX_STRING:
        raise _Unreadable
    return _read(f, size).decode("utf-8", errors="replace")


def _uint(f: BinaryIO, size: int) -> int:
    return int.from_bytes(_read(f, size), "little")


def _read(f: BinaryIO, size: int) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise _Unreadable
    return data
