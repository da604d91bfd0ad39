"""Rotating advert ids (transports.ble_ids), pure."""

from __future__ import annotations

import pytest

from islandrun.transports.ble_ids import (
    EPOCH_S,
    IdResolver,
    derive_irk,
    epoch_of,
    rotating_id,
)

FRIEND_IRK = derive_irk(b"\x01" * 32)
STRANGER_IRK = derive_irk(b"\x02" * 32)
T0 = 1_700_000_000.0


def test_paired_devices_resolve_the_id_in_every_epoch() -> None:
    resolver = IdResolver({"friend": FRIEND_IRK})
    for k in range(5):
        now = T0 + k * EPOCH_S
        assert resolver.resolve(rotating_id(FRIEND_IRK, epoch_of(now)), now) == "friend"


def test_strangers_ids_do_not_resolve_and_ids_do_not_repeat_across_epochs() -> None:
    resolver = IdResolver({"friend": FRIEND_IRK})
    epoch = epoch_of(T0)
    assert resolver.resolve(rotating_id(STRANGER_IRK, epoch), T0) is None
    ids = {rotating_id(FRIEND_IRK, epoch + k) for k in range(100)}
    assert len(ids) == 100  # nothing for a tracker to link epochs by


def test_clock_skew_of_one_epoch_is_tolerated_and_more_is_not() -> None:
    resolver = IdResolver({"friend": FRIEND_IRK}, skew_epochs=1)
    epoch = epoch_of(T0)
    assert resolver.resolve(rotating_id(FRIEND_IRK, epoch - 1), T0) == "friend"
    assert resolver.resolve(rotating_id(FRIEND_IRK, epoch + 1), T0) == "friend"
    assert resolver.resolve(rotating_id(FRIEND_IRK, epoch + 2), T0) is None


def test_irks_differ_per_device_and_inputs_are_checked() -> None:
    assert FRIEND_IRK != STRANGER_IRK and len(FRIEND_IRK) == 16
    with pytest.raises(ValueError):
        derive_irk(b"short")
    with pytest.raises(ValueError):
        rotating_id(b"short", 1)
    with pytest.raises(ValueError):
        epoch_of(float("nan"))
