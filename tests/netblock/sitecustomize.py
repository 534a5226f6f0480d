"""Loaded by every Python subprocess the tests start (via PYTHONPATH): no network."""

import socket


def _refuse(*args, **kwargs):
    raise OSError("network access blocked by edgetl's test suite")


socket.socket.connect = _refuse  # type: ignore[method-assign]
socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
socket.create_connection = _refuse  # type: ignore[assignment]
socket.getaddrinfo = _refuse  # type: ignore[assignment]
