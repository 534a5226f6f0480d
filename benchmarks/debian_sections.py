"""A real, hard text task built offline: Debian package descriptions -> archive section.

Reads `apt-cache dumpavail` (run `sudo apt-get update` first so the package lists are
complete), keeps the topical sections (utils, net, science, admin, games, x11, text,
sound, graphics, math, web, misc), drops the package name from the text, removes
duplicate descriptions (-dbg/-doc siblings) and writes a balanced CSV of text,label.

    apt-cache dumpavail > /tmp/dumpavail.txt
    .venv/bin/python benchmarks/debian_sections.py /tmp/dumpavail.txt --out data/debian-sections.csv [--per-class 200]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

SECTIONS = ("utils", "net", "science", "admin", "games", "x11", "text", "sound", "graphics", "math", "web", "misc")


def records(path: Path):
    block: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + [""]:
        if not line.strip():
            if block:
                yield block
            block, key = {}, None
        elif line[0] in " \t" and key:
            block[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            block[key] = value.strip()


def text_of(rec: dict[str, str]) -> str:
    desc = rec.get("Description", "")
    lines = [ln for ln in desc.split("\n") if ln and ln != "."]
    text = " ".join(lines)
    name = rec.get("Package", "")
    text = re.sub(re.escape(name), "", text, flags=re.IGNORECASE) if name else text
    return re.sub(r"\s+", " ", text).strip()[:600]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dumpavail")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    by: dict[str, dict[str, str]] = {s: {} for s in SECTIONS}
    for rec in records(Path(a.dumpavail)):
        section = rec.get("Section", "").split("/")[-1]
        if section in by:
            text = text_of(rec)
            if len(text) > 40:
                by[section].setdefault(text.lower(), text)
    rng = random.Random(a.seed)
    rows = []
    for section, texts in by.items():
        chosen = sorted(texts.values())
        rng.shuffle(chosen)
        rows += [(t, section) for t in chosen[: a.per_class]]
    rng.shuffle(rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    print(
        f"{out}: {len(rows)} texts, {len(SECTIONS)} sections, "
        + ", ".join(f"{s} {min(len(t), a.per_class)}" for s, t in by.items())
    )


if __name__ == "__main__":
    main()
