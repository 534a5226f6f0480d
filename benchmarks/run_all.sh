#!/usr/bin/env bash
# Reproduce every file in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/python benchmarks/transfer_vs_scratch.py --epochs 6
.venv/bin/python benchmarks/transfer_vs_scratch.py --epochs 6 --per-class 10
.venv/bin/python benchmarks/feature_cache.py --epochs 8
.venv/bin/python benchmarks/memory.py
