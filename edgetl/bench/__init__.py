"""Benchmark harness: accuracy, latency, throughput, size and memory of a bundle's artifacts on a target.

from edgetl.bench import run_benchmark
report = run_benchmark("runs/demo", target="cpu")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..bundle import BENCH_DIR
from ..errors import EdgetlError
from .harness import BenchmarkOptions, benchmark
from .report import budget_failures, check_report_folder, write_report
from .targets import Profile, find_profile, list_profiles


class BudgetFailed(EdgetlError):
    """``--strict``: an artifact misses one of the target's budgets."""

    exit_code = 4


def run_benchmark(
    bundle_dir: str | Path, out: str | Path | None = None, progress: Callable[[str, int, int], None] | None = None, **options: Any
) -> dict[str, Any]:
    """Benchmark, then write report.json / report.md / report.png to ``out``
    (default ``BUNDLE/benchmark/<target>/``); returns the report with the file paths."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    profile = find_profile(options.get("target", "cpu"))
    folder = Path(out) if out else Path(bundle_dir) / BENCH_DIR / profile.name
    check_report_folder(folder)  # before the run: a bad --out must not cost a whole benchmark
    report = {"date": started, **benchmark(bundle_dir, progress=progress, **options)}
    report["files"] = {k: str(v) for k, v in write_report(report, folder).items()}
    return report


__all__ = ["BenchmarkOptions", "BudgetFailed", "Profile", "budget_failures", "find_profile", "list_profiles", "run_benchmark"]
