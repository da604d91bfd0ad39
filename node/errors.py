"""Errors of the node (as opposed to the wire): home, keys, config, control.

Each message says what is wrong and what to do about it, because the CLI
prints them as they are.
"""

from __future__ import annotations

from islandrun.protocol.errors import IslandRunError


class NodeError(IslandRunError):
    """Something about this node's own setup is wrong."""


class KeyFileError(NodeError):
    """The device key file is missing, unsafe or damaged."""


class ConfigError(NodeError):
    """The node config is invalid; the message names the file and the fix."""


class NodeNotRunning(NodeError):
    """A command needs a running node and none answers on its control API."""
