#!/usr/bin/env bash
# Reproduce every file in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/python benchmarks/transfer_vs_scratch.py --epochs 6
.venv/bin/python benchmarks/transfer_vs_scratch.py --epochs 6 --per-class 10
.venv/bin/python benchmarks/feature_cache.py --epochs 8
.venv/bin/python benchmarks/memory.py
bash benchmarks/headline.sh
.venv/bin/python benchmarks/memory_export.py --bundle runs/demo
.venv/bin/python benchmarks/benchmark_app_crosscheck.py --bundle runs/demo
.venv/bin/python benchmarks/export_parity.py --bundle runs/bench-transfer/pretrained-two-phase --parity-samples 646
.venv/bin/python benchmarks/export_parity.py --bundle runs/bench-transfer/pretrained-linear --parity-samples 646 --name export_parity_linear
.venv/bin/python benchmarks/text_transfer_vs_scratch.py --epochs 6 --per-class 20
bash benchmarks/text_headline.sh
.venv/bin/edgetl benchmark runs/text-demo --target cpu-1t --runs 300 --rounds 3 --out benchmarks/results/text-headline-cpu-1t
nice -n 19 .venv/bin/python benchmarks/speech_keywords.py
nice -n 19 .venv/bin/python benchmarks/speech_keywords.py --train-voices 2 --runs pretrained-linear,pretrained-two-phase,scratch-full --no-latency
.venv/bin/python benchmarks/export_parity.py --bundle runs/bench-speech/pretrained-two-phase --parity-samples 280 --name speech_export_parity --threads 1
.venv/bin/edgetl benchmark runs/bench-speech/pretrained-two-phase --target cpu-1t --out benchmarks/results/speech_benchmark-cpu-1t
bash benchmarks/int8_guard.sh
.venv/bin/python benchmarks/fault_corpus.py --jobs 2                # as root: the read-only/full tmpfs and chattr cases need it
.venv/bin/python benchmarks/demo_history.py runs/demo               # runs/demo from headline.sh (make demo)
.venv/bin/python benchmarks/report_screenshot.py --bundle runs/demo  # needs Debian's chromium
.venv/bin/python benchmarks/asr_baseline.py                            # espeak-ng sentences into runs/asr-plant/data
