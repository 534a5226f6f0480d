#!/usr/bin/env bash
# The habits CI enforces before the tests: lint, format, types, the import-layer contract (see ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
V=.venv/bin
echo "lint: ruff check" >&2
"$V/ruff" check . --output-format concise
echo "lint: ruff format --check" >&2
"$V/ruff" format --check .
echo "lint: mypy (edgetl_runtime and the public API)" >&2
"$V/mypy"
echo "lint: import layers (lint-imports)" >&2
"$V/lint-imports" --no-cache
