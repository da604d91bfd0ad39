from __future__ import annotations

from pathlib import Path

import pytest
import trio
from starlette.requests import Request

from islandrun.node import control
from islandrun.node.errors import NodeError, NodeNotRunning


async def _hello(request: Request) -> dict:
    return {"hello": "world"}


async def test_get_from_a_running_node(home: Path) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: control.serve_control(
            home, {"/hello": _hello}, shutdown=shutdown, task_status=task_status))
        sock = control.socket_path(home)
        assert sock.stat().st_mode & 0o777 == 0o600
        result = await trio.to_thread.run_sync(control.get, home, "/hello")
        assert result == {"hello": "world"}
        with pytest.raises(NodeError, match="already running"):
            control.claim_socket(home)
        shutdown.set()
    assert not control.socket_path(home).exists()


def test_no_node_running(home: Path) -> None:
    with pytest.raises(NodeNotRunning, match=r"islandnode --home .* run"):
        control.get(home, "/peers")


def test_stale_socket_is_not_running_and_gets_reclaimed(home: Path) -> None:
    import socket

    sock = control.socket_path(home)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    s.close()  # a socket file nobody listens on: a node that died
    with pytest.raises(NodeNotRunning):
        control.get(home, "/peers")
    control.claim_socket(home)
    assert not sock.exists()
