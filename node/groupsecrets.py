"""Cloud API keys the owner chose to share with their own devices: opt-in, one key at a time.

What it is. By default a cloud island's API key never leaves the device
whose environment holds it: ``groupconfig`` syncs the *name* of the
variable (``api_key_env``), never its value. The owner may opt one key in::

    islandnode cloud add NAME --url URL --model M --api-key-env VAR --sync-key
    islandnode cloud sync-key NAME        # an existing entry
    islandnode cloud unsync-key NAME      # take it out of the group again

The CLI reads VAR's value in its *own* shell and hands it to the running
node over the control socket (``control``: a Unix socket, mode 0600); the
node writes it into the personal group state as the last-writer-wins
register ``secret.cloud.NAME`` (:func:`share_key`). From there it lives
only in each personal device's replica, encrypted at rest with that
device's key (``groupstate_store``), and in sync messages between personal
devices, each sealed end to end to the one device that pulls
(``groupsync``). It is never written to ``config.toml`` or the baseline
file (``groupconfig`` adopts only ``policy.*`` and ``cloud.*`` registers),
nor put in adverts, logs, the audit log, error messages or reprs
(``GroupOp``'s repr leaves out values).

Which key HORIZON sends (:func:`key_source`): the device's own environment
variable when it is set there, else the synced key, else none -- and then
the cloud is refused with a message saying how to fix it.

Taking it back. ``cloud unsync-key NAME`` sets the register to ``null``
(:func:`unshare_key`); so does removing the cloud, on any device: a removal
(``cloud.NAME`` set to ``null``) made later, by hybrid logical clock, than
the key was shared makes every device that still holds the key write the
``null`` itself (:func:`drop_removed`), so it goes even if the device that
removed the cloud never saw the key. A ``SET`` register keeps only its
winning op, so the replaced value is gone from every replica's stored state
at its next save, and no device passes it on.

**The risk.** A key that has reached a device cannot be taken back from
it. A device that is lost, stolen or revoked later keeps what it had
stored, and it can decrypt that with its own key; unsyncing only stops
future copies. If you shared a key and then revoke a device (or lose
one), **rotate the key** at the provider. Friends and edge devices never
receive it: group state is served only to, and pulled only from, devices
paired as personal, and the ops they might relay are refused unless a
personal device signed them.

What it is not: no merging (``groupstate``), no wire (``groupsync``), no
clock (time comes in). :func:`control_routes` is the node's side of the CLI
commands; the commands are in ``cmd_cloud``.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from islandrun.protocol import messages as m

from .config import CloudSection, load_config
from .errors import NodeError
from .groupconfig import CLOUD_PREFIX
from .groupstate import GroupState

if TYPE_CHECKING:
    from .control import Handler
    from .groupnode import GroupNode

log = logging.getLogger("islandrun.group")

SECRET_PREFIX = "secret.cloud."
#: Longest API key accepted (provider keys are well under 200 characters).
MAX_KEY_CHARS = 4096


class KeySource(enum.Enum):
    """Where a device gets a cloud's API key from."""

    ENVIRONMENT = "environment"  # its own api_key_env variable is set
    SYNCED = "synced"  # shared through the personal group
    MISSING = "missing"  # it needs one and has neither
    NONE = "none"  # the cloud takes no key


class KeyRefused(NodeError):
    """A key cannot be shared (the message never quotes it)."""


def register_key(cloud: str) -> str:
    return SECRET_PREFIX + cloud


def check_api_key(value: object) -> str:
    """``value`` if it can be an API key in an HTTP header; :class:`KeyRefused` if not."""
    if not isinstance(value, str) or not value:
        raise KeyRefused("the API key is empty; set the variable to the key and try again")
    if len(value) > MAX_KEY_CHARS:
        raise KeyRefused(f"the API key is longer than {MAX_KEY_CHARS} characters; check it")
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        raise KeyRefused("the API key holds spaces or characters an HTTP header cannot "
                         "carry; check the variable's value")
    return value


def synced_key(state: GroupState, cloud: str) -> str | None:
    """The key shared for ``cloud`` in the personal group, if any."""
    value = state.register(register_key(cloud))
    return value if isinstance(value, str) and value else None


def synced_clouds(state: GroupState) -> set[str]:
    """The clouds whose key is shared in the personal group."""
    return {k[len(SECRET_PREFIX):] for k, v in state.registers(SECRET_PREFIX).items() if v}


def share_key(state: GroupState, cloud: str, value: object, now_ms: int) -> m.GroupOp:
    return state.set_register(register_key(cloud), check_api_key(value), now_ms)


def unshare_key(state: GroupState, cloud: str, now_ms: int) -> bool:
    """Take ``cloud``'s key out of the group; False if none was shared."""
    if synced_key(state, cloud) is None:
        return False
    state.set_register(register_key(cloud), None, now_ms)
    return True


def drop_removed(state: GroupState, now_ms: int) -> list[str]:
    """Unshare the key of every cloud removed after its key was shared; their names."""
    gone = []
    for cloud in sorted(synced_clouds(state)):
        removed = state.register_stamp(CLOUD_PREFIX + cloud)
        shared = state.register_stamp(register_key(cloud))
        if (removed is not None and shared is not None and removed > shared
                and state.register(CLOUD_PREFIX + cloud) is None):
            unshare_key(state, cloud, now_ms)
            gone.append(cloud)
    return gone


def key_source(cloud: CloudSection, env: Mapping[str, str], synced: bool) -> KeySource:
    """Where HORIZON takes ``cloud``'s key from (the order ``horizon`` uses)."""
    if cloud.api_key_env and env.get(cloud.api_key_env):
        return KeySource.ENVIRONMENT
    if synced:
        return KeySource.SYNCED
    return KeySource.MISSING if cloud.api_key_env else KeySource.NONE


def key_sources(
    clouds: tuple[CloudSection, ...], synced: set[str], env: Mapping[str, str]
) -> dict[str, str]:
    """Cloud name -> where its key comes from (never the key); ``synced``: :func:`synced_clouds`."""
    return {c.name: key_source(c, env, c.name in synced).value for c in clouds}


def control_routes(group: GroupNode, now_ms: Callable[[], int]) -> dict[str, Handler]:
    """The node's side of ``cloud sync-key``, ``unsync-key`` and ``list``."""

    def clouds() -> tuple[CloudSection, ...]:
        return load_config(group.home).cloud

    async def share(request: Request) -> Any:
        body = await request.json()
        name = str(body.get("name", ""))
        if name not in {c.name for c in clouds()}:
            raise KeyRefused(f"no cloud island named {name[:64]!r} in this node's config; "
                             "add it first (`islandnode cloud add`)")
        share_key(group.state, name, body.get("key"), now_ms())
        group.dirty = True
        log.info("the API key of cloud %s is shared with the personal group", name)
        return {"name": name, "synced": True}

    async def unshare(request: Request) -> Any:
        name = str((await request.json()).get("name", ""))
        removed = unshare_key(group.state, name, now_ms())
        if removed:
            group.dirty = True
            log.info("the API key of cloud %s is no longer shared", name)
        return {"name": name, "removed": removed}

    async def sources(_: Request) -> Any:
        return key_sources(clouds(), synced_clouds(group.state), os.environ)

    return {"/cloud/sync-key": share, "/cloud/unsync-key": unshare, "/cloud/keys": sources}
