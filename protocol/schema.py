"""Strict conversion between wire values (msgpack's lists, maps, scalars) and
frozen message dataclasses.

This is the one place that knows how a dataclass field's type hint maps to a
wire value, so every message class gets the same rules for free:

* unknown map keys are ignored (newer peers may add fields);
* a missing required field, or a value of the wrong type, raises
  :class:`~islandrun.protocol.errors.DecodeError` naming the field
  (``models[2].context``), never ``KeyError`` or ``TypeError``;
* ``bool`` is not accepted where an ``int`` is expected, floats must be
  finite, and every ``str``/``bytes``/``tuple`` has a length bound.

Bounds and ranges are declared on the field with :func:`spec`, next to the
field they constrain, rather than in a separate validator.

What this is not: a general serialisation library. It supports exactly the
types our messages use: ``str``, ``int``, ``float``, ``bool``, ``bytes``,
``str``-valued enums, ``X | None``, ``tuple[X, ...]`` and nested message
dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from .errors import DecodeError, LocalProtocolError

#: Default bound on a ``str``/``bytes`` field: enough for names, ids and
#: addresses. Fields carrying user text declare a larger bound.
DEFAULT_MAX_LEN = 1024
#: Default bound on a ``tuple`` field (models, datasets, addresses...).
DEFAULT_MAX_ITEMS = 256
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Converter = Callable[[Any, str], Any]


def spec(
    *,
    default: Any = dataclasses.MISSING,
    max_len: int | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    """A dataclass field with a length bound and/or a numeric range."""
    meta = {"max_len": max_len, "lo": lo, "hi": hi}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class InvalidField(LocalProtocolError):
    """A message was built with a value outside its declared bounds."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def _fail(path: str, message: str) -> typing.NoReturn:
    raise DecodeError(message, field=path)


def _check_range(value: float, path: str, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        _fail(path, f"must be >= {lo}")
    if hi is not None and value > hi:
        _fail(path, f"must be <= {hi}")


def _scalar(hint: Any, meta: dict[str, Any]) -> Converter:
    lo, hi = meta.get("lo"), meta.get("hi")
    max_len = meta.get("max_len") or DEFAULT_MAX_LEN

    def conv_str(v: Any, path: str) -> str:
        if type(v) is not str:
            _fail(path, "expected a string")
        if len(v) > max_len:
            _fail(path, f"longer than {max_len} characters")
        return v

    def conv_bytes(v: Any, path: str) -> bytes:
        if type(v) is not bytes:
            _fail(path, "expected bytes")
        if len(v) > max_len:
            _fail(path, f"longer than {max_len} bytes")
        return v

    def conv_bool(v: Any, path: str) -> bool:
        if type(v) is not bool:
            _fail(path, "expected true or false")
        return v

    def conv_int(v: Any, path: str) -> int:
        if type(v) is not int or not INT64_MIN <= v <= INT64_MAX:
            _fail(path, "expected a 64-bit integer")
        _check_range(v, path, lo, hi)
        return v

    def conv_float(v: Any, path: str) -> float:
        if type(v) not in (float, int) or not math.isfinite(v):
            _fail(path, "expected a finite number")
        _check_range(v, path, lo, hi)
        return float(v)

    table: dict[Any, Converter] = {
        str: conv_str,
        bytes: conv_bytes,
        bool: conv_bool,
        int: conv_int,
        float: conv_float,
    }
    return table[hint]


def _enum(hint: type[enum.Enum]) -> Converter:
    by_value = {m.value: m for m in hint}

    def conv(v: Any, path: str) -> enum.Enum:
        try:
            return by_value[v]
        except (KeyError, TypeError):
            _fail(path, f"expected one of {sorted(by_value)}")

    return conv


def converter(hint: Any, meta: dict[str, Any]) -> Converter:
    """Build the wire-to-Python converter for one type hint."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        conv_inner = converter(inner, meta)
        return lambda v, path: None if v is None else conv_inner(v, path)
    if origin is tuple:
        item = converter(typing.get_args(hint)[0], {})
        limit = meta.get("max_len") or DEFAULT_MAX_ITEMS

        def conv_tuple(v: Any, path: str) -> tuple[Any, ...]:
            if type(v) not in (list, tuple):
                _fail(path, "expected a list")
            if len(v) > limit:
                _fail(path, f"more than {limit} items")
            return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))

        return conv_tuple
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    if dataclasses.is_dataclass(hint):
        return lambda v, path: from_wire(hint, v, path)
    return _scalar(hint, meta)


# (name, converter, default); default is MISSING for a required field.
FieldSpec = tuple[str, Converter, Any]
_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def _spec_of(cls: type) -> tuple[FieldSpec, ...]:
    cached = _SPECS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = tuple(
            (f.name, converter(hints[f.name], dict(f.metadata)), f.default)
            for f in dataclasses.fields(cls)
        )
        _SPECS[cls] = cached
    return cached


def from_wire(cls: type, value: Any, path: str = "") -> Any:
    """Build ``cls`` from a decoded msgpack map, validating every field.

    Each field is validated exactly once, here; the instance is then filled
    in directly instead of through ``__init__``, whose ``__post_init__``
    would repeat the same checks (decoding adverts is a hot path).
    """
    if type(value) is not dict:
        _fail(path or cls.__name__, "expected a map")
    obj = object.__new__(cls)
    for name, conv, default in _spec_of(cls):
        if name in value:
            where = f"{path}.{name}" if path else name
            object.__setattr__(obj, name, conv(value[name], where))
        elif default is dataclasses.MISSING:
            _fail(f"{path}.{name}" if path else name, "missing required field")
        else:
            object.__setattr__(obj, name, default)
    return obj


def to_wire(value: Any) -> Any:
    """The msgpack-ready form of a message (maps, lists, scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def validate(obj: Any) -> None:
    """Check a freshly built message against its field bounds.

    Called from ``__post_init__`` so a message that exists is a valid one,
    whether it came off the wire or was built by our own code.
    """
    for name, conv, _ in _spec_of(type(obj)):
        try:
            conv(to_wire(getattr(obj, name)), name)
        except DecodeError as exc:
            raise InvalidField(exc.field or name, exc.detail) from None
