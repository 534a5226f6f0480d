#!/usr/bin/env bash
# The main job on built-in defaults, end to end: fine-tune the real ImageNet MobileNetV2
# (shipped offline) on scikit-learn's real handwritten digits, export it to ONNX,
# OpenVINO and TFLite in fp32/fp16/int8 (each checked against PyTorch and held to the default
# accuracy budget; `--quantize all` adds int8-dynamic), then
# benchmark PyTorch and every artifact on this machine's CPU, and write runs/demo/report.html
# (the pictures of the run, the export and benchmark tables).
# Extra arguments go to `edgetl finetune`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/edgetl finetune builtin:digits --out runs/demo --overwrite \
    --model mobilenet_v2 --strategy two-phase --epochs 5 --image-size 96 --augment crop "$@"
.venv/bin/edgetl info runs/demo
.venv/bin/edgetl export runs/demo --target all --quantize fp32,fp16,int8
.venv/bin/edgetl benchmark runs/demo --target cpu
.venv/bin/edgetl report runs/demo
