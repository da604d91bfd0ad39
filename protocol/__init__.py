"""The IslandRun wire protocol, sans-IO: bytes in, objects out.

Nothing in this package opens a socket, reads a clock or imports trio or
libp2p; time is always passed in. That keeps every decoder testable with
plain bytes and lets the same code run over libp2p, BLE and the in-memory
transport.
"""
