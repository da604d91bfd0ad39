"""The local control API: how CLI commands talk to a running node.

Commands such as ``islandnode peers`` and ``islandnode status`` need the state
of the node running for a home. They reach it over HTTP on a Unix domain
socket, ``<home>/control.sock``, created mode 0600 inside the 0700 home: the
file system decides who may control the node, so there is no token to leak
and nothing listens on a network port. (The OpenAI-compatible API for
applications is separate and token-protected.)

The server side is a Starlette app run by hypercorn under trio; routes are
added by the runtime from plain functions returning JSON-ready values. The
client side is :func:`get`, which turns "no socket" and "connection
refused" into :class:`NodeNotRunning` with the command that fixes it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from islandrun.protocol.errors import IslandRunError

from .errors import NodeError, NodeNotRunning

SOCKET_NAME = "control.sock"
# AF_UNIX paths are limited to 107 bytes on Linux; deep homes fail clearly.
_MAX_SOCKET_PATH = 100

Handler = Callable[[Request], Awaitable[Any]]


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


def _not_running(home: Path) -> NodeNotRunning:
    return NodeNotRunning(
        f"no node is running for {home}; start one with `islandnode --home {home} run`"
    )


def get(home: Path, path: str, *, timeout: float = 5.0) -> Any:
    """GET ``path`` from the node running for ``home``; JSON result."""
    return _call(home, "GET", path, None, timeout)


def post(home: Path, path: str, body: dict[str, Any], *, timeout: float = 30.0) -> Any:
    """POST ``body`` to ``path`` on the node running for ``home``; JSON result."""
    return _call(home, "POST", path, body, timeout)


def _call(home: Path, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
    sock = socket_path(home)
    if not sock.exists():
        raise _not_running(home)
    transport = httpx.HTTPTransport(uds=str(sock))
    try:
        with httpx.Client(transport=transport, base_url="http://node", timeout=timeout) as client:
            response = client.request(method, path, json=body)
    except (httpx.ConnectError, httpx.RemoteProtocolError):
        raise _not_running(home) from None
    except httpx.TimeoutException:
        raise NodeError(f"the node for {home} did not answer within {timeout:.0f} s") from None
    if response.status_code != 200:
        raise NodeError(response.json().get("error", f"the node refused {path}"))
    return response.json()


def claim_socket(home: Path) -> Path:
    """Make sure no other node runs for ``home``; remove a stale socket."""
    sock = socket_path(home)
    if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
        raise NodeError(f"node home path {home} is too long for a control socket; use a shorter")
    if sock.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(os.fspath(sock))
        except OSError:
            sock.unlink(missing_ok=True)  # left behind by a node that died
        else:
            raise NodeError(f"a node is already running for {home}")
        finally:
            probe.close()
    return sock


def build_app(routes: dict[str, Handler]) -> Starlette:
    """A Starlette app whose handlers return JSON-ready values."""

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            try:
                result = await handler(request)
            except IslandRunError as exc:  # the CLI prints it as it is
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(result)

        return call

    return Starlette(
        routes=[Route(path, endpoint(h), methods=["GET", "POST"]) for path, h in routes.items()]
    )


async def serve_control(
    home: Path,
    routes: dict[str, Handler],
    *,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the control API on ``<home>/control.sock`` until ``shutdown``."""
    sock = claim_socket(home)
    config = Config()
    config.bind = [f"unix:{sock}"]
    config.accesslog = None
    config.errorlog = None
    config.umask = 0o177  # the socket is created mode 0600
    try:
        await serve(
            build_app(routes), config, shutdown_trigger=shutdown.wait, task_status=task_status
        )
    finally:
        sock.unlink(missing_ok=True)
