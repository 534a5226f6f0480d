#!/usr/bin/env bash
# An adapted bundle through export and benchmark like any other: the digits mcc + self-training bundle of
# benchmarks/domain_adaptation.py (seed 0; built first if missing), copied to runs/da-export, exported to every
# target in fp32 and int8 (int8 calibrated on the bundle's unlabelled target split by default, parity on the
# labelled target test split), then benchmarked on the target test split (the default for an adapted bundle).
#   bash benchmarks/da_export.sh   -> benchmarks/results/da_export/{export.txt,report.{md,json,png}}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
src=runs/da-bench/digits/mcc+self-train-s0
[ -f "$src/edgetl.json" ] || .venv/bin/python benchmarks/domain_adaptation.py digits --seeds 0 --methods mcc+self-train
rm -rf runs/da-export && mkdir -p runs benchmarks/results/da_export
cp -r "$src" runs/da-export
.venv/bin/edgetl export runs/da-export --target all --quantize fp32,int8 | tee benchmarks/results/da_export/export.txt
.venv/bin/edgetl benchmark runs/da-export --target cpu --runs 300 --rounds 3 --out benchmarks/results/da_export
