"""A benchmark report as a terminal table, report.json, report.md and report.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import write_json, write_text
from .plot import plot
from .targets import BUDGET_KEYS

COLUMNS = (
    "artifact",
    "device",
    "metric",
    "Δ pts",
    "agree",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "items/s",
    "load s",
    "MB",
    "peak RSS MB",
)
TRANSCRIPTION_COLUMNS = (
    "artifact",
    "device",
    "WER",
    "Δ pts",
    "same tokens",
    "RTF",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "encoder ms",
    "1st token ms",
    "ms/token",
    "load s",
    "MB",
    "peak RSS MB",
)
DEVICE_NAMES = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "CUDA", "TensorrtExecutionProvider": "TensorRT"}


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _budget_cell(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return row["status"]
    verdicts = row.get("budgets") or {}
    if not verdicts:
        return "-"
    failed = [k for k, b in verdicts.items() if b["pass"] is False]
    return "pass" if not failed else "FAIL " + ",".join(failed)


def _transcription(report: dict[str, Any]) -> bool:
    return report.get("bundle", {}).get("task") == "transcription"


def long_tokens(report: dict[str, Any]) -> int | None:
    """Text reports: the fixed length of the second latency series."""
    return (report["protocol"].get("text_lengths") or {}).get("long_tokens")


def columns(report: dict[str, Any]) -> tuple[str, ...]:
    """The table's columns; text reports add p50/p90 at the fixed length after p99."""
    if _transcription(report):
        return TRANSCRIPTION_COLUMNS
    n = long_tokens(report)
    if n is None:
        return COLUMNS
    i = COLUMNS.index("p99 ms") + 1
    return COLUMNS[:i] + (f"p50 ms @{n}", f"p90 ms @{n}") + COLUMNS[i:]


def cells(row: dict[str, Any], report: dict[str, Any] | None = None) -> list[str]:
    """One table row; pass the report so text rows get their fixed-length columns."""
    width = len(columns(report)) if report else len(COLUMNS)
    if row["status"] != "ok":
        return [row["name"], row["status"].upper(), row.get("reason", "")[:90]] + [""] * (width - 3)
    delta = row.get("delta_points") if row.get("delta_points") is not None else row.get("delta")
    device = str(row.get("device", ""))
    if report and _transcription(report):
        return [row["name"], DEVICE_NAMES.get(device, device), f"{row['value']:.4f}", _fmt(delta, "+.2f"),
                _fmt(row.get("agreement"), ".3f"), f"{row['rtf']:.3f}",
                f"{row['p50_ms']:.0f}" + (" SLOWER" if row.get("slower_than_fp32") else ""), f"{row['p90_ms']:.0f}",
                f"{row['p99_ms']:.0f}", _fmt(row.get("encoder_ms_p50"), ".0f"), _fmt(row.get("first_token_ms_p50"), ".1f"),
                _fmt(row.get("per_token_ms_p50"), ".2f"), f"{row['load_s']:.2f}", f"{row['size_mb']:.1f}", f"{row['peak_rss_mb']:.0f}"]  # fmt: skip
    out = [
        row["name"],
        DEVICE_NAMES.get(device, device),
        f"{row['metric'][:3]} {row['value']:.4f}",
        _fmt(delta, "+.2f"),
        _fmt(row.get("agreement"), ".4f"),
        f"{row['p50_ms']:.2f}" + (" SLOWER" if row.get("slower_than_fp32") else ""),
        f"{row['p90_ms']:.2f}",
        f"{row['p99_ms']:.2f}",
    ]
    if report and long_tokens(report) is not None:
        out += [_fmt(row.get("p50_long_ms"), ".2f"), _fmt(row.get("p90_long_ms"), ".2f")]
    return out + [f"{row['throughput_per_s']:.1f}", f"{row['load_s']:.2f}", f"{row['size_mb']:.2f}", f"{row['peak_rss_mb']:.0f}"]


def deploy_lines(report: dict[str, Any]) -> list[str]:
    """ "deploy: NAME ..." overall and per runtime, and the int8 rows slower than their fp32."""
    d = report.get("deploy") or {}

    def say(c: dict[str, Any] | None) -> str:
        if not c:
            return "nothing meets the accuracy and profile budgets"
        delta = c.get("delta_points") if c.get("delta_points") is not None else c.get("delta")
        return (
            f"{c['name']} (p50 {c['p50_ms']:.2f} ms, p90 {c['p90_ms']:.2f} ms, {c['size_mb']:.2f} MB, "
            f"{c['metric']} {c['value']:.4f}, {_fmt(delta, '+.2f')} vs PyTorch)"
        )

    lines = [f"deploy on {report['target']['name']}: " + say(d.get("choice"))] if d else []
    lines += [f"  best {rt}: {say(c)}" for rt, c in (d.get("per_runtime") or {}).items()]
    if a := report.get("anchor"):
        if "speed_ratio" in a:
            lines.append(
                f"against {a['name']} (WER {a['wer']:.4f}, RTF {a['rtf']:.3f}): {a['against']} transcribes "
                f"{a['speed_ratio']:.2f}x as fast at WER {a['our_wer']:.4f} ({'no worse' if a['wer_no_worse'] else 'worse'})"
            )
        else:
            lines.append(f"{a['name']}: WER {a['wer']:.4f}, RTF {a['rtf']:.3f}; no edgetl artifact to compare it with")
    slow = [r["name"] for r in report["rows"] if r.get("slower_than_fp32")]
    if slow:
        lines.append(f"slower than their fp32 here (int8 saves size, not time): {', '.join(slow)}")
    return lines


def budget_failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{r['name']}: {BUDGET_KEYS[k]} {b['value']:.2f} > {b['limit']:g}"
        for r in report["rows"]
        for k, b in (r.get("budgets") or {}).items()
        if b["pass"] is False
    ]


def machine_line(report: dict[str, Any]) -> str:
    m = report.get("machine") or {}
    if not m:
        return "machine: unknown (nothing ran)"
    return (
        f"{m.get('cpu')} ({m.get('arch')}), {m.get('cores')} cores ({m.get('usable_cores')} usable), "
        f"{m.get('memory_gib')} GiB, {m.get('os')}, Python {m.get('python')}; ISA: {' '.join(m.get('isa') or []) or '-'}"
    )


def _text_protocol(report: dict[str, Any]) -> str:
    lengths = report["protocol"].get("text_lengths")
    if not lengths:
        return ""
    return (
        f" Text: batch-1 latency (p50/p90/p99) at each sample's own length (median {lengths['typical_tokens']} tokens, "
        f"longest {lengths['max_tokens']}; fixed-length artifacts pad to theirs), and again at {lengths['long_tokens']} "
        "real tokens without padding (@ columns)."
    )


def _transcription_protocol(report: dict[str, Any]) -> str:
    t = report["protocol"].get("transcription")
    if not t:
        return ""
    return (
        f" Transcription: every clip ({t['audio_s']:g} s of audio in all) transcribed once per round, one at a time, "
        f"{t['decoding']}, features to text; p50/p90/p99 are per clip, RTF is compute seconds per audio second, "
        "encoder (features included), first-token (the prompt step) and per-token latencies are medians over clips; "
        "Δ pts is the change in WER points against PyTorch (negative: worse), same tokens the share of clips "
        "whose tokens equal PyTorch's."
    )


def _audio_protocol(report: dict[str, Any]) -> str:
    audio = report["protocol"].get("audio")
    if not audio:
        return ""
    return (
        f" Audio: latency and accuracy on {audio['features']} features of {audio['max_audio_seconds']:g} s windows "
        f"({audio['n_mels']} mels x {audio['frames']} frames), computed once beforehand: timings are the model alone."
    )


def to_markdown(report: dict[str, Any]) -> str:
    t, p = report["target"], report["protocol"]
    lines = [
        f"# Benchmark: {report['bundle']['arch']} on target `{t['name']}`",
        "",
        f"_{report.get('date', '')}; {t['description']} ({t['connection']})._",
        "",
        f"Machine: {machine_line(report)}",
        "",
        f"Protocol: each artifact in a fresh process per round, {p['rounds']} interleaved rounds, "
        f"{p['warmup']} warm-up runs, at least {p['runs']} timed batch-1 runs in all and "
        f"{p.get('min_seconds_per_round', 0):g} s per round, throughput at batch {p['batch']}, "
        f"{p['threads']} threads. Accuracy on {p['eval_samples']} samples ({p['eval_data']}); "
        "Δ and agreement are against the PyTorch bundle on the same inputs."
        + _text_protocol(report)
        + _audio_protocol(report)
        + _transcription_protocol(report),
        "",
        "| " + " | ".join(columns(report) + ("budgets",)) + " |",
        "|" + "---|" * (len(columns(report)) + 1),
    ]
    for row in report["rows"]:
        lines.append("| " + " | ".join(cells(row, report) + [_budget_cell(row)]) + " |")
    if t["budgets"]:
        lines += ["", "Budgets: " + ", ".join(f"{BUDGET_KEYS[k]} ≤ {v:g}" for k, v in t["budgets"].items()) + "."]
    if deploy := deploy_lines(report):
        lines += (
            [""]
            + [f"- {line.strip()}" for line in deploy]
            + ["", f"Deploy rule: {report['deploy']['rule']}; SLOWER: an int8 artifact slower than its runtime's fp32."]
        )
    versions = {k: v for r in report["rows"] for k, v in (r.get("versions") or {}).items() if v}
    if versions:
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."]
    return "\n".join(lines) + "\n"


REPORT_FILES = ("report.json", "report.md", "report.png")


def check_report_folder(folder: Path) -> None:
    """``folder`` can take a report: not a file, not under a file, writable, and no report files there that edgetl
    did not write."""
    import json
    import os

    from ..atomic import unwritable
    from ..errors import EdgetlError, os_error
    from ..ownership import check_parents

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise EdgetlError(f"--out {folder} is a file, not a folder; pick a folder for the report")
    check_parents(folder)
    if code := unwritable(folder):
        raise os_error(OSError(code, os.strerror(code)), folder, "write the report into")
    present = [n for n in REPORT_FILES if (folder / n).exists()] if folder.is_dir() else []
    if not present:
        return
    try:
        ours = json.loads((folder / "report.json").read_text(encoding="utf-8")).get("format") == "edgetl-benchmark"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise EdgetlError(
            f"--out {folder} holds {', '.join(present)} that edgetl did not write; pick another folder "
            f"(the report would replace them)"
        )


def write_report(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"json": folder / "report.json", "md": folder / "report.md", "png": folder / "report.png"}
    write_json(out["json"], report)
    write_text(out["md"], to_markdown(report))
    if not plot(report, out["png"]):
        out.pop("png")
    return out
