"""Loaded by every Python subprocess the tests start (via PYTHONPATH): no network beyond this machine's loopback
(which the distributed tests' rendezvous and launchers use)."""

import socket

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _local(address) -> bool:
    return isinstance(address, tuple) and bool(address) and address[0] in LOOPBACK


def _refuse():
    raise OSError("network access blocked by edgetl's test suite")


def _guarded_connect(self, address):
    return _connect(self, address) if _local(address) else _refuse()


def _guarded_connect_ex(self, address):
    return _connect_ex(self, address) if _local(address) else _refuse()


def _guarded_getaddrinfo(host, *args, **kwargs):
    return _getaddrinfo(host, *args, **kwargs) if host in LOOPBACK else _refuse()


def _no_connection(*args, **kwargs):
    _refuse()


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.create_connection = _no_connection  # type: ignore[assignment]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
