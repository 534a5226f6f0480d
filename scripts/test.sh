#!/usr/bin/env bash
# The test command: create the environment if missing, then run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec .venv/bin/python -m pytest "$@"
