"""The `edgetl` command line: each command calls one public API function."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import offline

offline.enforce_offline()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fine-tune, export and benchmark edge models, offline.",
)
data_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Write built-in datasets to disk.")
app.add_typer(data_app, name="data")
# markup=False: paths, labels and texts with [brackets] print as they are
console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def wide_console() -> Console:
    """Wide tables: the terminal's width when it is wider, else 200 columns (a pipe or file gets whole rows,
    not one character per line)."""
    return (
        console
        if console.is_terminal and console.width >= 160
        else Console(highlight=False, soft_wrap=True, width=200, markup=False)
    )


F = TypeVar("F", bound=Callable)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, one line, the message verbatim."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), soft_wrap=True)


def _crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected exception to the edgetl cache; its path, or None if that fails too."""
    from datetime import datetime

    from .data.builtin import cache_dir

    try:
        folder = cache_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(" ".join(sys.argv) + "\n\n" + "".join(traceback.format_exception(exc)), encoding="utf-8")
        return path
    except Exception:
        return None


def user_errors(interrupted: str = "interrupted; nothing was left half-written") -> Callable[[F], F]:
    """One line on stderr for every failure: ``EdgetlError`` (exit 2, or its own code), a fault of the world outside
    (OSError: disk full, read-only, permissions; exit 2), an interrupt (exit 130, ``interrupted`` said), and, as a
    last resort, a bug (exit 1, the traceback written to a log file; EDGETL_DEBUG=1 shows it instead)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from .errors import EdgetlError, os_error

            try:
                return fn(*args, **kwargs)
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except EdgetlError as exc:
                print_error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                err_console.print(interrupted)
                raise typer.Exit(130) from None
            except MemoryError:
                print_error("out of memory; use a smaller --batch-size (or fewer samples) or a machine with more memory")
                raise typer.Exit(2) from None
            except OSError as exc:
                print_error(str(os_error(exc)))
                raise typer.Exit(2) from None
            except Exception as exc:
                if os.environ.get("EDGETL_DEBUG"):
                    raise
                log = _crash_log(exc)
                first = (str(exc).strip().splitlines() or [""])[0][:160]
                print_error(
                    f"internal error ({type(exc).__name__}: {first}); this is a bug in edgetl, please report it"
                    + (f" with {log}" if log else "")
                )
                raise typer.Exit(1) from None

        return wrapper  # type: ignore[return-value]

    return decorate


def _default_out(data: str) -> str:
    name = data.split(":", 1)[1] if data.startswith("builtin:") else (Path(data).stem or "run")
    return str(Path("runs") / name)


@app.command()
@user_errors(interrupted="interrupted; continue later with the same command and --resume")
def finetune(
    data: str = typer.Argument(
        ...,
        help="Image folder, CSV of path,label|target, builtin:digits; or texts: CSV/TSV/JSONL of "
        "text,label|target, a folder of <class>/*.txt, builtin:fortunes-lang; or audio: a folder "
        "of <class>/*.wav|flac|ogg, a CSV of path,label|target, builtin:keywords.",
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="Run/bundle folder (default runs/<data name>)."),
    model: str | None = typer.Option(
        None,
        help="timm or torchvision name (prefix tv: or timm: to choose), default mobilenet_v2; "
        "text: minilm-l6 (default), a Hugging Face folder or a cached model id; "
        "audio: whisper-tiny.en (default), a Whisper folder or a cached model id.",
    ),
    weights: str | None = typer.Option(None, help="Pretrained weights file (.safetensors or .pth)."),
    pretrained: bool = typer.Option(True, "--pretrained/--no-pretrained", help="Start from pretrained weights."),
    strategy: str = typer.Option("two-phase", help="linear | partial | full | gradual | two-phase."),
    epochs: int = typer.Option(6),
    head_epochs: int | None = typer.Option(None, help="two-phase: epochs with the backbone frozen."),
    unfreeze: int = typer.Option(2, help="partial: number of top layer groups to train."),
    gradual_every: int = typer.Option(1, help="gradual: unfreeze one more group every K epochs."),
    batch_size: int = typer.Option(32),
    lr_head: float | None = typer.Option(
        None, help="Learning rate of the new head (default 3e-3; transcription: the decoder, 1e-4)."
    ),
    lr_backbone: float | None = typer.Option(
        None, help="Learning rate of the backbone (default 1e-4; transcription: the encoder, 3e-5)."
    ),
    layer_decay: float | None = typer.Option(None, help="Layer-wise LR decay per group (e.g. 0.8)."),
    weight_decay: float = typer.Option(0.01),
    warmup_epochs: float = typer.Option(0.5),
    dropout: float = typer.Option(0.2, help="Dropout before the head."),
    train_bn: bool | None = typer.Option(
        None, "--train-bn/--freeze-bn", help="Update BatchNorm statistics in unfrozen groups (default: only from scratch)."
    ),
    label_smoothing: float = typer.Option(0.1),
    augment: str | None = typer.Option(
        None,
        help="none | crop | crop-flip (default for images) | strong | heavy; text: none; audio: none | light (default) | strong.",
    ),
    patience: int = typer.Option(3, help="Early stopping patience in epochs (0: off)."),
    val_fraction: float = typer.Option(0.2),
    seed: int = typer.Option(0),
    image_size: int | None = typer.Option(None, help="Override the pretrained input size."),
    max_length: int | None = typer.Option(None, help="Text: tokens per text, longer ones are truncated (default 128)."),
    max_audio_seconds: float | None = typer.Option(
        None,
        help="Audio: seconds of audio the encoder hears, a multiple of 0.02 "
        "(default: the clips' length when all are alike, else 2; transcription: 30, Whisper's window, "
        "and less trims the encoder for short clips).",
    ),
    noise_dir: str | None = typer.Option(
        None, help="Audio: folder of background recordings for augmentation (default: synthetic noise)."
    ),
    text_column: str = typer.Option("text", help="Text data: the text column."),
    label_column: str = typer.Option("label", help="Text data: the label column (classification)."),
    target_column: str = typer.Option("target", help="Text data: the numeric target column (regression)."),
    labels: str | None = typer.Option(None, help="Comma-separated label names (fixes order; others are errors)."),
    max_bad_fraction: float = typer.Option(
        0.1, help="Fail when more than this fraction of images (or audio clips) is unreadable."
    ),
    feature_cache: bool = typer.Option(
        True, "--feature-cache/--no-feature-cache", help="linear + no augmentation: run the backbone once."
    ),
    workers: int = typer.Option(0, help="DataLoader worker processes."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    device: str = typer.Option("auto", help="Train on auto (the GPU when torch sees one) | cpu | cuda | cuda:N."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw the run's pictures into BUNDLE/figures."),
    log: list[str] = typer.Option(
        [],
        "--log",
        help="Also log to tensorboard (event files in --out/tensorboard) or mlflow (--out/mlruns, or "
        "MLFLOW_TRACKING_URI); repeat for both.",
    ),
    adapt_to: str | None = typer.Option(
        None,
        "--adapt-to",
        help="Domain adaptation: unlabelled data of the deployment domain (a folder of images or clips, a .txt or "
        "CSV of texts, builtin:digits); a test/<class>/ folder in it is scored for the report only.",
    ),
    adapt_method: str | None = typer.Option(
        None,
        help="With --adapt-to: none (source-only) | adabn | entropy | mcc (default) | dann | auto (trains each, "
        "keeps the label-free validator's choice).",
    ),
    self_train: bool = typer.Option(
        False, "--self-train", help="With --adapt-to: add FixMatch-style pseudo-labels on strongly augmented target data."
    ),
    adapt_weight: float = typer.Option(1.0, help="With --adapt-to: the target loss's weight."),
    pseudo_threshold: float = typer.Option(0.95, help="--self-train: the confidence a pseudo-label needs."),
    nproc: int = typer.Option(
        1, help="Train as N local processes (DistributedDataParallel, gloo); torchrun and accelerate launch work too."
    ),
    per_device_batch: int | None = typer.Option(
        None,
        help="Distributed: samples per process and step (the global batch is N times this); default: "
        "--batch-size is the global batch.",
    ),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
    overwrite: bool = typer.Option(False, help="Replace the edgetl run or bundle in --out (never other files, never the data)."),
) -> None:
    """Fine-tune a pretrained model and write a bundle."""
    options = dict(locals())
    from .train.distributed import is_main_process
    from .train.finetune import finetune as run_finetune

    options["out"] = out or _default_out(data)
    options["labels"] = [s.strip() for s in labels.split(",") if s.strip()] if labels is not None else None
    bundle = run_finetune(**options)
    if not is_main_process():  # under torchrun: rank 0 says it
        return
    metrics = bundle.manifest["metrics"]
    shown = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    for split, values in shown.items():
        console.print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    figures = bundle.manifest.get("figures") or {}
    if figures:
        console.print(f"figures: {bundle.path / 'figures'} ({', '.join(figures)}); `edgetl report {bundle.path}` shows them")
    console.print(f"bundle: {bundle.path}")


@app.command(hidden=True)
@user_errors(interrupted="interrupted; continue later with the same command and --resume")
def rank() -> None:
    """One rank of `edgetl finetune --nproc N` (train/launch.py starts it with the run's options)."""
    from .train.finetune import finetune as run_finetune
    from .train.launch import OPTIONS_ENV

    run_finetune(**json.loads(os.environ[OPTIONS_ENV]))


@app.command()
@user_errors()
def info(bundle_dir: str = typer.Argument(..., help="Bundle folder."), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a bundle's manifest."""
    from .bundle import read_manifest

    m = read_manifest(bundle_dir)
    if as_json:
        console.print_json(json.dumps(m))
        return
    table = Table(title=f"edgetl bundle {bundle_dir}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in _info_rows(m):
        table.add_row(k, str(v))
    console.print(table)
    figures = m.get("figures") if isinstance(m.get("figures"), dict) else {}
    for name, path in figures.items():  # one line each, never wrapped: paths to open
        console.print(f"figure {name}: {Path(bundle_dir) / str(path)}", soft_wrap=True, markup=False, highlight=False)
    if figures:
        console.print(f"all on one page: edgetl report {bundle_dir}", soft_wrap=True, markup=False, highlight=False)


@app.command()
@user_errors()
def report(
    bundle_dir: str = typer.Argument(..., help="Bundle folder."),
    out: str | None = typer.Option(None, "--out", "-o", help="HTML file to write (default BUNDLE/report.html)."),
) -> None:
    """Write one self-contained HTML page: the manifest, the pictures, and the export and benchmark tables beside it."""
    from .report import write_report

    console.print(f"report: {write_report(bundle_dir, out)}")


def _get(m: dict, dotted: str, default: object = "-") -> object:
    """``m["a"]["b"]`` for "a.b", or ``default`` when a hand-edited manifest lacks it."""
    from edgetl_runtime.base import field_of

    return field_of(m, dotted, default)


def _info_rows(m: dict) -> list[tuple[str, object]]:
    ws = m.get("weights_source") or {}
    sha = ws.get("sha256") if isinstance(ws, dict) else None
    rows: list[tuple[str, object]] = [
        ("model", f"{m['family']}:{m['arch']}"),
        ("task", m["task"]),
        ("labels", ", ".join(m.get("labels") or []) or "-"),
        (
            "weights",
            f"{_get(m, 'weights_source.kind')} {_get(m, 'weights_source.path', '')} "
            f"{('sha256 ' + str(sha)[:16] + '...') if sha else ''}",
        ),
        ("input", f"{_get(m, 'input.name')} {_get(m, 'input.shape')} {_get(m, 'input.dtype')} {_get(m, 'input.layout')}"),
        ("preprocess", _preprocess_line(m)),
        (
            "strategy",
            f"{_get(m, 'training.strategy')} epochs {_get(m, 'metrics.epochs_run')}/{_get(m, 'training.epochs')} "
            f"(best {_get(m, 'metrics.best_epoch')})",
        ),
        ("data", f"{_get(m, 'data.source')} {_get(m, 'data.splits')}"),
    ]
    target = (m.get("data") or {}).get("target")
    if isinstance(target, dict):
        chosen = (target.get("auto") or {}).get("chosen")
        method = f"auto -> {chosen}" if chosen else target.get("method")
        rows.append(
            (
                "adapted to",
                f"{target.get('source')} ({target.get('unlabelled')} unlabelled, {target.get('labelled_test')} labelled "
                f"for the report), {method}{' + self-training' if target.get('self_train') else ''}",
            )
        )
    for split, values in (m.get("metrics") or {}).items():
        if isinstance(values, dict):
            rows.append(
                (
                    f"{split} metrics",
                    "  ".join(f"{k} {v:.4f}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in values.items()),
                )
            )
    versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
    world = _get(m, "training.world_size", 1)
    gpu = _get(m, "metrics.peak_gpu_mb", None)
    rows += [
        ("trained on", f"{_get(m, 'training.trained_on', 'cpu')}{f' x {world} processes' if world != 1 else ''}"),
        ("wall time", f"{_get(m, 'metrics.wall_time_s')} s"),
        ("peak RSS", f"{_get(m, 'metrics.peak_rss_mb')} MB{f' (GPU {gpu} MB)' if gpu is not None else ''}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    return rows


def _preprocess_line(m: dict) -> str:
    from .modality import get_modality

    return get_modality(m.get("modality", "image")).summary(m["preprocess"])


@app.command()
@user_errors()
def predict(
    bundle_dir: str = typer.Argument(..., help="Bundle folder or exported artifact folder."),
    files: list[str] = typer.Argument(
        ..., help="Image files, texts for a text bundle, or audio files (WAV/FLAC/OGG) for a speech bundle."
    ),
    top_k: int = typer.Option(3, "--top-k", "-k"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Predict labels (top-k with scores) or values for image files (texts, audio files), with a bundle or an exported artifact."""
    from .errors import EdgetlError
    from .modality import get_modality
    from .predict import open_model, predict_raw

    if top_k < 1:
        raise EdgetlError("--top-k must be at least 1")
    model = open_model(bundle_dir)
    key = get_modality(getattr(model, "modality", "image")).result_key  # "file" or "text"
    results = predict_raw(model, files, top_k)
    if as_json:
        console.print_json(json.dumps(results))
        return
    for r in results:
        item = r[key]
        if "top" in r:
            console.print(f"{item}: " + ", ".join(f"{label} {p:.3f}" for label, p in r["top"]))
        else:
            console.print(f"{item}: {r['value']:.4f}")


@app.command()
@user_errors()
def transcribe(
    files: list[str] = typer.Argument(..., help="Audio files (WAV/FLAC/OGG, any rate, channels and length)."),
    model: str = typer.Option(
        "whisper-tiny.en",
        help="whisper-tiny.en (built-in), a Whisper folder, a cached model id, a transcription bundle, "
        "or an exported transcription artifact (BUNDLE/export/onnx-int8-dynamic: no torch).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Transcribe speech with a Whisper model or artifact (greedy, no timestamps; clips over 30 s in windows)."""
    from .predict import transcribe_files

    results = transcribe_files(files, model)
    if as_json:
        console.print_json(json.dumps(results))
        return
    for r in results:
        console.print(f"{r['file']}: {r['text']}", soft_wrap=True, markup=False, highlight=False)


@app.command("export")
@user_errors(interrupted="interrupted; the artifacts finished before it are kept, the unfinished one was not written")
def export_cmd(
    bundle_dir: str = typer.Argument(..., help="Bundle folder written by `edgetl finetune`."),
    target: str = typer.Option(
        "onnx",
        help="onnx | openvino | tflite | all, or a comma-separated list (transcription bundles: onnx | openvino | tflite | ctranslate2).",
    ),
    quantize: str = typer.Option("fp32", help="fp32 | fp16 | int8-dynamic | int8 | all, or a comma-separated list."),
    calibration: str | None = typer.Option(
        None,
        help="Folder of calibration images or audio files; text: a file, one text "
        "per line (default: the bundle's training split).",
    ),
    calibration_samples: int = typer.Option(100),
    parity_samples: int | None = typer.Option(
        None, help="Held-out samples (val, then test) for the parity check and the accuracy guard (default: all, up to 1000)."
    ),
    max_accuracy_drop: str = typer.Option(
        "auto",
        help="Accuracy budget against PyTorch: points of accuracy (classification) "
        "or percent of MAE (regression); auto = 1 point / 5%; none = off. "
        "An int8 artifact that misses it climbs the recovery ladder; one that "
        "still misses it is kept as NAME.rejected and the export exits 3.",
    ),
    dynamic_batch: bool = typer.Option(False, help="Dynamic batch axis (ONNX, OpenVINO)."),
    layout: str = typer.Option("nchw", help="Image input layout: nchw | nhwc (tflite); images only."),
    io: str = typer.Option("float", help="float | int8: int8 input/output for full-int8 tflite (microcontrollers)."),
    threads: int | None = typer.Option(None, help="Runtime threads for the parity run."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the converters' output live (it is kept in each artifact's convert.log)."
    ),
) -> None:
    """Export a bundle to ONNX / OpenVINO / TFLite in fp32, fp16 and int8, each proven against PyTorch.

    The terminal shows one line per artifact and the table; what the converters print goes to
    BUNDLE/export/NAME/convert.log."""
    from .atomic import write_json
    from .export import export_all
    from .export.guard import parse_budget
    from .export.report import export_rows

    targets = None if target == "all" else [t.strip() for t in target.split(",")]
    precisions = None if quantize == "all" else [q.strip() for q in quantize.split(",")]
    done, failed = export_all(
        bundle_dir,
        targets,
        precisions,
        progress=_export_progress(live=verbose),
        verbose=verbose,
        calibration=calibration,
        calibration_samples=calibration_samples,
        parity_samples=parity_samples,
        max_accuracy_drop=parse_budget(max_accuracy_drop),
        dynamic_batch=dynamic_batch,
        layout=layout,
        io=io,
        threads=threads,
    )
    columns, cells, rows, notes = export_rows(done, failed)
    table = Table(title=f"exports of {bundle_dir}")
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    wide_console().print(table)
    for line in notes:
        console.print(line)
    summary_file = Path(bundle_dir) / "export" / "summary.json"
    if summary_file.parent.is_dir():  # merged with earlier exports, one row per artifact name
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
        except (ValueError, UnicodeDecodeError):
            summary = {}  # a damaged summary (edgetl's own index of the folder) is rebuilt from this run's rows
        summary = summary if isinstance(summary, dict) else {}
        summary.update({r["artifact"]: r for r in rows})
        write_json(summary_file, dict(sorted(summary.items())))
    if failed:
        for t, prec, exc in failed:
            print_error(f"{t} {prec}: {exc}")
        raise typer.Exit(max(exc.exit_code for _, _, exc in failed))


def _export_progress(live: bool) -> Any:
    """One line per artifact on the terminal (and a spinner while it runs): the converters' own output is
    redirected to the artifact's convert.log meanwhile, so this console writes to a copy of the terminal's fd."""
    try:
        terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    except (OSError, ValueError, AttributeError):  # stderr is no file (an in-process runner): print to it as it is
        terminal = None
    term = Console(file=terminal, stderr=terminal is None, highlight=False, soft_wrap=True, markup=False)
    status: Any = None

    def progress(event: str, target: str, precision: str, what: Any) -> None:
        nonlocal status
        if event == "start":
            if not live:
                status = term.status(f"exporting {target} {precision} ...")
                status.start()
            return
        if status is not None:
            status.stop()
            status = None
        if event == "done":
            line = f"{what.path.name}: done in {what.manifest.get('export_seconds', 0):.1f} s"
            summary = what.log.summary() if what.log else ""
            term.print(f"{line}; {summary}" if summary else line)
        else:
            term.print(f"{target} {precision}: {'rejected' if what.exit_code == 3 else 'failed'} (see below)")

    return progress


@app.command("benchmark")
@user_errors(interrupted="interrupted; no report was written")
def benchmark_cmd(
    bundle_dir: str = typer.Argument(..., help="Bundle folder; its exported artifacts are found under BUNDLE/export."),
    target: str = typer.Option("cpu", help="Target profile name (see `edgetl targets`) or a .toml path."),
    artifacts: list[str] | None = typer.Option(
        None, "--artifacts", "-a", help="Artifact names (e.g. onnx-int8, pytorch); default all the target runs."
    ),
    data: str | None = typer.Option(
        None,
        help="Labelled images (texts, audio clips) to measure accuracy on (default: the bundle's test split; "
        "an adapted bundle's labelled target test split).",
    ),
    samples: int | None = typer.Option(None, help="Use at most this many evaluation samples."),
    long_tokens: int | None = typer.Option(
        None, help="Text: also time inputs of this many tokens (default 128, or max_length if less)."
    ),
    runs: int = typer.Option(100, help="Timed batch-1 runs per artifact (at least), spread over the rounds."),
    min_seconds: float = typer.Option(1.0, help="Per round, keep timing fast models at least this many seconds."),
    warmup: int = typer.Option(10, help="Untimed runs in each fresh process before timing."),
    rounds: int = typer.Option(3, help="Interleaved repetitions, each in a fresh process."),
    threads: int | None = typer.Option(None, help="Threads per runtime (default: the profile's)."),
    batch: int = typer.Option(8, help="Batch size for the throughput measurement."),
    torch: bool = typer.Option(True, "--torch/--no-torch", help="Include the PyTorch bundle as a row (local targets)."),
    anchor: bool = typer.Option(
        False,
        help="Transcription: add faster-whisper on the ctranslate2-int8-dynamic artifact as a reference row (needs edgetl[anchor]).",
    ),
    out: str | None = typer.Option(None, help="Report folder (default BUNDLE/benchmark/<target>)."),
    strict: bool = typer.Option(False, help="Exit 4 when an artifact misses one of the target's budgets."),
) -> None:
    """Accuracy, latency percentiles, throughput, size and peak memory of every artifact on a target."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .bench import BudgetFailed, budget_failures, run_benchmark
    from .bench.report import _budget_cell, cells, columns, deploy_lines, machine_line

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("benchmark", total=None)

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, description=msg, completed=done - 1, total=total)

        report = run_benchmark(
            bundle_dir,
            out=out,
            progress=progress,
            target=target,
            artifacts=artifacts,
            data=data,
            samples=samples,
            runs=runs,
            min_seconds=min_seconds,
            warmup=warmup,
            rounds=rounds,
            threads=threads,
            batch=batch,
            torch=torch,
            long_tokens=long_tokens,
            anchor=anchor,
        )
    p = report["protocol"]
    table = Table(
        title=f"{report['bundle']['arch']} on {report['target']['name']}: {p['threads']} threads, "
        f"{p['runs']} runs in {p['rounds']} rounds, {p['eval_samples']} eval samples"
    )
    names = columns(report)
    for col in names + ("budgets",):
        table.add_column(col, no_wrap=True)
    for row in report["rows"]:
        table.add_row(*cells(row, report), _budget_cell(row))
    wide_console().print(table)
    console.print(f"machine: {machine_line(report)}")
    for line in deploy_lines(report):
        console.print(line)
    skipped = list(dict.fromkeys(r["reason"] for r in report["rows"] if r["status"] == "skipped"))
    if skipped:  # one line: the device is not here, and why, per runtime
        console.print(Text.assemble((f"skipped on {report['target']['name']}:", "yellow"), " " + "; ".join(skipped)))
    console.print("wrote " + ", ".join(report["files"].values()))
    failed = [r for r in report["rows"] if r["status"] == "failed"]
    for r in failed:
        print_error(f"{r['name']}: {r['reason']}")
    if strict and (misses := budget_failures(report)):
        raise BudgetFailed(f"{len(misses)} budget(s) missed on {report['target']['name']}: " + "; ".join(misses))
    if failed:
        raise typer.Exit(1)


@app.command()
@user_errors()
def targets() -> None:
    """List the target profiles (targets/*.toml) benchmarks can run on."""
    from .bench import list_profiles
    from .bench.targets import BUDGET_KEYS, targets_dirs

    table = Table(title="targets (from " + ", ".join(str(d) for d in targets_dirs()) + ")")
    table.add_column("name", no_wrap=True)
    for col in ("reach", "threads", "runtimes", "precisions", "budgets", "description"):
        table.add_column(col, overflow="fold")
    for p in list_profiles():
        reach = "local" if p.connection.kind == "local" else f"ssh {p.connection.address}:{p.connection.port}"
        budgets = ", ".join(f"{k.split('_')[0]} {v:g}" for k, v in p.budgets.items() if k in BUDGET_KEYS)
        table.add_row(
            p.name, reach, str(p.threads or "all"), " ".join(p.runtimes), " ".join(p.precisions), budgets, p.description
        )
    wide_console().print(table)


@app.command()
@user_errors()
def models() -> None:
    """List the architectures edgetl has checked, per family."""
    from .family import FAMILIES, get_family

    get_family("timm")
    table = Table(title="checked architectures (other timm names work too)")
    table.add_column("family")
    table.add_column("architectures")
    for name, fam in FAMILIES.items():
        table.add_row(name, ", ".join(fam.list_archs()))
    console.print(table)


@data_app.command("digits")
@user_errors()
def data_digits(
    out: str = typer.Option(..., "--out", "-o", help="Folder to write train/ and test/ into (new or empty)."),
    overwrite: bool = typer.Option(False, help="Replace a digits dataset edgetl wrote there before."),
) -> None:
    """Write scikit-learn's real handwritten digits as an image folder."""
    from .data.builtin import write_digits

    path = write_digits(Path(out), overwrite=overwrite)
    console.print(f"wrote {path}")


@data_app.command("fortunes-lang")
@user_errors()
def data_fortunes_lang(
    out: str = typer.Option(..., "--out", "-o", help="Folder to write fortunes-lang.csv into."),
    per_language: int = typer.Option(300, help="Texts per language (at most)."),
    overwrite: bool = typer.Option(False, help="Replace fortunes-lang.csv if it is there."),
) -> None:
    """Write a language-identification CSV (text,label,split) from Debian's installed fortunes packages."""
    from .data.fortunes import write_fortunes_lang

    console.print(f"wrote {write_fortunes_lang(Path(out), per_language=per_language, overwrite=overwrite)}")


@data_app.command("sentences")
@user_errors()
def data_sentences(
    text_file: str = typer.Argument(..., help="UTF-8 text file, one sentence a line (# lines are comments)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder to write train/, val/, test/, metadata.csv and voices.json into."),
    voices: int = typer.Option(12, help="How many espeak-ng voices (accent+variant) speak every sentence; split by voice."),
    held_out_sentences: float = typer.Option(
        0.0, help="Fraction of the sentences only val and test voices speak (unseen sentences as well as voices)."
    ),
    seed: int = typer.Option(0, help="Seed: the same seed gives byte-identical files."),
    overwrite: bool = typer.Option(False, help="Replace a sentences dataset edgetl wrote there before."),
) -> None:
    """Synthesise a speech recognition dataset (16 kHz WAV + metadata.csv) offline with espeak-ng, split by voice."""
    from .data.sentences import write_sentences

    path = write_sentences(text_file, Path(out), voices=voices, seed=seed, held_out=held_out_sentences, overwrite=overwrite)
    console.print(f"wrote {path}")


@data_app.command("keywords")
@user_errors()
def data_keywords(
    out: str = typer.Option(..., "--out", "-o", help="Folder to write train/, val/, test/ and voices.json into."),
    words: str = typer.Option("yes,no,up,down", help="Comma-separated keywords, one class each."),
    voices: int = typer.Option(48, help="How many espeak-ng voices (accent+variant) to draw; split by voice."),
    takes: int = typer.Option(5, help="Takes per word and voice, each at a random speed and pitch."),
    clip_seconds: float = typer.Option(1.0, help="Length of every clip."),
    unknown: str = typer.Option("", help="Comma-separated other words for an _unknown_ class (default: none)."),
    silence: bool = typer.Option(False, "--silence", help="Add a _silence_ class of background noise."),
    seed: int = typer.Option(0, help="Seed: the same seed gives byte-identical files."),
    overwrite: bool = typer.Option(False, help="Replace a keyword dataset edgetl wrote there before."),
) -> None:
    """Synthesise a keyword-spotting dataset (16 kHz WAV) offline with espeak-ng, split by voice."""
    from .data.keywords import write_keywords

    path = write_keywords(
        Path(out),
        words=words.split(","),
        voices=voices,
        takes=takes,
        clip_seconds=clip_seconds,
        unknown_words=unknown.split(",") if unknown else (),
        silence=silence,
        seed=seed,
        overwrite=overwrite,
    )
    console.print(f"wrote {path}")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (and SIGHUP) as an interrupt: temp folders are removed and the command says what was kept."""
    raise KeyboardInterrupt


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    app(prog_name="edgetl")


if __name__ == "__main__":
    sys.exit(main())
