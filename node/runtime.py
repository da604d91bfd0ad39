"""The node runtime: every agent and the transport under one trio nursery.

This is the only module that picks a transport (libp2p, with mDNS on the
LAN); the agents it wires (TIDE, LIGHTHOUSE, shipping) see only the
transport interface. Its loops are small and each does one thing:

* **advertise** -- publish our signed advert when the advertiser says it is
  due (start, material change, heartbeat);
* **gossip** -- feed every advert from the mesh to the membership table;
* **liveness** -- tick the membership table at its next deadline and persist
  the island list to ``<home>/islands.cache`` so a restart, or a mesh layer
  that is down, still has the last known islands;
* **discovery** -- dial peers mDNS finds on the LAN (allowed ones only);
* **group sync** -- anti-entropy of the personal group state with the
  owner's other devices (``groupnode``);
* **serve** -- run inbound sealed requests on the local executor;
* **control** -- answer the CLI on ``<home>/control.sock``.

Shutdown: Ctrl-C or SIGTERM set one event; everything unwinds through the
nursery, the island cache is written, and the process exits 0 with no
traceback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.requests import Request

from islandrun import __version__
from islandrun.protocol import envelope
from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import short_id
from islandrun.transports.base import TOPIC_ADVERTS, MessageStream, PeerUnavailable, Transport

from . import api, control, friend_floor
from .advertiser import Advertiser
from .audit import AuditLog
from .config import NodeConfig
from .dispatch import (
    Dispatcher,
    LatencyBook,
    Outcome,
    TrustRecord,
    island_snapshots,
    local_snapshot,
)
from .embed import open_retrievers
from .errors import ConfigError
from .executor import EchoExecutor, Executor, Usage
from .groupnode import GroupNode, sync_loop
from .home import PersistentSequence, write_private
from .horizon import Horizon
from .identity import Identity
from .lighthouse import IslandView, Membership, seal_advert
from .lighthouse_config import LAN, LighthouseConfig
from .link_latency import link_latency_ms
from .pairing_service import PairingService
from .pairing_store import PairingStore
from .ratelimit import RateLimitConfig, RateLimiter
from .reload import Reloader, reload_loop
from .retrieval import RetrievalExecutor
from .shipping import IslandFailed, ShippingConfig, serve_request, ship_request
from .tide import Tide
from .tide_capacity import TideConfig
from .transports_setup import BleChoice, open_node_transports
from .waves import Decision
from .waves_inputs import IslandSnapshot

log = logging.getLogger("islandrun.node")

CACHE_FILE = "islands.cache"
#: How often the island list is written to the cache while running (s).
CACHE_INTERVAL = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What ``islandnode run`` was asked for, over the config file."""

    listen: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    mdns: bool | None = None
    executor: Executor = field(default_factory=EchoExecutor)
    lighthouse: LighthouseConfig = LAN
    shipping: ShippingConfig = field(default_factory=ShippingConfig)
    #: Report this CPU/memory load instead of measuring it (tests, demo).
    fixed_load: float | None = None
    #: Report this battery charge (a fraction, not charging) instead (tests, demo).
    fixed_battery: float | None = None
    #: Bluetooth LE beside the LAN (``node/transports_setup.py``); None: LAN only.
    ble: BleChoice | None = None
    #: Opens the LAN transport for a node; None: libp2p. Tests and the
    #: simulator pass the in-memory network (``transports/memory.py``).
    open_lan: Callable[[Node], AbstractAsyncContextManager[Transport]] | None = None
    #: Where the OpenAI-compatible API listens (``host:port``); None: off.
    api: str | None = "127.0.0.1:4080"
    #: Allow the API on a non-loopback address (it is token-protected).
    api_remote: bool = False


class Node:
    """One running node: state shared by the runtime's loops."""

    def __init__(
        self, home: Path, ident: Identity, cfg: NodeConfig, options: RunOptions, tide: Tide
    ) -> None:
        self.home, self.identity, self.config, self.options = home, ident, cfg, options
        self.tide = tide
        found = open_retrievers(home)  # the datasets held here (data locality)
        for problem in found.problems:
            log.warning("index skipped: %s", problem)
        self.executor = RetrievalExecutor(options.executor, found.indexes)
        self.sealer = ident.sealer()
        self.sequence = PersistentSequence(home)
        self.advertiser = Advertiser(options.lighthouse)
        self.changed = trio.Event()  # set to wake the advertiser early
        self.pairing = PairingService(
            ident, cfg, PairingStore(home), shipping=options.shipping,
            on_revoked=self._revoked, on_paired=lambda _: self.changed.set(),
            rng=secrets.SystemRandom(),
        )
        self.membership = self._load_cache()
        self.transport: Transport | None = None
        self.audit_log = AuditLog(home)
        self.group = GroupNode(home, ident, self.pairing, shipping=options.shipping,
                               on_revoked=self._revoked)
        self.horizon = Horizon(cfg.cloud, home, ledger=self.group.ledger,
                               synced_key=self.group.cloud_key)
        self.api_url: str | None = None
        self.latency = LatencyBook()
        self.dispatcher = Dispatcher(
            policy=cfg.waves.policy(),  # the owner's [waves] (node/config_policy.py)
            limiter=RateLimiter(RateLimitConfig()),
            run_local=self._run_local,
            ship=self._ship,
            audit=self._audit,
            conversations=self.group,
        )
        # The islands as last seen, for WAVES when LIGHTHOUSE fails.
        self.cached_islands = tuple(island_snapshots(self.membership.snapshot(), self))

    def is_allowed(self, device_id: str) -> bool:
        """Paired (or listed in ``[mesh].allow``) and not revoked: read live."""
        return self.pairing.is_allowed(device_id)

    def _revoked(self, device_id: str) -> None:
        self.membership.revoke(device_id)

    def accepts_gossip(self, topic: str, origin: str, data: bytes) -> bool:
        """Gossip check before delivery or relay: adverts must be validly
        signed by their origin, for the advert domain, and not expired.
        (Replay and freshness per device are the membership table's job.)"""
        if topic != TOPIC_ADVERTS:
            return True
        try:
            env = envelope.open_envelope(
                data, domain=envelope.DOMAIN_ADVERT, now=time.time(), expected_device=origin
            )
        except IslandRunError:
            return False
        return env.payload_type == envelope.PAYLOAD_ADVERT

    # -- the island cache ----------------------------------------------------

    def _load_cache(self) -> Membership:
        path = self.home / CACHE_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Membership(self.options.lighthouse, self.is_allowed)
        loaded = Membership.from_cache_bytes(
            data, config=self.options.lighthouse, allowed=self.is_allowed, now=time.time()
        )
        if loaded.problem:
            log.warning("island cache ignored: %s", loaded.problem)
        return loaded.membership

    def save_cache(self) -> None:
        """Persist the island list; a failed write is logged, never fatal."""
        try:
            write_private(self.home / CACHE_FILE, self.membership.to_cache_bytes())
        except OSError as exc:
            log.warning("island cache not saved: %s", exc.strerror)

    # -- our advert ----------------------------------------------------------

    def advert(self) -> m.Advert:
        report = self.tide.report()
        transport = self.transport
        return m.Advert(
            device_id=self.identity.device_id,
            name=self.identity.name,
            models=self.options.executor.models(),
            datasets=self.executor.datasets(),
            capacity=report.capacity,
            in_flight=report.in_flight,
            battery_pct=report.battery_pct,
            charging=report.charging,
            serve_others=report.willingness,
            addresses=transport.addresses()[:32] if transport else (),
            software_version=__version__,
        )

    def signed_advert(self, advert: m.Advert, now: float) -> bytes:
        seq = self.sequence.next(now)
        expires = now + self.options.lighthouse.advert_ttl
        return seal_advert(self.identity.key, advert, seq=seq, expires=expires)

    # -- views for the CLI ---------------------------------------------------

    def peers(self) -> list[dict[str, Any]]:
        return [_view_json(v) for v in self.membership.snapshot()]

    def status(self) -> dict[str, Any]:
        report = self.tide.report()
        return {
            "device_id": self.identity.device_id,
            "name": self.identity.name,
            "version": __version__,
            "addresses": list(self.transport.addresses()) if self.transport else [],
            "capacity": report.capacity,
            "in_flight": report.in_flight,
            "battery_pct": report.battery_pct,
            "charging": report.charging,
            "models": [x.name for x in self.options.executor.models()],
            "datasets": [d.name for d in self.executor.datasets()],
            "islands": len(self.membership.snapshot()),
            "api": self.api_url,
        }

    def models(self) -> list[dict[str, Any]]:
        """``/v1/models``: every model some island can run now, with its islands."""
        owners: dict[str, list[str]] = {}
        for island in self.islands(None):
            if island.alive:
                for name in island.models:
                    owners.setdefault(name, []).append(island.name)
        return [
            {"id": name, "object": "model", "owned_by": "islandrun", "islands": sorted(names)}
            for name, names in sorted(owners.items())
        ]

    # -- requests ------------------------------------------------------------

    def lookup(self, device_id: str) -> TrustRecord | None:
        """The owner's trust in a device: its pairing tier and the owner's
        scores for it (devices listed in ``[mesh].allow`` count as personal)."""
        found = self.pairing.scores(device_id)
        return None if found is None else TrustRecord(*found)

    def islands(self, peer: str | None) -> list[IslandSnapshot]:
        """This device and the trusted islands LIGHTHOUSE knows, for WAVES."""
        views = self.membership.snapshot()
        links = self.transport.link if self.transport else None
        islands = island_snapshots(views, self, only=peer, latency=self.latency, links=links)
        if peer is None:
            islands.extend(self.horizon.snapshots())
            islands.append(
                local_snapshot(
                    self.identity.device_id,
                    self.identity.name,
                    self.options.executor.models(),
                    self.tide.report(),
                    self.executor.datasets(),
                )
            )
        return islands

    async def ask(
        self,
        request: m.InferenceRequest,
        on_chunk: Callable[[str], Awaitable[None]],
        *,
        peer: str | None = None,
        client_id: str = "local",
        on_island: Callable[[Decision], None] | None = None,
    ) -> Outcome:
        """Route ``request`` with MIST and WAVES and run it where WAVES says."""
        try:
            islands: list[IslandSnapshot] | None = self.islands(peer)
        except IslandRunError as exc:  # a bad advert must not stop routing: use the cache
            log.warning("island list unavailable (%s); using the cached list", exc)
            islands = None
        return await self.dispatcher.run(
            request,
            islands=islands,
            local=self.tide.report(),
            cached=self.cached_islands,
            client_id=client_id,
            on_chunk=on_chunk,
            on_island=on_island,
        )

    async def _run_local(
        self, request: m.InferenceRequest, on_chunk: Callable[[str], Awaitable[None]]
    ) -> Usage:
        self.tide.begin_request()
        try:
            return await self.executor.run(request, on_chunk)
        finally:
            self.tide.end_request()

    async def _ship(
        self, island: str, request: m.InferenceRequest, on_chunk: Callable[[str], Awaitable[None]]
    ) -> m.ResponseEnd:
        if self.horizon.owns(island):  # a cloud island: HORIZON, over HTTPS
            return await self.horizon.ship(island, request, on_chunk)
        transport = self.transport
        if transport is None:
            raise IslandFailed("the mesh is not up yet")
        start = time.monotonic()
        try:
            await self.reach(transport, island)
            road_ms = link_latency_ms(transport.link(island))  # the book keeps the rest
            async with transport.open_stream(island) as stream:
                end = await ship_request(
                    stream, self.sealer, request, on_chunk, config=self.options.shipping
                )
        except IslandRunError as exc:  # dead, frozen, unreachable or refusing: fail over
            log.warning("island %s failed: %s", short_id(island), exc)
            self.membership.report_failure(island, time.time())
            if isinstance(exc, IslandFailed):
                raise
            raise IslandFailed(str(exc)) from None
        self.membership.report_success(island, time.time())
        self.latency.observe(island, max(0.0, (time.monotonic() - start) * 1000 - road_ms))
        return end

    async def _audit(self, record: dict[str, Any]) -> None:
        await trio.to_thread.run_sync(self.audit_log.append, record)

    async def reach(self, transport: Transport, island: str) -> None:
        """Dial ``island`` at its advertised addresses unless already connected.

        Adverts travel by gossip, through other nodes; a request stream needs
        a direct connection. Raises :class:`PeerUnavailable` if no address
        answers (within the dial timeout), so WAVES can fail over at once.
        """
        if island in transport.connected():
            return
        view = next((v for v in self.membership.snapshot() if v.device_id == island), None)
        addresses = view.advert.addresses if view else ()
        for address in addresses:
            with contextlib.suppress(IslandRunError):
                await transport.connect(address)
                return
        raise PeerUnavailable(f"cannot reach {short_id(island)} at {len(addresses)} address(es)")

    def admit(self, device_id: str) -> tuple[str, str] | None:
        """Refuse other people's requests while the battery is at the friend floor."""
        record = self.lookup(device_id)
        kind = None if record is None else record.kind
        floor = self.config.node.friend_battery_floor
        why = friend_floor.refusal(self.tide.report(), kind, floor)
        return None if why is None else (friend_floor.BATTERY_LOW, why)

    async def handle_stream(self, stream: MessageStream) -> None:
        self.tide.begin_request()
        try:
            await serve_request(
                stream,
                self.sealer,
                self.executor,
                is_allowed=self.is_allowed,
                config=self.options.shipping,
                others={**self.pairing.handlers(), **self.group.handlers()},
                admit=self.admit,
            )
        finally:
            self.tide.end_request()


def _view_json(view: IslandView) -> dict[str, Any]:
    a = view.advert
    return {
        "device_id": view.device_id,
        "name": view.name,
        "liveness": view.liveness.value,
        "last_seen": view.last_seen,
        "capacity": a.capacity,
        "in_flight": a.in_flight,
        "battery_pct": a.battery_pct,
        "charging": a.charging,
        "models": [x.name for x in a.models],
        "datasets": [d.name for d in a.datasets],
        "addresses": list(a.addresses),
    }


# --------------------------------------------------------------------- loops


async def advertise_loop(node: Node, transport: Transport) -> None:
    while True:
        now = time.time()
        advert = node.advert()
        if node.advertiser.due(advert, now):
            try:
                await transport.publish(TOPIC_ADVERTS, node.signed_advert(advert, now))
            except (IslandRunError, OSError) as exc:  # retried on the next round
                log.warning("advert not published: %s", exc)
            else:
                node.advertiser.published(advert, now)
        wait = max(0.05, node.advertiser.due_at(advert, now) - now)
        with trio.move_on_after(min(wait, 1.0)):  # re-read TIDE at least every second
            await node.changed.wait()
            node.changed = trio.Event()


async def gossip_loop(node: Node, transport: Transport) -> None:
    async for sender, data in transport.gossip(TOPIC_ADVERTS):
        result = node.membership.ingest(data, sender, time.time())
        if not result.accepted:
            log.debug("advert from %s refused: %s", short_id(sender), result.reason)


async def liveness_loop(node: Node) -> None:
    last_save = time.time()
    while True:
        deadline = node.membership.next_deadline()
        now = time.time()
        await trio.sleep(min(1.0, max(0.0, (deadline or now + 1.0) - now)))
        for change in node.membership.tick(time.time()):
            log.info("island %s: %s", short_id(change.device_id), change.new)
        if time.time() - last_save >= CACHE_INTERVAL:
            node.save_cache()
            last_save = time.time()


def _lan_ips() -> list[str]:
    """This machine's non-loopback IPv4 addresses (to announce over mDNS)."""
    ips = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name == "AF_INET" and not ipaddress.ip_address(a.address).is_loopback:
                ips.append(a.address)
    return ips


def _announce(listen: tuple[str, ...]) -> tuple[list[str], int]:
    """IPs and TCP port to announce over mDNS, from the listen multiaddrs."""
    for address in listen:
        parts = address.strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "ip4" and parts[2] == "tcp":
            ip, port = parts[1], int(parts[3])
            return (_lan_ips() if ip == "0.0.0.0" else [ip]), port
    raise IslandRunError("mDNS needs an /ip4/.../tcp/... listen address")


async def discovery_loop(node: Node, transport: Transport) -> None:
    """Find peers on the LAN; without mDNS the node still runs (bootstrap, pairing)."""
    try:
        await _discover(node, transport)
    except (IslandRunError, OSError) as exc:
        log.warning("mDNS unavailable (%s); continuing without LAN discovery", exc)


async def _discover(node: Node, transport: Transport) -> None:
    from islandrun.transports.mdns import open_mdns

    listen = node.options.listen or node.config.mesh.listen
    ips, port = _announce(transport.addresses())
    everywhere = any("/ip4/0.0.0.0/" in a for a in listen)
    async with open_mdns(
        node.identity.device_id, port, announce_ips=ips, interfaces=None if everywhere else ips
    ) as mdns:
        async for found in mdns.found():
            node.pairing.lan[found.device_id] = found.addresses  # for short-code pairing
            if not node.is_allowed(found.device_id) or found.device_id in transport.connected():
                continue
            for address in found.addresses:
                try:
                    await transport.connect(address)  # already ends in /p2p/<id>
                    log.info("connected to %s found on the LAN", short_id(found.device_id))
                    break
                except IslandRunError as exc:
                    log.debug("mDNS peer %s unreachable: %s", short_id(found.device_id), exc)


# ------------------------------------------------------------------- control


def control_routes(node: Node) -> dict[str, control.Handler]:
    async def status(_: Request) -> Any:
        return node.status()

    async def peers(_: Request) -> Any:
        return node.peers()

    async def invite(request: Request) -> Any:
        body = await request.json()
        return node.pairing.invite(
            str(body.get("tier", "personal")), float(body.get("expires", 600)),
            bool(body.get("short", False)),
        )

    async def join(request: Request) -> Any:
        body = await request.json()
        return await node.pairing.join(body.get("code"), body.get("short"), body.get("address"))

    async def pair_list(_: Request) -> Any:
        return node.pairing.list()

    async def revoke(request: Request) -> Any:
        return await node.pairing.revoke(str((await request.json()).get("device", "")))

    return {
        "/status": status, "/peers": peers, "/pair/invite": invite,
        "/pair/join": join, "/pair/list": pair_list, "/pair/revoke": revoke,
        **node.group.routes(),
    }


# ----------------------------------------------------------------------- run


async def run_node(
    home: Path,
    ident: Identity,
    cfg: NodeConfig,
    options: RunOptions,
    *,
    task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the node until SIGINT/SIGTERM (or cancellation)."""
    from islandrun.transports.libp2p import Libp2pConfig, open_libp2p_transport

    tide = Tide.for_this_device(
        friend_floor.tide_with_floor(TideConfig.preset(cfg.tide.preset),
                                    cfg.node.friend_battery_floor),
        fixed_load=options.fixed_load, fixed_battery=options.fixed_battery,
    )  # fmt: skip
    node = Node(home, ident, cfg, options, tide)
    listen = options.listen or cfg.mesh.listen
    bootstrap = options.bootstrap or cfg.mesh.bootstrap
    mdns = cfg.mesh.mdns if options.mdns is None else options.mdns
    shutdown = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, shutdown)
            await nursery.start(tide.run)
            lan = options.open_lan(node) if options.open_lan else open_libp2p_transport(
                ident.key,
                node.is_allowed,
                # A frozen island must be given up on as fast as a silent one.
                Libp2pConfig(
                    listen=listen,
                    dial_timeout=options.shipping.read_timeout,
                    open_stream_timeout=options.shipping.read_timeout,
                ),
                rng=random.Random(), bootstrap=bootstrap, accepts=node.accepts_gossip,
            )
            async with open_node_transports(
                lan, options.ble, ident.key, node.is_allowed, rng=random.Random()
            ) as net:
                transport = net.transport
                node.transport = node.pairing.transport = transport
                transport.serve(node.handle_stream)
                async with trio.open_nursery() as loops:
                    node.pairing.nursery = loops
                    loops.start_soon(advertise_loop, node, transport)
                    loops.start_soon(gossip_loop, node, transport)
                    loops.start_soon(liveness_loop, node)
                    reloader = Reloader(home, node.executor, options.executor)
                    loops.start_soon(reload_loop, reloader, lambda: node.changed.set())
                    loops.start_soon(sync_loop, node, transport)
                    if mdns:
                        loops.start_soon(discovery_loop, node, net.lan)
                    await loops.start(
                        partial(control.serve_control, shutdown=shutdown),
                        home,
                        control_routes(node),
                    )
                    if options.api:
                        binds = await loops.start(partial(serve_api, node, options, shutdown))
                        node.api_url = binds[0] if binds else None
                    log.info("node %s up at %s", ident.name, ", ".join(transport.addresses()))
                    task_status.started(node)
                    await shutdown.wait()
                    loops.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
    finally:
        node.save_cache()
        with trio.CancelScope(shield=True):
            await node.horizon.__aexit__(None, None, None)


async def serve_api(
    node: Node,
    options: RunOptions,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the OpenAI-compatible API (``node/api.py``) until shutdown."""
    host, _, port = str(options.api).rpartition(":")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not port.isdigit() or not host:
        raise ConfigError(f"--api {options.api!r}: expected HOST:PORT, e.g. 127.0.0.1:4080")
    if not loopback and not options.api_remote:
        raise ConfigError(
            f"--api {options.api}: not a loopback address; pass --api-remote if other machines "
            "should reach the API (it still needs the token)"
        )
    config = Config()
    config.bind = [options.api]
    config.accesslog = None
    config.errorlog = None
    app = api.build_app(node.ask, node.models, api.load_token(node.home))
    await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)


async def _signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return
