"""Converter chatter into the artifact's ``convert.log``: the terminal keeps one line per artifact and the table.

The converters and quantisers (litert-torch, ai-edge-quantizer, NNCF, OpenVINO, onnxruntime,
torch.onnx, absl) write to the process's file descriptors 1 and 2 from Python and from C++,
so the capture works at that level: both descriptors point at the log for the duration of one
artifact's export. With ``live`` (``edgetl export -v``) a thread copies the same bytes to the
terminal as they arrive.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CONVERT_LOG = "convert.log"
# a line that says something went wrong or may have; counted and the first one quoted in the summary line
_WARNING = re.compile(r"warn(ing)?s?\b|\berror\b|\bfailed\b|deprecat", re.IGNORECASE)
# lines that look like warnings but are not: progress tables, and absl's notice that it logs to stderr before
# it is initialised (printed once by every LiteRT conversion)
_NOT_WARNING = re.compile(
    r"^\s*(\||[-+=│┃┏┗━─]+)|no error|error_bound|errors?:\s*0\b|before absl::InitializeLog\(\) is called", re.IGNORECASE
)


@dataclass
class Captured:
    """What one capture saw: the log file, its line count and the warning lines in it."""

    path: Path
    lines: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal: how many warnings, the first one, and where the rest are."""
        if not self.warnings:
            return ""
        first = " ".join(self.warnings[0].split())[:100]
        more = f" (+{len(self.warnings) - 1} more)" if len(self.warnings) > 1 else ""
        return f"{len(self.warnings)} converter warning{'s' if len(self.warnings) > 1 else ''}: {first}{more}; see {self.path}"


def _flush_all() -> None:
    """Python's and C's buffered output, so that nothing written before a switch lands after it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _copy(src: int, sinks: list[int]) -> None:
    while chunk := os.read(src, 65536):
        for fd in sinks:
            with contextlib.suppress(OSError):
                os.write(fd, chunk)


def _scan(result: Captured) -> None:
    try:
        text = result.path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    result.lines = len(text)
    result.warnings = [line for line in text if _WARNING.search(line) and not _NOT_WARNING.search(line)]


@contextlib.contextmanager
def captured(path: Path, live: bool = False) -> Iterator[Captured]:
    """Inside the block, file descriptors 1 and 2 write to ``path`` (appended); ``live`` also copies them to the
    terminal. The result's line count and warnings are filled in when the block ends."""
    result = Captured(Path(path))
    _flush_all()
    saved = [os.dup(1), os.dup(2)]
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    reader: threading.Thread | None = None
    pipe_r = pipe_w = -1
    try:
        if live:
            pipe_r, pipe_w = os.pipe()
            reader = threading.Thread(target=_copy, args=(pipe_r, [log_fd, saved[1]]), daemon=True)
            reader.start()
            target = pipe_w
        else:
            target = log_fd
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield result
    finally:
        _flush_all()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        if reader is not None:
            os.close(pipe_w)
            reader.join(timeout=5)
            os.close(pipe_r)
        for fd in (*saved, log_fd):
            os.close(fd)
        _scan(result)
