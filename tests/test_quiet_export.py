"""Quiet exports: converter output goes to each artifact's convert.log; the terminal gets a line per artifact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgetl.export.convert_log import CONVERT_LOG, captured


def test_capture_takes_python_and_c_level_output(tmp_path):
    """Both descriptors, written from Python and from C (libc's own buffered stdout), land in the log."""
    log = tmp_path / CONVERT_LOG
    code = f"""
import ctypes, sys, os
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from edgetl.export.convert_log import captured
from pathlib import Path
print("before")
with captured(Path({str(log)!r})) as cap:
    print("from python stdout")
    print("UserWarning: something the user should see", file=sys.stderr)
    ctypes.CDLL(None).printf(b"from C stdout\\n")
    os.write(2, b"from fd 2\\n")
print("after", cap.lines, len(cap.warnings))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    for line in ("from python stdout", "from C stdout", "from fd 2", "UserWarning"):
        assert line in text
    assert proc.stdout.splitlines() == ["before", "after 4 1"]
    assert proc.stderr == ""


def test_live_capture_also_reaches_the_terminal(tmp_path, capfd):
    log = tmp_path / CONVERT_LOG
    with captured(log, live=True) as cap:
        os.write(1, b"converter says hello\n")
    out, err = capfd.readouterr()
    assert "converter says hello" in err  # the live copy goes to the terminal's stderr
    assert "converter says hello" in log.read_text() and cap.lines == 1 and not cap.warnings


def test_cli_export_prints_a_line_per_artifact_and_keeps_logs(exportable_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(exportable_bundle, bundle, ignore=shutil.ignore_patterns("export", "benchmark"))
    cmd = [sys.executable, "-m", "edgetl", "export", str(bundle), "--target", "onnx,openvino", "--quantize", "fp32,int8-dynamic"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    for name in ("onnx-fp32", "onnx-int8-dynamic", "openvino-fp32", "openvino-int8-dynamic"):
        art = bundle / "export" / name
        assert (art / CONVERT_LOG).is_file()
        assert json.loads((art / "manifest.json").read_text())["log"] == CONVERT_LOG
        assert sum(f"{name}: done in" in line for line in lines) == 1
    # four progress lines, the table (title, borders, header, four rows) and nothing of the converters
    assert len(lines) < 20, "\n".join(lines)
    assert not [line for line in lines if "nncf" in line.lower() or line.startswith(("W1", "I0", "INFO"))]
