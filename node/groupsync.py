"""Anti-entropy between the owner's personal devices: the group-state wire protocol.

One pull uses one :class:`~islandrun.node.shipping.Session`, so every message
is sealed end to end to the other device's key (and only that device can
open it); every op inside is also signed by the device that made it::

    puller -> server   GroupPull(vector)                      "what I know"
    server -> puller   GroupDelta(ops, vector, more)          one page of what it lacks
    puller -> server   GroupPull(vector, after=last dot)      next page, while ``more``
    ...                                                       (at most MAX_PAGES)

The server answers only a member of the personal group (a device paired as
*personal*): anyone else gets an ``ErrorMessage`` ``not_personal`` and not a
byte of state, and a puller only ever pulls from members -- friends, edge
islands and cloud islands never receive any of it, nor can they inject any
(``GroupState.apply`` refuses ops whose author is not a member). The puller
merges the server's vector only after the last page (see ``groupstate``).

The server also learns from each pull what the puller knows (``note_ack``):
that is how budgets bound unacknowledged spend and tombstones get compacted.

What it is not: it does not choose whom to pull from or when (``groupnode``).
"""

from __future__ import annotations

from collections.abc import Callable

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError

from .groupstate import GroupState, Vector
from .shipping import Session

#: Pages one pull may take: MAX_PAGES x MAX_DELTA_OPS ops, far above a
#: replica's bounded size, and a bound on a misbehaving peer.
MAX_PAGES = 256
NOT_PERSONAL = "not_personal"


class SyncFailed(IslandRunError):
    """A pull did not complete; what was applied stays (ops are idempotent)."""


def to_vector(entries: tuple[m.VersionEntry, ...]) -> Vector:
    return {e.device: e.counter for e in entries}


def from_vector(vector: Vector) -> tuple[m.VersionEntry, ...]:
    return tuple(m.VersionEntry(device=d, counter=c) for d, c in sorted(vector.items()))


async def serve_pull(
    session: Session, first: m.GroupPull, state: GroupState, is_member: Callable[[str], bool]
) -> None:
    """Answer a pull (an ``others`` handler of ``shipping.serve_request``)."""
    if not is_member(session.peer):
        await session.send(m.ErrorMessage(code=NOT_PERSONAL,
                                          message="group state is shared with personal devices"))
        return
    vector = to_vector(first.vector)
    state.note_ack(session.peer, vector)
    snapshot = from_vector(state.vector())
    pull = first
    for _ in range(MAX_PAGES):
        after = (pull.after_device, pull.after_counter) if pull.after_device else None
        ops, more = state.delta(vector, after)
        await session.send(m.GroupDelta(ops=tuple(ops), vector=snapshot, more=more))
        if not more:
            return
        pull = await session.receive()
        if not isinstance(pull, m.GroupPull):
            return


async def pull(session: Session, state: GroupState, is_member: Callable[[str], bool]) -> int:
    """Pull what ``session.peer`` has and this replica lacks; how many ops were new."""
    if not is_member(session.peer):
        raise SyncFailed("group state is only pulled from personal devices")
    vector = from_vector(state.vector())
    await session.send(m.GroupPull(vector=vector))
    new = 0
    for _ in range(MAX_PAGES):
        reply = await session.receive()
        if isinstance(reply, m.ErrorMessage):
            raise SyncFailed(f"the other device refused to sync ({reply.code})")
        if not isinstance(reply, m.GroupDelta):
            raise SyncFailed(f"unexpected {type(reply).__name__} during sync")
        for op in reply.ops:
            new += state.apply(op, is_member)
        if not reply.more:
            state.merge_vector(to_vector(reply.vector))
            return new
        if not reply.ops:
            raise SyncFailed("the other device sent an empty page with more to come")
        last = reply.ops[-1]
        await session.send(m.GroupPull(vector=vector, after_device=last.author,
                                       after_counter=last.counter))
    raise SyncFailed(f"sync took more than {MAX_PAGES} pages")
