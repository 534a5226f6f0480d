"""Language identification over real human-written sentences: Debian's fortunes packages.

``builtin:fortunes-lang`` is a CSV ``text,label,split`` built from the fortune
cookies installed under ``/usr/share/games/fortunes``: English (fortunes-min),
German, Spanish, Italian, Brazilian Portuguese and Polish. Attribution lines
(``-- Name``) are dropped, whitespace is collapsed, texts of 20 to 300
characters that are mostly letters are kept, duplicates removed; a seeded
sample of at most ``per_language`` per language, 20% of it a fixed test split.
Nothing is downloaded: missing packages are a one-line error naming them.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..errors import EdgetlError


def fortunes_dir() -> Path:
    return Path(os.environ.get("EDGETL_FORTUNES_DIR", "/usr/share/games/fortunes"))


# label -> (Debian package, files or folders under fortunes_dir())
LANGUAGES: dict[str, tuple[str, list[str]]] = {
    "en": ("fortunes-min", ["fortunes", "literature", "riddles"]),
    "de": ("fortunes-de", ["de"]),
    "es": ("fortunes-es", ["es"]),
    "it": ("fortunes-it", ["it"]),
    "pt": ("fortunes-br", ["brasil"]),
    "pl": ("fortunes-pl", ["pl"]),
}
_ATTRIBUTION = re.compile(r"^\s*(--|—|~~)")


def _files(root: Path, names: list[str]) -> list[Path]:
    """Fortune files (not .dat indexes, .u8 links or the offensive 'off' folders), sorted."""
    out: list[Path] = []
    for name in names:
        p = root / name
        candidates = sorted(p.rglob("*")) if p.is_dir() else [p]
        out += [
            f
            for f in candidates
            if f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8") and "off" not in f.relative_to(root).parts
        ]
    return out


def clean(cookie: str) -> str:
    lines = [ln for ln in cookie.splitlines() if not _ATTRIBUTION.match(ln)]
    return " ".join(" ".join(lines).split())


def read_cookies(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [clean(c) for c in re.split(r"^%\s*$", text, flags=re.M)]


def _keep(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    return 20 <= len(text) <= 300 and letters >= 0.7 * len(text) and "\ufffd" not in text and "\x08" not in text


def write_fortunes_lang(
    out: Path,
    per_language: int = 300,
    test_fraction: float = 0.2,
    seed: int = 0,
    languages: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out/fortunes-lang.csv`` (text,label,split) and return its path (an existing one only with ``overwrite``;
    nothing else in ``out`` is touched)."""
    path = Path(out) / "fortunes-lang.csv"
    if Path(out).exists() and not Path(out).is_dir():
        raise EdgetlError(f"--out {out} is a file, not a folder; pick a folder to write fortunes-lang.csv into")
    if path.exists() and not overwrite:
        raise EdgetlError(f"{path} already exists; pass --overwrite to write it again or pick another --out")
    if per_language < 1:
        raise EdgetlError("--per-language must be at least 1")
    root = fortunes_dir()
    missing = [
        pkg for label, (pkg, names) in LANGUAGES.items() if (not languages or label in languages) and not _files(root, names)
    ]
    if missing:
        raise EdgetlError(
            f"builtin:fortunes-lang needs Debian's fortune packages; run `apt-get install {' '.join(missing)}` (looked in {root})"
        )
    rng = np.random.default_rng(seed)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label", "split"])
    for label, (_, names) in LANGUAGES.items():
        if languages and label not in languages:
            continue
        texts = sorted({t for f in _files(root, names) for t in read_cookies(f) if _keep(t)})
        chosen = [texts[i] for i in rng.permutation(len(texts))[:per_language]]
        n_test = int(round(len(chosen) * test_fraction))
        for i, text in enumerate(chosen):
            writer.writerow([text, label, "test" if i < n_test else "train"])
    write_text(path, buf.getvalue())
    return path
