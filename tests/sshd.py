"""A real OpenSSH server on 127.0.0.1 for the SSH target tests: throwaway host and
client keys, key authentication only, the host key pinned in a known_hosts file."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    known_hosts: Path
    process: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:  # 127.0.0.1 only: the netblock allows loopback
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """From /proc/net/tcp: the test suite refuses socket connections, even to loopback."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":
            return True
    return False


def start_sshd(root: Path) -> SshServer:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    host_key, client_key = root / "host_ed25519", root / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PrintMotd no",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = root / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    known = root / "known_hosts"
    host_pub = host_key.with_suffix(".pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()}")
        if _listening(port):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()}")
    return SshServer(port, getpass.getuser(), client_key, known, proc, log)


def ssh_profile(
    server: SshServer,
    path: Path,
    python: str,
    workdir: Path,
    runtimes: str = '["onnxruntime", "litert"]',
    known_hosts: Path | None = None,
    port: int | None = None,
) -> Path:
    path.write_text(f"""
name = "{path.stem}"
description = "test device: OpenSSH on 127.0.0.1"

[connection]
kind = "ssh"
host = "127.0.0.1"
user = "{server.user}"
port = {port or server.port}
key = "{server.key}"
known_hosts = "{known_hosts or server.known_hosts}"
python = "{python}"
workdir = "{workdir}"

[runtime]
threads = 1
runtimes = {runtimes}

[budgets]
p90_ms = 10000
model_mb = 100
ram_mb = 4000
""")
    return path
