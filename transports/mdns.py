"""LAN discovery over mDNS / DNS-SD (zeroconf): who else runs a node here.

Each node registers one DNS-SD service of type :data:`SERVICE_TYPE` whose
instance name is its device id and whose port is its libp2p TCP port, and
browses for the others. A service found becomes ``(device id, multiaddrs)``
with multiaddrs ``/ip4/<address>/tcp/<port>/p2p/<device id>`` built from the
addresses the service resolved to -- so a node listening on ``0.0.0.0`` is
found at the address its neighbour actually sees. The runtime feeds those
to :meth:`~.base.Transport.connect`; discovery itself trusts nothing (the
Noise handshake proves the device id, the allowlist decides the rest).

Why our own zeroconf instead of py-libp2p's ``enable_mDNS``: the built-in one
binds every interface with no option to narrow it, and we need to pin it to
chosen interfaces (tests run in network namespaces, never on the machine's
real interface) and to switch it off (``--no-mdns``: simply don't open this).
Our own service type also keeps us from dialling every IPFS node on a LAN.

Threads: zeroconf runs its own threads; its browser callback resolves the
service there and hops back to trio with ``trio.from_thread.run_sync`` and
the trio token captured at start. Findings go into a bounded channel; when
the consumer is behind, new findings are dropped (mDNS re-announces).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from zeroconf import Error as ZeroconfError
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from .base import TransportError

_log = logging.getLogger(__name__)

#: DNS-SD service type of IslandRun nodes. On the wire: do not change.
SERVICE_TYPE = "_islandrun._udp.local."
#: How long the browser thread waits for a found service to resolve (ms).
RESOLVE_TIMEOUT_MS = 3000
#: Findings buffered for a slow consumer.
FOUND_BUFFER = 64


@dataclass(frozen=True, slots=True)
class Found:
    """A node seen on the LAN: its claimed device id and where to dial it."""

    device_id: str
    addresses: tuple[str, ...]


class MdnsDiscovery:
    """A running registration + browser; iterate :meth:`found` for peers."""

    def __init__(
        self,
        zeroconf: Zeroconf,
        device_id: str,
        token: trio.lowlevel.TrioToken,
        send: trio.MemorySendChannel[Found],
        receive: trio.MemoryReceiveChannel[Found],
    ) -> None:
        self._zeroconf = zeroconf
        self._device_id = device_id
        self._token = token
        self._send = send
        self._receive = receive

    def found(self) -> trio.MemoryReceiveChannel[Found]:
        """Peers as they are found (again after each re-announcement)."""
        return self._receive

    # Runs on zeroconf's browser thread.
    def on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        try:
            info = zeroconf.get_service_info(service_type, name, timeout=RESOLVE_TIMEOUT_MS)
            found = _to_found(info, service_type) if info is not None else None
            if found is not None and found.device_id != self._device_id:
                trio.from_thread.run_sync(self._deliver, found, trio_token=self._token)
        except trio.RunFinishedError:
            pass  # trio has gone; nobody is listening any more
        except Exception as exc:  # never let a bad packet kill zeroconf's thread
            _log.warning("ignored an mDNS service that could not be read (%s)", type(exc).__name__)

    def _deliver(self, found: Found) -> None:
        try:
            self._send.send_nowait(found)
        except (trio.WouldBlock, trio.ClosedResourceError):
            _log.debug("mDNS finding dropped: consumer behind or gone")


def _to_found(info: ServiceInfo, service_type: str) -> Found | None:
    instance = info.name.removesuffix("." + service_type)
    if not info.port or not instance:
        return None
    addresses = tuple(
        f"/ip4/{ip}/tcp/{info.port}/p2p/{instance}"
        for ip in info.parsed_addresses(IPVersion.V4Only)
    )
    return Found(instance, addresses) if addresses else None


def _service_info(device_id: str, port: int, ips: Sequence[str]) -> ServiceInfo:
    return ServiceInfo(
        SERVICE_TYPE,
        f"{device_id}.{SERVICE_TYPE}",
        port=port,
        addresses=[socket.inet_aton(ip) for ip in ips],
        server=f"{device_id[-16:].lower()}.local.",
    )


def _check_ips(ips: Sequence[str]) -> None:
    for ip in ips:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise TransportError(f"mDNS needs IPv4 addresses to announce; got {ip!r}") from None
    if not ips:
        raise TransportError("mDNS needs at least one IPv4 address to announce")


@asynccontextmanager
async def open_mdns(
    device_id: str,
    port: int,
    *,
    announce_ips: Sequence[str],
    interfaces: Sequence[str] | None,
) -> AsyncIterator[MdnsDiscovery]:
    """Announce ``device_id`` at ``announce_ips``:``port`` and browse for others.

    ``interfaces`` are the IPv4 addresses of the interfaces to use; ``None``
    means all of them (a real LAN node). Tests must pass explicit addresses.
    """
    _check_ips(announce_ips)
    choice = list(interfaces) if interfaces is not None else InterfaceChoice.All
    try:
        zeroconf = await trio.to_thread.run_sync(
            lambda: Zeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
        )
    except (ZeroconfError, OSError) as exc:
        raise TransportError(f"cannot start mDNS ({type(exc).__name__}: {exc})") from None
    send, receive = trio.open_memory_channel[Found](FOUND_BUFFER)
    discovery = MdnsDiscovery(
        zeroconf, device_id, trio.lowlevel.current_trio_token(), send, receive
    )
    info = _service_info(device_id, port, announce_ips)
    browser: ServiceBrowser | None = None
    try:
        try:
            browser = ServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[discovery.on_change])
            await trio.to_thread.run_sync(zeroconf.register_service, info)
        except (ZeroconfError, OSError) as exc:
            raise TransportError(f"cannot announce on mDNS ({type(exc).__name__})") from None
        yield discovery
    finally:
        send.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_stop, zeroconf, browser, info)


def _stop(zeroconf: Zeroconf, browser: ServiceBrowser | None, info: ServiceInfo) -> None:
    """Say goodbye and stop zeroconf's threads (blocking; runs in a worker thread)."""
    if browser is not None:
        browser.cancel()
    try:
        zeroconf.unregister_service(info)
    except Exception as exc:
        _log.debug("mDNS goodbye failed (%s)", type(exc).__name__)
    zeroconf.close()
