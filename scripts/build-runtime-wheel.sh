#!/usr/bin/env bash
# Build the edgetl-runtime wheel (the torch-free package for devices) into dist/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
OUT="${1:-dist}"
.venv/bin/python - "$OUT" <<'PYEOF'
import sys
from edgetl.runtime_wheel import build_wheel
print(build_wheel(sys.argv[1]))
PYEOF
