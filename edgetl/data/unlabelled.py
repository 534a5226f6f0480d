"""The target domain of ``--adapt-to``: unlabelled samples, and optionally a labelled split for the report.

- A folder of images or audio clips: every such file under it, at any depth; class sub-folders, if any,
  are ignored. A ``test/`` folder laid out as ``test/<class>/*`` (the source's labels) is the labelled
  report split instead: never trained on, never used to choose a model.
- Texts: a ``.txt`` file (one text per line) or a CSV/TSV/JSONL with the text column; rows whose ``split``
  is ``test`` and that carry a label are the labelled report split.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgetlError
from .sources import Sample
from .text import TextSample

TEST_NAMES = ("test",)


@dataclass
class TargetData:
    origin: str
    unlabelled: list  # Sample / TextSample, label None
    test: list = field(default_factory=list)  # labelled, for the report only


def _files(root: Path, suffixes: set[str], skip: Path | None) -> list[Sample]:
    return [
        Sample(str(f))
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.suffix.lower() in suffixes and not (skip and skip in f.parents)
    ]


def _labelled_test(test_dir: Path, suffixes: set[str], labels: list[str]) -> list[Sample]:
    classes = [p for p in sorted(test_dir.iterdir()) if p.is_dir()]
    if not classes or any(p.name not in labels for p in classes):
        return []  # not laid out by the source's classes: just more unlabelled data
    return [Sample(str(f), label=c.name) for c in classes for f in sorted(c.rglob("*")) if f.suffix.lower() in suffixes]


def scan_target_files(path: Path, suffixes: set[str], kind: str, labels: list[str]) -> TargetData:
    """Images or clips under ``path`` (see the module docstring)."""
    if not path.is_dir():
        raise EdgetlError(f"--adapt-to {path} is not a folder; pass a folder of unlabelled {kind}s")
    test_dir = next((p for p in path.iterdir() if p.is_dir() and p.name.lower() in TEST_NAMES), None)
    test = _labelled_test(test_dir, suffixes, labels) if test_dir else []
    unlabelled = _files(path, suffixes, test_dir if test else None)
    if len(unlabelled) < 2:
        raise EdgetlError(
            f"--adapt-to {path} holds {len(unlabelled)} {kind}s ({', '.join(sorted(suffixes))}) outside test/; "
            f"adaptation needs unlabelled target {kind}s"
        )
    return TargetData(str(path), unlabelled, test)


def scan_target_texts(path: Path, text_column: str, label_column: str, labels: list[str]) -> TargetData:
    """Texts of ``path``: one per line of a .txt, or the text column of a CSV/TSV/JSONL."""
    if not path.is_file():
        raise EdgetlError(
            f"--adapt-to {path} is not a file; pass a .txt (one text per line) or a CSV with a {text_column} column"
        )
    unlabelled: list[TextSample] = []
    test: list[TextSample] = []
    try:
        if path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8-sig").splitlines()
            unlabelled = [TextSample(t.strip()) for t in lines if t.strip()]
        else:
            if path.suffix.lower() == ".jsonl":
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
            else:
                with open(path, newline="", encoding="utf-8-sig") as fh:
                    rows = list(csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
            if rows and text_column not in rows[0]:
                raise EdgetlError(f"--adapt-to {path} has no '{text_column}' column; name it with --text-column")
            for row in rows:
                text = str(row.get(text_column) or "").strip()
                label = str(row.get(label_column) or "").strip()
                if not text:
                    continue
                if str(row.get("split") or "").strip().lower() in TEST_NAMES and label in labels:
                    test.append(TextSample(text, label=label))
                else:
                    unlabelled.append(TextSample(text))
    except (UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise EdgetlError(f"--adapt-to {path} cannot be read ({type(exc).__name__}); save it as UTF-8 text") from None
    if len(unlabelled) < 2:
        raise EdgetlError(f"--adapt-to {path} holds {len(unlabelled)} unlabelled texts; adaptation needs more")
    return TargetData(str(path), unlabelled, test)
