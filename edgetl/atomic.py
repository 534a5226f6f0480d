"""Atomic writes: a temp file (or folder) beside the target, renamed onto it when complete.

Temp names carry the writer's process id (``.NAME.PID-XXXX.tmp``), so that
``clean_stale`` can remove what a killed process left behind without touching
what a running one is writing. Storage faults (disk full, read-only, no
permission) come out as one-line ``EdgetlError``s naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import EdgetlError, os_error, write_error

_TEMP = re.compile(r"^\..+\.(\d+)-[^./]+\.tmp$")
LEGACY_TEMP_AGE_S = 6 * 3600  # temp names without a pid (older edgetl): removed once this old


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | os.PathLike, prefix: str = ".") -> list[Path]:
    """Remove temp files and folders in ``folder`` left by killed edgetl processes; returns what was removed.
    In a shared folder (the system's temp folder) ``prefix`` keeps it to edgetl's own names."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.startswith(".") and name.endswith(".tmp")):
            continue
        m = _TEMP.match(name)
        try:
            stale = not _pid_alive(int(m.group(1))) if m else time.time() - entry.lstat().st_mtime > LEGACY_TEMP_AGE_S
        except OSError:
            continue
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


LOW_SPACE_BYTES = 1 << 20  # a write that fails with this little room left failed because the disk is full


def _as_user_error(exc: BaseException, target: Path) -> BaseException | None:
    """A storage fault while writing ``target`` as one line naming the file (its own if the OS named one). Converters
    report a full disk in their own words (OpenVINO: "iostream error"), so an unexplained failure with almost no free
    space left, or in a folder that cannot be written, is reported as that."""
    if isinstance(exc, (EdgetlError, KeyboardInterrupt, SystemExit)):
        return None
    if isinstance(exc, OSError) and exc.filename and not isinstance(exc, FileNotFoundError):
        ours = any(_TEMP.match(part) for part in Path(str(exc.filename)).parts)
        return os_error(exc, target if ours else None)  # name the user's target, not edgetl's temp file
    known = write_error(exc, target)
    if known is not None or not isinstance(exc, Exception):
        return known
    try:
        if shutil.disk_usage(target.parent).free < LOW_SPACE_BYTES:
            return write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), target)
    except OSError:
        pass
    code = unwritable(target.parent)
    return write_error(OSError(code, os.strerror(code)), target) if code else None


def unwritable(folder: Path) -> int | None:
    """Why new files cannot go into ``folder`` (or the first part of its path that exists): EROFS or EACCES; None
    when they can."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or os.access(existing, os.W_OK):
        return None
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return errno.EROFS if read_only else errno.EACCES


@contextmanager
def _storage_faults(target: Path) -> Iterator[None]:
    """Inside: a storage fault while writing ``target`` comes out as one ``EdgetlError`` line (``_as_user_error``)."""
    try:
        yield
    except BaseException as exc:
        err = _as_user_error(exc, target)
        if err is not None:
            raise err from None
        raise


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    tmp_path: Path | None = None
    try:
        with _storage_faults(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent)
            os.close(fd)
            tmp_path = Path(tmp)
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, target)
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``target``; on success it replaces ``target`` (an older folder there is
    moved aside, then removed), on failure it is removed and ``target`` stays as it was. Callers decide
    beforehand whether an existing ``target`` may be replaced (``ownership.py``)."""
    target = Path(target)
    tmp: Path | None = None
    try:
        with _storage_faults(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
            yield tmp
            if target.exists() or target.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
                os.replace(target, old / target.name)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | os.PathLike, data: Any) -> None:
    """JSON with ``allow_nan=False``: a NaN or infinity never passes as a result."""
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    except ValueError:
        raise EdgetlError(f"refusing to write {target}: it would hold a non-finite number (nan or inf)") from None
    write_text(target, text + "\n")
