"""User-facing errors: one line, exit status 2 from the CLI; faults of the world outside turned into them."""

from __future__ import annotations

import errno
import os

from edgetl_runtime.errors import EdgetlError

__all__ = ["EdgetlError", "os_error", "storage_errno", "write_error"]

# what to do about an OS error, by errno
_ADVICE = {
    errno.EACCES: "check its permissions or pick another location",
    errno.EPERM: "check its permissions or pick another location",
    errno.EROFS: "the file system is read-only: pick a writable location",
    errno.ENOSPC: "the disk is full: free some space or pick another location",
    errno.EDQUOT: "the disk quota is used up: free some space or pick another location",
    errno.ENOTDIR: "a part of the path is a file, not a folder: pick another path",
    errno.EISDIR: "it is a folder, not a file: pass a file",
    errno.ENOENT: "it does not exist: check the path",
    errno.EEXIST: "it already exists: pick another path",
    errno.ENAMETOOLONG: "the name is too long: pick a shorter path",
    errno.EIO: "the device reported an I/O error: check the disk",
}
# how storage faults read when a library wraps them in its own exception (safetensors, torch.save)
_STORAGE_WORDS = (
    ("no space left", errno.ENOSPC),
    ("storagefull", errno.ENOSPC),
    ("os error 28", errno.ENOSPC),
    ("read-only file system", errno.EROFS),
    ("readonlyfilesystem", errno.EROFS),
    ("os error 30", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("os error 13", errno.EACCES),
    ("file write failed", errno.EIO),
    ("disk quota", errno.EDQUOT),
)


def os_error(exc: OSError, path: str | os.PathLike | None = None, action: str = "") -> EdgetlError:
    """``exc`` as one line naming the file and what to do: ``cannot write X: No space left on device; ...``."""
    where = path if path is not None else (exc.filename or "")
    reason = exc.strerror or type(exc).__name__
    advice = _ADVICE.get(exc.errno or 0, "check the path and try again")
    lead = f"cannot {action} {where}" if action else f"{where}"
    return EdgetlError(f"{lead}: {reason}; {advice}".strip(": "))


def storage_errno(exc: BaseException) -> int | None:
    """The errno of a storage fault, also when a library reports it in its own exception type; else None."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    text = str(exc).lower().replace(" ", "") if not isinstance(exc, OSError) else ""
    for words, code in _STORAGE_WORDS:
        if words.replace(" ", "") in text:
            return code
    return None


def write_error(exc: BaseException, path: str | os.PathLike) -> EdgetlError | None:
    """An ``EdgetlError`` for a failed write of ``path`` when ``exc`` is a storage fault, else None."""
    code = storage_errno(exc)
    if code is None:
        return None
    os_exc = exc if isinstance(exc, OSError) and exc.strerror else OSError(code, os.strerror(code))
    return os_error(os_exc, path, "write")
