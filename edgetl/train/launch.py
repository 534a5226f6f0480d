"""``edgetl finetune --nproc N``: N ranks of one run on this machine, started the way torchrun starts them (the same
environment variables, a free local port) and watched: when a rank fails, the others are stopped within seconds and
the failure is one line.

Rank 0 keeps the terminal's stdout (its progress and epoch lines); the other ranks print nothing. Every rank's
stderr comes through this process, which passes rank 0's warnings on and keeps the ranks' ``error:`` lines, so a
failure is said once, by the rank that caused it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from ..errors import EdgetlError

OPTIONS_ENV = "EDGETL_RANK_OPTIONS"  # the finetune options every rank runs with (JSON)
RANK_COMMAND = ("-m", "edgetl", "rank")  # the CLI's hidden command that runs one rank (cli.rank)
LOST_PEER = "another process of this run stopped"  # distributed.lost_peer: a consequence, not the cause
STOP_GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Rank:
    def __init__(self, rank: int, nproc: int, port: int, options: dict[str, Any], threads: int) -> None:
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(nproc),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(nproc),
            OPTIONS_ENV: json.dumps(options),
        }
        env.setdefault("OMP_NUM_THREADS", str(threads))  # the machine's cores shared out, as torchrun would not
        self.rank = rank
        self.errors: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, *RANK_COMMAND],
            env=env,
            stdout=None if rank == 0 else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("error:") or line.startswith("interrupted"):
                self.errors.append(line.rstrip("\n"))
            elif self.rank == 0:
                sys.stderr.write(line)
                sys.stderr.flush()

    def cause(self, nproc: int) -> str:
        """What this failed rank says went wrong."""
        self.reader.join(timeout=STOP_GRACE_S)
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
            return f"rank {self.rank} of {nproc} was killed by {name}"
        if self.errors:
            return self.errors[-1].removeprefix("error:").strip()
        return f"rank {self.rank} of {nproc} exited with code {rc}"


def launch_local(nproc: int, options: dict[str, Any]) -> None:
    """Run ``edgetl finetune`` with ``options`` as ``nproc`` local ranks; return when all finished, raise one
    ``EdgetlError`` when one failed (after stopping the others)."""
    port = free_port()
    threads = max(1, usable_cores() // nproc)
    ranks = [_Rank(r, nproc, port, options, threads) for r in range(nproc)]
    try:
        while True:
            codes = [r.proc.poll() for r in ranks]
            if all(c == 0 for c in codes):
                for r in ranks:
                    r.reader.join(timeout=STOP_GRACE_S)
                return
            failed = [r for r, c in zip(ranks, codes) if c not in (None, 0)]
            if failed:
                break
            time.sleep(0.1)
    except KeyboardInterrupt:  # the ranks got the same SIGINT: let them end, then say it once
        _stop(ranks, signal.SIGINT)
        raise
    time.sleep(0.3)  # a rank that died takes its peers with it within moments: let them report before choosing
    failed = [r for r in ranks if r.proc.poll() not in (None, 0)]  # before the stop: those are ours, not causes
    _stop(ranks, signal.SIGTERM)
    causes = [(r, r.cause(nproc)) for r in failed]
    root = next(((r, c) for r, c in causes if LOST_PEER not in c), causes[0])
    rank, cause = root
    code = rank.proc.returncode
    if code is not None and code < 0:
        out = options.get("out")
        raise EdgetlError(
            f"{cause}; the other ranks were stopped; {out} keeps the last finished epoch: run the same command with "
            f"--resume to continue"
        )
    err = EdgetlError(cause if cause.startswith("rank ") else f"rank {rank.rank} of {nproc}: {cause}")
    err.exit_code = code if code and code > 0 else 2
    raise err


def _stop(ranks: list[_Rank], sig: signal.Signals) -> None:
    for r in ranks:
        if r.proc.poll() is None and sig != signal.SIGINT:
            r.proc.send_signal(sig)
    deadline = time.time() + STOP_GRACE_S
    for r in ranks:
        try:
            r.proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
