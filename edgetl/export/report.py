"""The export table: one row per artifact (parity, the guard's drop with its interval, the rung it took,
batch-1 latency during the check) and the speed advice under it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetl_runtime import ARTIFACT_MANIFEST

from ..errors import EdgetlError

COLUMNS = (
    "artifact",
    "size MB",
    "max |diff|",
    "top-1 agree",
    "metric torch -> artifact",
    "drop [95% CI]",
    "guard",
    "p50 ms",
    "export s",
)


def fp32_p50(artifact: Any) -> float | None:
    """Batch-1 p50 of the same target's fp32 artifact beside this one, measured during its own check."""
    m = artifact.manifest
    sibling = Path(artifact.path).parent / f"{m['target']}-fp32" / ARTIFACT_MANIFEST
    try:
        return float(json.loads(sibling.read_text(encoding="utf-8"))["parity"]["p50_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def guard_cell(manifest: dict[str, Any]) -> str:
    g = manifest.get("guard") or {}
    if g.get("budget") is None:
        return "off"
    rung = g.get("rung", "default")
    if rung == "default":
        return "ok"
    text = rung.split(":")[0] + (f" {g['calibration']}" if g.get("calibration") != "default" else "")
    if g.get("float_layers"):
        text += f" +{len(g['float_layers'])} float"
    return f"{text} (was {g['drop_before']:+.2f})"


def slower_than_fp32(artifact: Any) -> float | None:
    """The fp32 p50 when this int8 artifact was slower than it on this machine, else None."""
    m = artifact.manifest
    if not m["precision"].startswith("int8"):
        return None
    base, own = fp32_p50(artifact), m.get("parity", {}).get("p50_ms")
    return base if base is not None and own is not None and own > base else None


def transcription_cells(m: dict[str, Any], p: dict[str, Any]) -> list[str]:
    """A transcription artifact in the export table: tokens equal to PyTorch's, WER, encoder and per-token ms."""
    return [
        m["name"],
        f"{m['size_bytes'] / 1e6:.2f}",
        f"{p['clips'] - p['mismatched_clips']}/{p['clips']} clips",
        f"{p['token_match']:.4f}",
        f"WER {p['reference_wer']:.4f} -> {p['wer']:.4f}",
        f"{p['wer_drop_points']:+.2f} WER points",
        "-",
        f"enc {p['encoder_ms_p50']:.0f} + {p['per_token_ms_p50']:.1f}/token",
        f"{m['export_seconds']:.1f}",
    ]


def export_rows(
    done: list[Any], failed: list[tuple[str, str, EdgetlError]]
) -> tuple[tuple[str, ...], list[list[str]], list[dict], list[str]]:
    """(columns, table cells, summary.json rows, notes under the table)."""
    cells, rows, notes = [], [], []
    for a in done:
        m, p = a.manifest, a.parity
        if m.get("task") == "transcription":
            cells.append(transcription_cells(m, p))
            rows.append({"artifact": m["name"], "path": str(a.path), "size_bytes": m["size_bytes"],
                         "export_seconds": m["export_seconds"], "parity": p})  # fmt: skip
            continue
        metric = p["metric"]
        g = p.get("guard", {})
        ci = g.get("ci95") or [float("nan")] * 2
        slow = slower_than_fp32(a)
        p50 = f"{p.get('p50_ms', float('nan')):.2f}" + (" SLOWER" if slow else "")
        cells.append(
            [
                m["name"],
                f"{m['size_bytes'] / 1e6:.2f}",
                f"{p['max_abs_diff']:.2e}",
                f"{p.get('top1_agreement', float('nan')):.4f}",
                f"{p['torch'][metric]:.4f} -> {p['artifact'][metric]:.4f}",
                f"{g.get('drop', float('nan')):+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]",
                guard_cell(m),
                p50,
                f"{m['export_seconds']:.1f}",
            ]
        )
        rows.append(
            {
                "artifact": m["name"],
                "path": str(a.path),
                "size_bytes": m["size_bytes"],
                "export_seconds": m["export_seconds"],
                "parity": p,
                "guard": m.get("guard"),
                "slower_than_fp32": slow is not None,
            }
        )
        if slow:
            notes.append(
                f"{m['name']} ran slower than {m['target']}-fp32 during the check ({p['p50_ms']:.2f} vs {slow:.2f} ms at "
                f"batch 1): on this machine it saves size, not time"
            )
    for t, prec, exc in failed:
        cells.append(
            [f"{t}-{prec}", "-", "-", "-", "FAILED", "-", "rejected" if getattr(exc, "exit_code", 2) == 3 else "-", "-", "-"]
        )
        rows.append({"artifact": f"{t}-{prec}", "error": str(exc)})
    if any(r.get("guard") and r["guard"].get("unit") for r in rows):
        unit = next(r["guard"]["unit"] for r in rows if r.get("guard"))
        notes.insert(
            0,
            f"drop: {unit} against PyTorch on the same held-out samples, with its 95% interval; "
            f"guard: the recovery rung an artifact needed to stay within --max-accuracy-drop",
        )
    return COLUMNS, cells, rows, notes
