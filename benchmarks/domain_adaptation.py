"""Domain adaptation on a real shift: labelled source, unlabelled target, accuracy on the target's labelled test split.

    .venv/bin/python benchmarks/domain_adaptation.py digits                    # every method, seeds 0,1,2
    .venv/bin/python benchmarks/domain_adaptation.py digits --methods none,mcc --seeds 0

Case ``digits``: source builtin:digits-synthetic (printed digits from the system's fonts, in the real set's 8x8
format), target builtin:digits (scikit-learn's real handwritten digits): its train/ images are the unlabelled
adaptation data, its test/ split (360 images) is scored for this table only, never trained on or used to choose.

The fonts of the measured set: `apt-get install --no-install-recommends fonts-dejavu fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-open-sans fonts-roboto-unhinted fonts-lato fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine fonts-comic-neue fonts-humor-sans fonts-cantarell fonts-noto-mono` (167 usable fonts;
other fonts render another source set). Case ``keywords``: source builtin:keywords (48 espeak-ng voices), target
builtin:keywords-field (24 other voices through a harsh channel; train/ and val/ unlabelled, test/ scored).

Every row is one `edgetl finetune ... --adapt-to TARGET --adapt-method M` per seed, in its own process, into
runs/da-bench/CASE/ROW-sSEED (a finished bundle with the same flags is reused). ``source-only`` is method
``none`` (trained and chosen on the source alone); ``target-labelled`` is the upper bound: the same recipe
fine-tuned on the labelled target training images. Results: results/da_CASE.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, RESULTS, run_finetune, save_results  # noqa: E402

# fmt: off
CASES: dict[str, dict[str, Any]] = {
    "digits": {
        "source": "builtin:digits-synthetic",
        "target": "builtin:digits",
        "recipe": ["--model", "mobilenet_v2", "--strategy", "two-phase", "--epochs", "10", "--image-size", "64",
                   "--augment", "crop", "--no-figures", "--patience", "0"],
        "rows": ["source-only", "adabn", "entropy", "mcc", "dann", "self-train", "mcc+self-train", "target-labelled"],
    },
    "keywords": {
        "source": "builtin:keywords",
        "target": "builtin:keywords-field",
        # the frozen Whisper tiny.en encoder and a linear head (batch 8, lr 1e-2): the speech demo's recipe
        "recipe": ["--strategy", "linear", "--epochs", "10", "--batch-size", "8", "--lr-head", "1e-2", "--augment", "none",
                   "--no-figures", "--patience", "0"],
        # AdaBN does not apply (Whisper's encoder has LayerNorm only); DANN's reversed gradient reaches no trained
        # layer of a frozen encoder, so it is source-only chosen by the validator
        "rows": ["source-only", "entropy", "mcc", "dann", "self-train", "mcc+self-train", "target-labelled"],
    },
}
# fmt: on
AUTO_ROWS = {"none": "source-only", "adabn": "adabn", "entropy": "entropy", "mcc": "mcc", "dann": "dann"}
# row -> extra flags (beside --adapt-to); None: the target-labelled upper bound
ROWS: dict[str, list[str] | None] = {
    "source-only": ["--adapt-method", "none"],
    "adabn": ["--adapt-method", "adabn"],
    "entropy": ["--adapt-method", "entropy"],
    "mcc": ["--adapt-method", "mcc"],
    "dann": ["--adapt-method", "dann"],
    "self-train": ["--adapt-method", "none", "--self-train"],
    "mcc+self-train": ["--adapt-method", "mcc", "--self-train"],
    "target-labelled": None,
}


def run(case: dict[str, Any], row: str, seed: int, root: Path) -> dict[str, Any]:
    flags = ROWS[row]
    args = [*case["recipe"], "--seed", str(seed)]
    if flags is None:
        data = case["target"]
    else:
        data, args = case["source"], [*args, "--adapt-to", case["target"], *flags]
    out = root / f"{row}-s{seed}"
    stamp = root / f"{row}-s{seed}.args.json"  # beside the run folder: inside it, it would not be edgetl's own
    manifest_file = out / "edgetl.json"
    if manifest_file.exists() and stamp.exists() and json.loads(stamp.read_text()) == [data, *args]:
        manifest = json.loads(manifest_file.read_text())
    else:
        manifest = run_finetune(data, out, args)
        stamp.write_text(json.dumps([data, *args]))
    m = manifest["metrics"]
    test = m["target_test"] if flags is not None else m["test"]  # builtin:digits' own test split is the target test
    history = manifest["history"]
    return {
        "seed": seed,
        "target_test_accuracy": test["accuracy"],
        "source_val_accuracy": m["val"]["accuracy"],
        "validator": (m.get("target") or {}).get("im"),
        "best_epoch": m["best_epoch"],
        "per_epoch_target_test": [e["target_test"]["accuracy"] for e in history if "target_test" in e],
        "per_epoch_validator": [e["target_im"] for e in history if "target_im" in e],
        "wall_time_s": m["wall_time_s"],
        "peak_rss_mb": m["peak_rss_mb"],
        "args": [data, *args],
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    acc = [r["target_test_accuracy"] for r in runs]
    return {
        "mean": statistics.mean(acc),
        "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "min": min(acc),
        "max": max(acc),
        "seeds": len(acc),
    }


def plot(rows: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, name in enumerate(names):
        accs = [r["target_test_accuracy"] * 100 for r in rows[name]["runs"]]
        s = rows[name]["summary"]
        ax.bar(i, s["mean"] * 100, color="#4477aa" if name != "target-labelled" else "#bbbbbb")
        ax.scatter([i] * len(accs), accs, color="black", s=12, zorder=3)
    base = rows.get("source-only")
    if base:
        ax.axhline(base["summary"]["mean"] * 100, color="#cc3311", ls="--", lw=1, label="source-only mean")
        ax.legend(loc="lower right")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("target test accuracy (%)")
    lo = min(r["target_test_accuracy"] for row in rows.values() for r in row["runs"]) * 100
    ax.set_ylim(max(0, lo - 10), 100)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def auto_row(case: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """What `--adapt-method auto` keeps, seed by seed: its candidates are exactly these rows' runs (the same flags
    and seed), and ``choose`` is the function the CLI calls. Seeds missing a candidate are left out."""
    from edgetl.train.auto_adapt import choose

    names = {m: r for m, r in AUTO_ROWS.items() if r in case["rows"]}
    runs = []
    for seed in sorted({r["seed"] for r in rows.get("source-only", {}).get("runs", [])}):
        found = {m: next((x for x in rows.get(r, {}).get("runs", []) if x["seed"] == seed), None) for m, r in names.items()}
        if any(v is None for v in found.values()):
            continue
        scores = {m: {"source_val": x["source_val_accuracy"], "validator": x["validator"]} for m, x in found.items()}
        chosen, _ = choose(scores)
        runs.append({**found[chosen], "chosen": chosen})
    return {"runs": runs, "summary": summarise(runs)} if runs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--methods", default=None, help="rows to run, comma-separated (default: all of the case's)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--root", default=str(REPO / "runs" / "da-bench"))
    args = ap.parse_args()
    case = CASES[args.case]
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(args.root) / args.case
    results_file = RESULTS / f"da_{args.case}.json"
    old = json.loads(results_file.read_text()).get("rows", {}) if results_file.exists() else {}
    rows = dict(old)
    for row in (args.methods or ",".join(case["rows"])).split(","):
        runs = [run(case, row, seed, root) for seed in seeds]
        rows[row] = {"runs": runs, "summary": summarise(runs)}
    rows.pop("auto", None)
    auto = auto_row(case, rows)
    rows = {k: rows[k] for k in case["rows"] if k in rows}
    if auto:
        upper = {"target-labelled": rows.pop("target-labelled")} if "target-labelled" in rows else {}
        rows = {**rows, "auto": auto, **upper}
    base = rows.get("source-only", {}).get("summary", {}).get("mean")
    lines = [
        f"# Domain adaptation, {args.case}: {case['source']} -> {case['target']}",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/domain_adaptation.py {args.case} --seeds S --methods ROW` with each row's "
        f"seeds (S = 0 where the seeds column says 1, 0,1,2 where it says 3); recipe: `{' '.join(case['recipe'])}`.",
        "Target test accuracy (the target's labelled test split, never trained on or used to choose); mean of the seeds, "
        "their sample standard deviation and range. The label-free validator (information maximisation on held-out "
        "unlabelled target samples) chooses each adapted run's epoch; source-only is chosen on source validation. "
        "auto: what `--adapt-method auto` keeps from the source-only, adabn, entropy, mcc and dann runs of the same "
        "seed (`edgetl.train.auto_adapt.choose`).",
        "",
        "| row | target test accuracy | ± std | min-max | vs source-only | validator (IM) | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        s = row["summary"]
        gain = f"{(s['mean'] - base) * 100:+.1f} pts" if base is not None and name != "source-only" else ""
        ims = [r["validator"] for r in row["runs"] if r["validator"] is not None]
        im = f"{statistics.mean(ims):.3f}" if ims else ""
        label = f"auto (chose {', '.join(r['chosen'] for r in row['runs'])})" if name == "auto" else name
        lines.append(
            f"| {label} | {s['mean'] * 100:.1f}% | {s['std'] * 100:.1f} | {s['min'] * 100:.1f}-{s['max'] * 100:.1f} | "
            f"{gain} | {im} | {s['seeds']} |"
        )
    lines.append("")
    save_results(f"da_{args.case}", {"case": {"name": args.case, **case}, "rows": rows}, "\n".join(lines) + "\n")
    plot(rows, RESULTS / f"da_{args.case}.png", f"{case['source']} -> {case['target']}")
    print("\n".join(lines[6:]))


if __name__ == "__main__":
    main()
