"""``--adapt-method auto``: train every applicable method, keep the one the label-free validator prefers.

Each candidate (source-only, AdaBN on BatchNorm backbones, entropy, MCC, DANN; each with ``--self-train`` when
asked) is an ordinary run in ``OUT/candidates/METHOD`` (resumable on its own). The choice uses no target label:

1. a candidate whose source validation accuracy fell more than ``MAX_SOURCE_DROP`` below source-only's is out
   (it no longer solves the labelled task: AdaBN and collapsed adversarial runs fall here);
2. of the rest, source-only included, the highest information maximisation on held-out target samples wins.

The chosen bundle is copied to ``OUT`` (sample paths rewritten for its new place) and its manifest records every
candidate's scores under ``data.target.auto``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..bundle import (
    BUNDLE_SUBDIR,
    EVALUATION,
    FIGURES,
    MANIFEST,
    SPLITS,
    WEIGHTS,
    BundleManifest,
    read_manifest,
    read_splits,
    relative_paths,
    write_manifest,
)
from ..errors import EdgetlError
from .config import ADAPT_METHODS, FinetuneConfig

CANDIDATES = ADAPT_METHODS  # every method; one that does not apply raises NotApplicable and is skipped
CANDIDATES_DIR = "candidates"
MAX_SOURCE_DROP = 0.03  # accuracy: 3 points of source validation


class NotApplicable(EdgetlError):
    """A candidate method that does not apply to this model (AdaBN without BatchNorm)."""


def choose(scores: dict[str, dict[str, float]]) -> tuple[str, dict[str, str]]:
    """The chosen method among ``scores`` ({method: {"source_val", "validator"}}), and why each other lost."""
    base = scores["none"]["source_val"]
    why: dict[str, str] = {}
    eligible = {}
    for name, s in scores.items():
        if name != "none" and s["source_val"] < base - MAX_SOURCE_DROP:
            why[name] = f"source validation {s['source_val']:.4f} is more than {MAX_SOURCE_DROP:g} below source-only's {base:.4f}"
        else:
            eligible[name] = s
    best = max(eligible, key=lambda n: (eligible[n]["validator"], n == "none"))  # a tie keeps source-only
    for name in eligible:
        if name != best:
            why[name] = f"validator {eligible[name]['validator']:.4f} < {eligible[best]['validator']:.4f}"
    return best, why


def scores_of(manifest: dict[str, Any]) -> dict[str, float]:
    """What ``choose`` reads of a candidate's bundle."""
    metrics = manifest["metrics"]
    return {"source_val": float(metrics["val"]["accuracy"]), "validator": float(metrics["target"]["im"])}


def finetune_auto(cfg: FinetuneConfig, resume: bool, run: Any, choose_here: bool = True) -> Path:
    """Train the candidates into ``cfg.out``/candidates (``run(cfg, resume)`` trains one and returns its folder), then
    copy the chosen one to ``cfg.out`` (``choose_here`` False: a distributed run's other ranks, which only train)."""
    out = Path(cfg.out)
    folders: dict[str, Path] = {}
    for method in CANDIDATES:
        folder = out / CANDIDATES_DIR / method
        try:
            folders[method] = run(replace(cfg, out=str(folder), adapt_method=method), folder.exists())
        except NotApplicable:
            continue
    if not choose_here:
        return out
    manifests = {m: read_manifest(f) for m, f in folders.items()}
    scores = {m: scores_of(man) for m, man in manifests.items()}
    chosen, why = choose(scores)
    auto = {"chosen": chosen, "candidates": scores, "not_chosen": why, "max_source_drop": MAX_SOURCE_DROP}
    _copy_bundle(folders[chosen], manifests[chosen], out, auto)
    return out


def _copy_bundle(src: Path, manifest: dict[str, Any], out: Path, auto: dict[str, Any]) -> None:
    """The chosen candidate's bundle into ``out``; the manifest, written last, marks it complete."""
    for name in (WEIGHTS, EVALUATION):
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    for name in (FIGURES, BUNDLE_SUBDIR):
        if (src / name).is_dir():
            shutil.rmtree(out / name, ignore_errors=True)  # edgetl's own: an earlier copy of this step
            shutil.copytree(src / name, out / name)
    splits = read_splits(src, manifest)
    paths = manifest["data"].get("paths")
    if paths:  # image and audio samples are files, stored relative to the bundle: relative to its new place
        splits = relative_paths(splits, out)
        manifest["data"]["paths"] = {**paths, "bundle_was_at": str(out.resolve())}
    write_json(out / SPLITS, splits)
    manifest["data"]["target"] = {**manifest["data"]["target"], "auto": auto}
    manifest["training"] = {**manifest["training"], "adapt_method": "auto", "adapt_method_chosen": auto["chosen"]}
    write_manifest(out, BundleManifest.from_json(manifest, out / MANIFEST))
