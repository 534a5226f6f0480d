"""Helpers shared by the benchmark scripts: the machine, runs in fresh processes, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, instruction-set flags of interest, library versions."""
    cpu, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem_gib = None
    try:
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem_gib = round(mem_kb / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    import torch

    from edgetl.bundle import library_versions

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "isa": sorted(
            f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
        ),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": library_versions(),
    }


def run_finetune(data: str, out: Path, args: list[str]) -> dict[str, Any]:
    """One `edgetl finetune` in its own process (so its peak RSS is its own); returns the manifest."""
    cmd = [sys.executable, "-m", "edgetl", "finetune", data, "--out", str(out), "--overwrite", *args]
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=REPO)
    manifest = json.loads((out / "edgetl.json").read_text())
    manifest["process_wall_s"] = round(time.time() - t0, 2)
    return manifest


def run_row(manifest: dict[str, Any], args: list[str], train_key: str) -> dict[str, Any]:
    """What a pretrained-vs-scratch table keeps of one fine-tuning run (its bundle manifest)."""
    m = manifest["metrics"]
    return {
        "val": m["val"],
        "test": m["test"],
        "wall_time_s": m["wall_time_s"],
        "peak_rss_mb": m["peak_rss_mb"],
        "epochs": m["epochs_run"],
        "weights": manifest["weights_source"]["kind"],
        "args": args,
        train_key: manifest["data"]["splits"]["train"],
    }


def save_results(name: str, payload: dict[str, Any], markdown: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine_info(), **payload}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    header = (
        f"_{payload['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"torch {m['versions'].get('torch')}, {m['torch_threads']} threads._\n\n"
    )
    (RESULTS / f"{name}.md").write_text(markdown.replace("{{machine}}", header))
    return RESULTS / f"{name}.json"
