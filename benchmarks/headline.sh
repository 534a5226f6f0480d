#!/usr/bin/env bash
# The headline table: the demo bundle (PyTorch + ONNX, OpenVINO, TFLite x fp32/fp16/
# int8-dynamic/int8) on this machine's CPU with all cores and with one thread.
# Builds the demo bundle and its exports first if they are missing.
#   bash benchmarks/headline.sh      -> benchmarks/results/headline-{cpu,cpu-1t}/report.{md,json,png}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
if [ ! -f runs/demo/edgetl.json ]; then
    .venv/bin/edgetl finetune builtin:digits --out runs/demo --model mobilenet_v2 --strategy two-phase \
        --epochs 5 --image-size 96 --augment crop
fi
[ -d runs/demo/export/tflite-int8-dynamic ] || .venv/bin/edgetl export runs/demo --target all --quantize all  # make demo skips int8-dynamic
for target in cpu cpu-1t; do
    .venv/bin/edgetl benchmark runs/demo --target "$target" --runs 300 --rounds 3 --out "benchmarks/results/headline-$target"
done
