"""The real adapters' pieces that run without a radio: the asyncio bridge and advert names."""

from __future__ import annotations

import asyncio

import pytest
import trio

from islandrun.transports import ble_bleak
from islandrun.transports.asyncio_bridge import TrioInbox, open_asyncio_bridge
from islandrun.transports.ble_radio import RX_CHAR_UUID, SERVICE_UUID, TX_CHAR_UUID


async def test_trio_awaits_asyncio_coroutines_on_the_bridge_thread() -> None:
    async def on_asyncio(x: int) -> tuple[int, bool]:
        await asyncio.sleep(0.01)
        return x * 2, asyncio.get_running_loop() is not None

    async with open_asyncio_bridge() as bridge:
        assert await bridge.call(lambda: on_asyncio(21)) == (42, True)


async def test_cancelling_the_trio_side_cancels_the_asyncio_coroutine() -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with open_asyncio_bridge() as bridge:
        with trio.move_on_after(0.05):
            await bridge.call(forever)
        with trio.fail_after(5):
            while not cancelled:
                await trio.sleep(0.01)


async def test_asyncio_callbacks_post_into_trio_and_a_full_inbox_drops() -> None:
    inbox: TrioInbox[bytes] = TrioInbox(2)

    async def notify_three_times() -> None:
        for i in range(3):
            inbox.post(b"%d" % i)

    async with open_asyncio_bridge() as bridge:
        await bridge.call(notify_three_times)
        assert [await inbox.get(), await inbox.get()] == [b"0", b"1"]
        await trio.sleep(0.05)
        assert inbox.dropped == 1


def test_advert_names_carry_the_rotating_id_and_reject_others() -> None:
    rid = bytes(range(8))
    assert ble_bleak.payload_from_name(ble_bleak.advert_name(rid)) == rid
    for name in [None, "", "Pixel 7", "ir", "irzz", "ir" + "00" * 9]:
        assert ble_bleak.payload_from_name(name) is None


def test_our_uuids_are_distinct_and_both_adapters_import() -> None:
    assert len({SERVICE_UUID, RX_CHAR_UUID, TX_CHAR_UUID}) == 3
    assert ble_bleak.BleakClient is not None
    assert ble_bleak.BlessServer is not None, "bless is a declared dependency"


@pytest.mark.parametrize("interval", [0.0, 0.01])
async def test_writes_are_paced(interval: float) -> None:
    pacer = ble_bleak._Pacer(interval)
    start = trio.current_time()
    for _ in range(5):
        await pacer.wait()
    assert trio.current_time() - start >= 4 * interval
