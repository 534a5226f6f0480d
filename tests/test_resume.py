"""kill -9 in the middle of training, --resume, and the same final result."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import write_color_folder


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=10)
    cmd = [
        sys.executable,
        "-m",
        "edgetl",
        "finetune",
        str(data),
        "--image-size",
        "32",
        "--batch-size",
        "4",
        "--epochs",
        "4",
        "--strategy",
        "gradual",
        "--augment",
        "crop-flip",
        "--patience",
        "0",
        "--threads",
        "2",
    ]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cmd + ["--out", str(ref)], check=True, capture_output=True, env=os.environ.copy())

    proc = subprocess.Popen(
        cmd + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "edgetl.json").exists(), "the run finished before the kill: nothing was interrupted"
    assert (killed / "checkpoint.pt").exists()
    done = len(metrics.read_text().splitlines())
    assert 2 <= done < 4

    out = subprocess.run(
        cmd + ["--out", str(killed), "--resume"], check=True, capture_output=True, text=True, env=os.environ.copy()
    )
    assert f"resuming {killed} after epoch" in out.stdout
    a = json.loads((ref / "edgetl.json").read_text())
    b = json.loads((killed / "edgetl.json").read_text())
    assert a["metrics"]["val"] == b["metrics"]["val"]
    assert a["metrics"]["best_epoch"] == b["metrics"]["best_epoch"]
    assert _strip(a["history"]) == _strip(b["history"])
    assert (ref / "model.safetensors").read_bytes() == (killed / "model.safetensors").read_bytes()
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 4
    assert not (killed / "checkpoint.pt").exists()
