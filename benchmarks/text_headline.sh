#!/usr/bin/env bash
# The text headline table: the built-in MiniLM-L6 fine-tuned (two-phase) on real
# language identification (builtin:fortunes-lang), exported to ONNX, OpenVINO and
# TFLite x fp32/fp16/int8-dynamic/int8 with parity on all held-out texts (val+test, 648), then
# benchmarked with PyTorch on this machine's CPU: latency at each text's own length
# and at 128 tokens. Builds the bundle and its exports first if they are missing.
#   bash benchmarks/text_headline.sh  -> benchmarks/results/text-headline-cpu/report.{md,json,png},
#                                        benchmarks/results/text_export_parity.{md,json}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
B=runs/text-demo
if [ ! -f "$B/edgetl.json" ]; then
    .venv/bin/edgetl finetune builtin:fortunes-lang --model minilm-l6 --out "$B" --threads 2
fi
[ -f "$B/export/summary.json" ] || .venv/bin/python benchmarks/export_parity.py --bundle "$B" --parity-samples 648 \
    --name text_export_parity
.venv/bin/edgetl benchmark "$B" --target cpu --runs 300 --rounds 3 --out benchmarks/results/text-headline-cpu
