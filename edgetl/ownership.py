"""Which folders edgetl may write into or replace: never one it did not write, never the user's data.

A folder is edgetl's own when it carries one of edgetl's marks (a bundle's
``edgetl.json``, a run's ``run.json``, an artifact's ``manifest.json``, a
dataset's ``edgetl-dataset.json``) and holds nothing but the entries edgetl
writes there. Everything else (a file, a non-empty folder of other files, a
folder that is or contains the data) is refused with one line before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import EdgetlError


@dataclass(frozen=True)
class Owned:
    """What edgetl writes into one kind of folder: the marks that say it is edgetl's, and every entry it may hold."""

    what: str  # "run folder", "artifact folder", ...
    marks: tuple[str, ...]
    entries: frozenset[str]


def _is_temp(name: str) -> bool:
    """A temp file or folder of an atomic write (``atomic.py``): edgetl's own in any of its folders."""
    return name.startswith(".") and name.endswith(".tmp")


def check_parents(path: Path, flag: str = "--out") -> None:
    """One line when the first part of ``path`` that exists is a file (``--out notes.txt/run``)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise EdgetlError(f"{flag} {path}: {parent} is a file, not a folder; pick another path")
            return


def _shown(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def guard_data(
    out: str | os.PathLike, data: Iterable[str | os.PathLike], flag: str = "--out", samples: Iterable[str] = ()
) -> None:
    """Refuse an output folder that is, contains or lies inside one of the ``data`` paths, or that contains one
    of the ``samples`` (files a CSV names, wherever they are)."""
    o = _resolved(out)
    plain = Path(os.path.abspath(out))
    for sample in samples:
        parents = Path(os.path.abspath(sample)).parents
        if o in parents or plain in parents:
            raise EdgetlError(f"{flag} {out} contains the data file {sample}; pick an output folder outside the data")
    for d in data:
        p = _resolved(d)
        root = p if p.is_dir() or not p.exists() else p.parent  # a CSV's rows live beside it
        if o == p or o == root:
            raise EdgetlError(f"{flag} {out} is the data folder {d}; pick an output folder outside the data")
        if o in p.parents:
            raise EdgetlError(
                f"{flag} {out} contains the data {d}; pick an output folder outside the data, nothing is written or removed there"
            )
        if p.is_dir() and root in o.parents:
            raise EdgetlError(
                f"{flag} {out} is inside the data folder {d}; the output would become part of the data, "
                f"pick an output folder outside it"
            )


def check_folder(path: str | os.PathLike, owned: Owned, flag: str = "--out", replacing: bool = False) -> bool:
    """Whether ``path`` already holds edgetl's own ``owned`` folder (False: absent or empty).

    Raises a one-line error when it is a file, or a non-empty folder without the mark, or (``replacing``)
    a marked folder that also holds entries edgetl did not write."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise EdgetlError(f"{flag} {path} is a broken symbolic link; remove it or pick another path")
    if path.exists() and not path.is_dir():
        raise EdgetlError(f"{flag} {path} is a file, not a folder; pick a folder path")
    if not path.exists():
        check_parents(path, flag)
        return False
    try:
        names = {p.name for p in path.iterdir()}
    except OSError as exc:
        raise EdgetlError(f"{flag} {path} cannot be read ({exc.strerror}); check its permissions") from None
    if not names:
        return False
    if not any(m in names for m in owned.marks):
        raise EdgetlError(
            f"{flag} {path} is a non-empty folder that edgetl did not write ({_shown(names)}); "
            f"pick a new or empty folder: edgetl never writes into or removes other files"
        )
    if replacing:
        unknown = {n for n in names if n not in owned.entries and not _is_temp(n)}
        if unknown:
            raise EdgetlError(
                f"{flag} {path} is a {owned.what} but also holds files edgetl did not write "
                f"({_shown(unknown)}); move them out first: they would be removed with it"
            )
    return True


def remove_owned(path: str | os.PathLike, owned: Owned) -> None:
    """Empty an edgetl folder that ``check_folder(..., replacing=True)`` accepted: only its known entries go."""
    import shutil

    for entry in Path(path).iterdir():
        if entry.name in owned.entries or _is_temp(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
