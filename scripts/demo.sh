#!/usr/bin/env bash
# The main job on built-in defaults: fine-tune the real ImageNet MobileNetV2
# (shipped offline) on scikit-learn's real handwritten digits, then show the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/edgetl finetune builtin:digits --out runs/demo --overwrite \
    --model mobilenet_v2 --strategy two-phase --epochs 5 --image-size 96 --augment crop "$@"
.venv/bin/edgetl info runs/demo
