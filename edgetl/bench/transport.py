"""Run the staged runner on a target: here (a fresh local process) or on an SSH device.

The stage is a folder with the ``edgetl-runtime`` wheel (the torch-free package a device
installs; its ``edgetl_runtime.bench`` measures), ``inputs.npy`` and, for devices, the
artifacts. The wheel runs straight from ``PYTHONPATH`` (a pure-Python wheel is a zip
Python imports from), here and on devices alike, so nothing is installed on the device.
Each measurement is its own process: memory is its own and no thread pool is shared.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

from edgetl_runtime.bench import RESULT_MARK

from ..errors import EdgetlError
from ..runtime_wheel import build_wheel
from .targets import Profile

RUNNER = ["-m", "edgetl_runtime.bench"]


def build_stage(stage: Path) -> str:
    """Put the runtime wheel into ``stage``; returns its file name (what goes on ``PYTHONPATH``)."""
    wheel = build_wheel()
    shutil.copy2(wheel, stage / wheel.name)
    return wheel.name


def parse_result(stdout: str, where: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = stdout.strip().splitlines()[-1:] or ["no output"]
    raise EdgetlError(f"{where}: the benchmark runner gave no result ({tail[0][:200]})")


class LocalTransport:
    """Runs the runner with this Python in a fresh process."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.stage: Path | None = None

    def describe(self) -> str:
        return "local"

    def prepare(self, stage: Path, artifacts: dict[str, Path]) -> dict[str, str]:
        self.stage = stage
        return {name: str(path.resolve()) for name, path in artifacts.items()}

    def run(self, args: list[str], timeout: float) -> dict[str, Any]:
        assert self.stage is not None
        wheels = sorted(str(w) for w in self.stage.glob("edgetl_runtime-*.whl"))
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join(wheels)}
        try:
            proc = subprocess.run(
                [sys.executable, *RUNNER, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=self.stage
            )
        except subprocess.TimeoutExpired:
            raise EdgetlError(f"the benchmark runner took more than {timeout:.0f} s; lower --runs") from None
        return parse_result(proc.stdout, "local")

    def close(self) -> None:
        pass


def _remote_path(path: str) -> str:
    """Quote for the remote shell, letting a leading ~/ expand to the remote $HOME."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class SshTransport:
    """Copies the stage to the device over SSH (key auth, host key checked) and runs it with the device's Python."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.conn = profile.connection
        self.remote = f"{self.conn.workdir.rstrip('/')}/{uuid.uuid4().hex[:12]}"

    def describe(self) -> str:
        return f"ssh {self.conn.address}:{self.conn.port}"

    def _ssh_cmd(self) -> list[str]:
        cmd = [
            "ssh",
            "-p",
            str(self.conn.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        if self.conn.known_hosts:
            cmd += ["-o", f"UserKnownHostsFile={os.path.expanduser(self.conn.known_hosts)}"]
        if self.conn.key:
            key = os.path.expanduser(self.conn.key)
            if not os.path.isfile(key):
                raise EdgetlError(f"{self.profile.path}: SSH key {key} does not exist; set connection.key")
            cmd += ["-i", key, "-o", "IdentitiesOnly=yes"]
        return cmd + [self.conn.address]

    def _ssh(self, remote_cmd: str, timeout: float, stdin: Any = None) -> subprocess.CompletedProcess:
        if shutil.which("ssh") is None:
            raise EdgetlError("no ssh client on this machine; install openssh-client")
        try:
            proc = subprocess.run(self._ssh_cmd() + [remote_cmd], stdin=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgetlError(f"{self.profile.name} ({self.describe()}): no answer within {timeout:.0f} s") from None
        if proc.returncode == 255:
            reason = (proc.stderr.decode(errors="replace").strip().splitlines() or ["connection failed"])[-1]
            raise EdgetlError(
                f"cannot reach target {self.profile.name} ({self.describe()}): {reason}; "
                f"check [connection] in {self.profile.path}"
            )
        return proc

    def prepare(self, stage: Path, artifacts: dict[str, Path]) -> dict[str, str]:
        python = _remote_path(self.conn.python)
        probe = self._ssh(f"{python} -c 'import sys; print(sys.version.split()[0])'", timeout=30)
        if probe.returncode != 0:
            raise EdgetlError(
                f"target {self.profile.name} ({self.describe()}) has no working Python at {self.conn.python}; "
                f"set connection.python in {self.profile.path}"
            )
        with tempfile.TemporaryFile() as tar_file:
            with tarfile.open(fileobj=tar_file, mode="w") as tar:
                tar.add(stage, arcname=".")
                for name, path in artifacts.items():
                    tar.add(path, arcname=f"artifacts/{name}")
            tar_file.seek(0)
            remote = _remote_path(self.remote)
            proc = self._ssh(f"mkdir -p {remote} && tar -xf - -C {remote}", timeout=600, stdin=tar_file)
        if proc.returncode != 0:
            err = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            raise EdgetlError(f"copying to {self.profile.name} ({self.describe()}:{self.remote}) failed: {err}")
        return {name: f"artifacts/{name}" for name in artifacts}

    def run(self, args: list[str], timeout: float) -> dict[str, Any]:
        cmd = (
            f'cd {_remote_path(self.remote)} && PYTHONPATH="$(ls edgetl_runtime-*.whl)" '
            f"{_remote_path(self.conn.python)} {shlex.join(RUNNER + args)}"
        )
        proc = self._ssh(cmd, timeout=timeout)
        return parse_result(proc.stdout.decode(errors="replace"), f"{self.profile.name} ({self.describe()})")

    def close(self) -> None:
        try:
            self._ssh(f"rm -rf {_remote_path(self.remote)}", timeout=60)
        except EdgetlError:
            pass


def transport_for(profile: Profile) -> LocalTransport | SshTransport:
    return SshTransport(profile) if profile.connection.kind == "ssh" else LocalTransport(profile)
