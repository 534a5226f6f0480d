"""The suite itself must prove it runs offline."""

import os
import socket
import subprocess
import sys

import pytest


def test_sockets_are_refused_in_process():
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(OSError, match="blocked"):
        socket.socket().connect(("10.255.255.1", 80))


def test_sockets_are_refused_in_subprocesses():
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\nexcept OSError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert "blocked" in out.stdout
    # beyond loopback (which the distributed tests' rendezvous uses), connect and name lookups are refused too
    code = (
        "import socket\nfor f in (lambda: socket.socket().connect(('10.255.255.1', 80)), lambda: socket.getaddrinfo('pypi.org', 443)):\n"
        "    try:\n        f()\n    except OSError as e:\n        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert out.stdout.count("blocked") == 2


def test_import_sets_hub_offline_flags():
    code = "import os, edgetl; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "1"]
