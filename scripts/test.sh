#!/usr/bin/env bash
# The test command: create the environment if missing, then run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
# numpy's OpenBLAS on one thread: its small matmuls gain nothing from more, and in one full-suite run its
# thread pool spun for 12 minutes inside log_mel with onnxruntime, OpenVINO and torch pools in the same process
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest "$@"
