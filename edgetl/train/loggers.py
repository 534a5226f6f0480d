"""Optional experiment loggers (TensorBoard, MLflow): off by default, offline, their libraries imported only when used."""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgetl.errors import EdgetlError

LOGGERS: tuple[str, ...] = ("tensorboard", "mlflow")
_NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny")}  # module, package
# MLflow: no usage telemetry (DO_NOT_TRACK=1 is not enough: it wants "true"), and its local file store, which it refuses
# unless asked for (it prefers a database); both read when mlflow is imported or the store is opened
_MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ALLOW_FILE_STORE": "true"}


def check_loggers(kinds: Sequence[str]) -> None:
    """Raise an EdgetlError when a logger name is unknown or its library is not installed."""
    for kind in kinds:
        if kind not in _NEEDS:
            raise EdgetlError(f"unknown logger {kind!r}: choose from {', '.join(LOGGERS)}")
        module, package = _NEEDS[kind]
        if importlib.util.find_spec(module) is None:
            raise EdgetlError(f"the {kind} logger needs {package}: pip install 'edgetl[log]' (or pip install {package})")


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (bools, strings, nan, inf)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _key(name: str) -> str:
    """A metric or parameter name both backends accept."""
    return re.sub(r"[^\w./\- ]", "_", str(name)).strip("/")[:250] or "_"


def _scalars(items: dict[str, Any]) -> dict[str, float]:
    return {_key(k): f for k, v in items.items() if (f := _number(v)) is not None}


def _epoch_scalars(entry: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics.jsonl line, by tag."""
    out = {"train/loss": entry.get("train_loss"), "val/loss": entry.get("val_loss")}
    out |= {k: entry.get(k) for k in ("trainable_groups", "seconds")}
    for group in ("val", "train", "lr"):  # "train": the metrics on the epoch's training batches
        if isinstance(entry.get(group), dict):
            out.update({f"{group}/{k}": v for k, v in entry[group].items()})
    samples, seconds = _number(entry.get("train_samples")), _number(entry.get("seconds"))
    if samples is not None and seconds:
        out["samples_per_s"] = samples / seconds
    return _scalars(out)


def _flatten(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        out.update(_flatten(v, f"{prefix}/{k}") if isinstance(v, dict) else {f"{prefix}/{k}": v})
    return out


def _params(params: dict[str, Any], limit: int) -> dict[str, str | int | float | bool]:
    """Scalars as they are, anything else as JSON; strings cut to ``limit`` characters."""
    out: dict[str, str | int | float | bool] = {}
    for k, v in params.items():
        if not isinstance(v, str | int | float | bool):
            v = json.dumps(v, default=str, sort_keys=True)
        out[_key(k)] = v[:limit] if isinstance(v, str) else v
    return out


class _TensorBoard:
    name = "tensorboard"

    def __init__(self, run_dir: Path, params: dict[str, Any], state: dict[str, Any] | None, start_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir, self.params, self.step = run_dir / "tensorboard", params, start_epoch
        # on resume, events of epochs after start_epoch are dropped by readers, so every epoch keeps one value
        self.writer = SummaryWriter(str(self.log_dir), purge_step=None if state is None else start_epoch + 1)
        text = json.dumps(params, indent=2, default=str, sort_keys=True)
        self.writer.add_text("config", "\n".join(f"    {line}" for line in text.splitlines()), start_epoch + 1)

    def state(self) -> dict[str, Any]:
        return {"log_dir": str(self.log_dir)}

    def epoch(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.step = max(self.step, step)
        self.writer.flush()

    def finish(self, final: dict[str, float], bundle_dir: Path, files: list[Path]) -> None:
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(_params(self.params, 6000), final):  # the HParams dashboard: config against final metrics
            self.writer._get_file_writer().add_summary(summary)  # as SummaryWriter.add_hparams does, in this run's folder
        self.epoch(self.step, final)

    def close(self, status: str | None) -> None:
        self.writer.close()


class _MLflow:
    name = "mlflow"

    def __init__(self, run_dir: Path, params: dict[str, Any], state: dict[str, Any] | None, start_epoch: int) -> None:
        for key, value in _MLFLOW_ENV.items():
            os.environ.setdefault(key, value)
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        old = (state or {}).get("mlflow") or {}
        default = os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / "mlruns").resolve().as_uri()
        self.uri, self.ended, self.step = old.get("tracking_uri") or default, False, start_epoch
        self.client, self.seen = MlflowClient(tracking_uri=self.uri), set[tuple[str, int]]()
        done: dict[str, str] = {}
        if old.get("run_id"):  # continue the run: MLflow cannot drop values, so steps it has are not logged again
            run = self.client.get_run(old["run_id"])
            self.run_id, done = run.info.run_id, run.data.params
            self.seen = {(k, m.step) for k in run.data.metrics for m in self.client.get_metric_history(self.run_id, k)}
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "edgetl")
            found = self.client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else self.client.create_experiment(name)
            self.run_id = self.client.create_run(
                experiment, run_name=run_dir.name, tags={"edgetl.run_dir": str(run_dir.resolve())}
            ).info.run_id
        # params are immutable: a resumed run adds only the new ones
        todo = [Param(k, str(v)) for k, v in _params(params, MAX_PARAM_VAL_LENGTH).items() if k not in done]
        for i in range(0, len(todo), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=todo[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tracking_uri": self.uri}

    def epoch(self, step: int, scalars: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now, todo = int(time.time() * 1000), [(k, v) for k, v in scalars.items() if (k, step) not in self.seen]
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in todo])
        self.seen |= {(k, step) for k, _ in todo}
        self.step = max(self.step, step)

    def finish(self, final: dict[str, float], bundle_dir: Path, files: list[Path]) -> None:
        from mlflow.utils.file_utils import local_file_uri_to_path

        self.epoch(self.step, final)
        store = Path(local_file_uri_to_path(self.uri)).resolve() if self.uri.startswith("file:") else None
        for path in files:
            path = (bundle_dir / path).resolve()
            if not path.exists() or (store is not None and store.is_relative_to(path)):
                continue  # never the tracking store itself
            rel = path.relative_to(bundle_dir.resolve()) if path.is_relative_to(bundle_dir.resolve()) else Path(path.name)
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), (Path("bundle") / rel).as_posix())
            else:
                self.client.log_artifact(self.run_id, str(path), (Path("bundle") / rel.parent).as_posix())
        self.close("FINISHED")

    def close(self, status: str | None) -> None:
        if not self.ended:
            self.ended = True
            self.client.set_terminated(self.run_id, status or "FINISHED")


_BACKENDS: dict[str, Any] = {"tensorboard": _TensorBoard, "mlflow": _MLflow}


class RunLoggers:
    """The run's experiment loggers; a library error turns into a warning and that logger stops."""

    def __init__(self, backends: list[Any]) -> None:
        self._backends, self._broken, self._closed = backends, set[str](), False

    @classmethod
    def open(
        cls, kinds: Sequence[str], run_dir: Path, params: dict[str, Any], state: dict[str, Any] | None, start_epoch: int
    ) -> RunLoggers:
        """Start the loggers; ``state`` is what ``state()`` returned when this run started before (None: a new run)."""
        check_loggers(kinds)
        backends = []
        for kind in dict.fromkeys(kinds):
            try:
                with _quiet():
                    backends.append(_BACKENDS[kind](Path(run_dir), params, state, start_epoch))
            except Exception as exc:
                _warn(kind, exc)
        return cls(backends)

    def _call(self, method: str, *args: Any) -> None:
        for backend in self._backends:
            if backend.name not in self._broken or method == "close":
                try:
                    with _quiet():
                        getattr(backend, method)(*args)
                except Exception as exc:
                    if backend.name not in self._broken:  # one warning per logger
                        _warn(backend.name, exc)
                    self._broken.add(backend.name)

    def state(self) -> dict[str, Any]:
        """JSON-able facts to resume these loggers, by logger name."""
        return {b.name: b.state() for b in self._backends}

    def epoch(self, entry: dict[str, Any]) -> None:
        """Log one metrics.jsonl line at step = its epoch."""
        step = entry.get("epoch")
        if isinstance(step, int) and not isinstance(step, bool):
            self._call("epoch", step, _epoch_scalars(entry))

    def finish(self, bundle_dir: Path, metrics: dict[str, Any], files: Sequence[Path]) -> None:
        """Log the final metrics (final/...) and, for MLflow, the bundle's ``files`` as artifacts under bundle/."""
        self._call("finish", _scalars(_flatten(metrics, "final")), Path(bundle_dir), [Path(f) for f in files])

    def close(self, failed: bool = False) -> None:
        """End the loggers (an MLflow run left open ends FAILED, or KILLED on Ctrl-C); idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        status = ("KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt) else "FAILED") if failed else None
        self._call("close", status)


@contextmanager
def _quiet() -> Iterator[None]:
    """The libraries' own warnings stay off the user's terminal."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(mlflow|tensorboard|torch\.utils\.tensorboard|google\.protobuf)")
        yield


def _warn(kind: str, exc: BaseException) -> None:
    message = " ".join(str(exc).split())[:300]
    print(f"warning: the {kind} logger failed and is off for this run: {type(exc).__name__}: {message}", file=sys.stderr)
