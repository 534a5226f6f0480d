"""The benchmark harness on real artifacts in real runtimes, locally and over a real SSH server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sshd import SSHD, ssh_profile, start_sshd

from edgetl.bench import run_benchmark
from edgetl.errors import EdgetlError
from edgetl.export import export

ARTIFACTS = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("tflite", "fp32")]
QUICK = dict(runs=6, min_seconds=0.0, warmup=1, rounds=2, batch=4, samples=12, threads=1)


@pytest.fixture(scope="module")
def bench_bundle(exportable_bundle, tmp_path_factory) -> Path:
    """A copy of the shared bundle with four artifacts exported."""
    dest = tmp_path_factory.mktemp("bench") / "bundle"
    shutil.copytree(exportable_bundle, dest, ignore=shutil.ignore_patterns("export"))
    for target, precision in ARTIFACTS:
        export(
            dest, target, precision, calibration_samples=8, parity_samples=12, max_accuracy_drop=None
        )  # the guard: test_int8_guard
    return dest


class _Result:
    def __init__(self, r) -> None:
        self.returncode, self.stdout, self.stderr = r.exit_code, r.stdout, r.stderr


def _cli(*args: str) -> _Result:
    """The CLI in-process (the runners it starts are still fresh processes); saves a torch import per call."""
    from typer.testing import CliRunner

    from edgetl.cli import app

    return _Result(CliRunner().invoke(app, list(args)))


def test_local_benchmark_all_runtimes(bench_bundle, tmp_path):
    report = run_benchmark(bench_bundle, out=tmp_path / "r", target="cpu", **QUICK)
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"pytorch", "onnx-fp32", "onnx-int8", "openvino-fp32", "tflite-fp32"}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    for name in ("pytorch", "onnx-fp32", "openvino-fp32", "tflite-fp32"):
        assert rows[name]["agreement"] == 1.0 and rows[name]["delta_points"] == 0.0 and rows[name]["max_abs_diff"] < 1e-3
    for r in rows.values():
        assert r["runs"] == 6 and r["rounds"] == 2
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["throughput_per_s"] > 0 and r["load_s"] > 0 and r["size_mb"] > 0
        assert len(set(r["pids"])) == 2  # a fresh process per round
    assert len({pid for r in rows.values() for pid in r["pids"]}) == 10  # and per artifact
    # each process measures its own memory: torch's is larger than an onnxruntime process's,
    # and neither inherits the (torch-loaded) harness's peak
    assert rows["onnx-fp32"]["peak_rss_mb"] < rows["pytorch"]["peak_rss_mb"]
    assert rows["onnx-int8"]["size_mb"] < rows["onnx-fp32"]["size_mb"] / 2
    m = report["machine"]
    assert m["cpu"] and m["cores"] >= 1 and isinstance(m["isa"], list)
    assert report["protocol"]["threads"] == 1 and report["protocol"]["interleaved"]
    for kind in ("json", "md", "png"):
        assert Path(report["files"][kind]).is_file()
    assert json.loads(Path(report["files"]["json"]).read_text())["rows"][1]["name"] == report["rows"][1]["name"]
    assert Image.open(report["files"]["png"]).size[0] > 500
    md = Path(report["files"]["md"]).read_text()
    assert "| onnx-int8 |" in md and "Machine:" in md and "onnxruntime" in md


def _profile(path: Path, budgets: str) -> Path:
    path.write_text(
        f'name = "{path.stem}"\n[connection]\nkind = "local"\n[runtime]\nthreads = 1\n'
        f'runtimes = ["onnxruntime"]\nprecisions = ["fp32"]\n[budgets]\n{budgets}\n'
    )
    return path


def test_budgets_and_strict(bench_bundle, tmp_path):
    tight = _profile(tmp_path / "tight.toml", "p90_ms = 0.0001\nmodel_mb = 100\nram_mb = 100000")
    args = [
        "benchmark",
        str(bench_bundle),
        "--target",
        str(tight),
        "--runs",
        "3",
        "--min-seconds",
        "0",
        "--rounds",
        "1",
        "--warmup",
        "1",
        "--samples",
        "6",
        "--out",
        str(tmp_path / "tight"),
    ]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr  # budgets reported, not enforced
    report = json.loads((tmp_path / "tight" / "report.json").read_text())
    (row,) = report["rows"]
    assert row["name"] == "onnx-fp32"
    assert row["budgets"]["p90_ms"]["pass"] is False and row["budgets"]["model_mb"]["pass"] is True
    assert "FAIL p90_ms" in (tmp_path / "tight" / "report.md").read_text()
    strict = _cli(*args, "--strict")
    assert strict.returncode == 4
    assert "budget(s) missed" in strict.stderr and "p90 latency" in strict.stderr
    loose = _profile(tmp_path / "loose.toml", "p90_ms = 100000\nmodel_mb = 100\nram_mb = 100000")
    ok = _cli(
        "benchmark",
        str(bench_bundle),
        "--target",
        str(loose),
        "--runs",
        "3",
        "--rounds",
        "1",
        "--samples",
        "6",
        "--out",
        str(tmp_path / "loose"),
        "--strict",
    )
    assert ok.returncode == 0, ok.stderr


def test_cuda_target_runs_or_skips_clearly(bench_bundle, tmp_path):
    proc = _cli(
        "benchmark",
        str(bench_bundle),
        "--target",
        "cuda",
        "--runs",
        "3",
        "--rounds",
        "1",
        "--samples",
        "6",
        "--out",
        str(tmp_path / "cuda"),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "cuda" / "report.json").read_text())
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    statuses = {r["runtime"]: r["status"] for r in report["rows"]}
    if not has_cuda:
        assert statuses["torch"] == "skipped" and statuses["onnxruntime"] == "skipped"
        assert "skipped on cuda: torch" in proc.stdout and "no CUDA device" in proc.stdout
    else:
        assert statuses["torch"] == "ok"


@pytest.mark.parametrize(
    "args, text",
    [
        (["--target", "nope"], "unknown target 'nope'"),
        (["--artifacts", "onnx-fp99"], "no exported artifact onnx-fp99"),
        (["--runs", "0"], "--runs must be at least 1"),
    ],
)
def test_bad_requests_are_one_line(bench_bundle, args, text):
    proc = _cli("benchmark", str(bench_bundle), *args)
    assert proc.returncode == 2 and text in proc.stderr and "Traceback" not in proc.stderr


def test_bad_profile_names_the_file(bench_bundle, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[runtime]\nruntimes = ["tensorrt"]\n')
    proc = _cli("benchmark", str(bench_bundle), "--target", str(bad))
    assert proc.returncode == 2 and str(bad) in proc.stderr and "unknown runtime tensorrt" in proc.stderr
    bad.write_text("name = \n")
    proc = _cli("benchmark", str(bench_bundle), "--target", str(bad))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_targets_lists_shipped_profiles():
    proc = _cli("targets")
    assert proc.returncode == 0
    for name in ("cpu", "cpu-1t", "cuda", "rpi5", "jetson-orin-nano"):
        assert name in proc.stdout


# --- SSH devices, against a real OpenSSH server on 127.0.0.1 -------------------------------------

needs_sshd = pytest.mark.skipif(
    not Path(SSHD).exists() and not os.environ.get("EDGETL_REQUIRE_SSHD"),
    reason="openssh-server is not installed (.ci/run installs it)",
)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@needs_sshd
def test_ssh_device_benchmark(bench_bundle, sshd, tmp_path):
    workdir = tmp_path / "device"
    profile = ssh_profile(sshd, tmp_path / "box.toml", python=sys.executable, workdir=workdir)
    report = run_benchmark(bench_bundle, out=tmp_path / "r", target=str(profile), **{**QUICK, "rounds": 1})
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"onnx-fp32", "onnx-int8", "tflite-fp32"}  # the profile's runtimes; no PyTorch on a device
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert rows["onnx-fp32"]["agreement"] == 1.0 and rows["tflite-fp32"]["max_abs_diff"] < 1e-3
    assert report["target"]["connection"] == f"ssh {sshd.user}@127.0.0.1:{sshd.port}"
    assert all(r["budgets"]["p90_ms"]["pass"] for r in rows.values())
    assert workdir.is_dir() and not any(workdir.iterdir())  # the device's copy is cleaned up


@needs_sshd
def test_ssh_device_errors_name_what_is_missing(bench_bundle, sshd, tmp_path):
    def run(**kw):
        profile = ssh_profile(sshd, tmp_path / "box.toml", workdir=tmp_path / "device", **kw)
        return _cli(
            "benchmark",
            str(bench_bundle),
            "--target",
            str(profile),
            "--runs",
            "2",
            "--rounds",
            "1",
            "--samples",
            "4",
            "--out",
            str(tmp_path / "r"),
        )

    wrong_key = tmp_path / "known_hosts"
    wrong_key.write_text(
        f"[127.0.0.1]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn3dpsPyx8SzP1hBq0WEBbQkm6FEV3GqUTDuAMcO1cT\n"
    )
    proc = run(python=sys.executable, known_hosts=wrong_key)
    assert proc.returncode == 2 and "cannot reach target box" in proc.stderr and "Host key verification failed" in proc.stderr

    proc = run(python=sys.executable, port=1)  # nothing listens there
    assert proc.returncode == 2 and "cannot reach target box" in proc.stderr

    proc = run(python="/nonexistent/python3")
    assert proc.returncode == 2 and "no working Python at /nonexistent/python3" in proc.stderr

    bare = tmp_path / "bare-venv"  # a device Python without numpy or any runtime
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    proc = run(python=str(bare / "bin" / "python"), runtimes='["onnxruntime"]')
    assert proc.returncode == 1
    assert "cannot import numpy: install it" in proc.stderr and "onnx-fp32" in proc.stderr


def test_runner_needs_no_torch_or_edgetl(bench_bundle, tmp_path):
    """The runner shipped to devices (the runtime wheel) imports only numpy and the artifact's runtime."""
    from edgetl.bench.transport import build_stage

    wheel = build_stage(tmp_path)
    import numpy as np

    np.save(tmp_path / "inputs.npy", np.zeros((2, 3, 32, 32), np.float32))
    code = (
        "import runpy, sys; sys.argv = ['bench', '--artifact', sys.argv[1], '--inputs', 'inputs.npy', '--runs', '2'];"
        "\ntry: runpy.run_module('edgetl_runtime.bench', run_name='__main__')\nexcept SystemExit: pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'edgetl', 'timm', 'transformers', 'tensorflow')]\n"
        "print('FORBIDDEN', bad); import edgetl_runtime; print(edgetl_runtime.__file__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bench_bundle / "export" / "onnx-fp32")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path / wheel)},
    )
    assert '"ok": true' in proc.stdout, proc.stdout + proc.stderr
    assert f"{wheel}/edgetl_runtime/__init__.py" in proc.stdout
    assert "FORBIDDEN []" in proc.stdout


def test_benchmark_of_a_non_bundle_is_one_line(tmp_path):
    with pytest.raises(EdgetlError, match="not an edgetl bundle"):
        run_benchmark(tmp_path)
