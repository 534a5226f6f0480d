"""Keep the demo run's training history for the test that the diagnosis stays quiet on it.

Run after `make demo` (scripts/demo.sh calls it): reads runs/demo and writes
benchmarks/results/demo_history.jsonl: a first line with the strategy, the best epoch and the train and
val targets (label indices) the under-fitting baseline needs, then one line per epoch (metrics.jsonl).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
out = Path(__file__).parent / "results" / "demo_history.jsonl"
m = json.loads((run / "edgetl.json").read_text())
splits = json.loads((run / "splits.json").read_text())
labels = m["labels"]
meta = {
    "bundle": str(run),
    "created": m["created"],
    "strategy": m["training"]["strategy"],
    "best_epoch": m["metrics"]["best_epoch"],
    "best_metric": m["history"][m["metrics"]["best_epoch"] - 1]["val"]["accuracy"],
    "diagnostics": m["training"]["diagnostics"],
    "train_targets": [labels.index(r["label"]) for r in splits["train"]],
    "val_targets": [labels.index(r["label"]) for r in splits["val"]],
}
out.write_text("".join(json.dumps(r) + "\n" for r in [meta, *m["history"]]))
print(f"wrote {out} ({len(m['history'])} epochs, diagnostics {m['training']['diagnostics']})")
