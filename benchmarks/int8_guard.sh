#!/usr/bin/env bash
# The accuracy guard on three real cases that are hard for int8 (issue 12's evidence): every target x
# precision exported with the default budget, the int8 table before/after the ladder, then PyTorch and every
# kept artifact benchmarked on one thread (which artifact to deploy, and whether guarded int8 beats fp32).
#   1. MobileNetV2, linear head (feature extraction), real handwritten digits at 96 px;
#   2. MiniLM-L6 two-phase on Debian package descriptions -> 12 archive sections (apt-cache dumpavail);
#   3. whisper-tiny.en encoder, linear head, 16 confusable keywords (yes/yet, no/know, go/goal, up/cup,
#      down/town, off/of, on/one, stop/shop) + silence from espeak-ng voices, unseen test voices.
# Builds the datasets and bundles if missing.
#   bash benchmarks/int8_guard.sh  -> benchmarks/results/int8_guard_{digits_linear,debian_text,speech_keywords}.{md,json},
#                                     benchmarks/results/int8_guard_*-cpu-1t/report.{md,json,png}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
E=.venv/bin/edgetl
[ -f runs/bench-transfer/pretrained-linear/edgetl.json ] || $E finetune builtin:digits --out runs/bench-transfer/pretrained-linear \
    --model mobilenet_v2 --image-size 96 --epochs 6 --strategy linear --augment none --lr-head 1e-2
if [ ! -f runs/debian-minilm/edgetl.json ]; then
    mkdir -p runs/data; [ -f runs/data/debian-sections.csv ] || { apt-cache dumpavail > runs/data/dumpavail.txt
        .venv/bin/python benchmarks/debian_sections.py runs/data/dumpavail.txt --out runs/data/debian-sections.csv --per-class 200; }
    $E finetune runs/data/debian-sections.csv --out runs/debian-minilm --model minilm-l6 --max-length 64 --threads 2
fi
if [ ! -f runs/kwhard-linear/edgetl.json ]; then
    [ -f runs/data/kwhard/edgetl-dataset.json ] || $E data keywords --out runs/data/kwhard --silence \
        --words yes,yet,no,know,go,goal,up,cup,down,town,off,of,on,one,stop,shop
    $E finetune runs/data/kwhard --out runs/kwhard-linear --strategy linear --epochs 12 --batch-size 8 --lr-head 1e-2 --augment none
fi
for b in bench-transfer/pretrained-linear:digits_linear debian-minilm:debian_text kwhard-linear:speech_keywords; do
    B=runs/${b%%:*}; N=${b##*:}
    .venv/bin/python benchmarks/int8_guard.py --bundle "$B" --name "int8_guard_$N" || true   # exit 3 if one is rejected
    $E benchmark "$B" --target cpu-1t --out "benchmarks/results/int8_guard_$N-cpu-1t"
done
