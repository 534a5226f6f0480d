"""The fine-tuning recipe: setup, train, save, cleanup (torchtune-style, one class).

Runs are safe to interrupt: after every epoch the best weights, then a full
checkpoint (model, optimizer, history) are written atomically; ``resume=True``
continues from the last checkpoint. Every random choice is seeded from
(seed, epoch), so a resumed run ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from torch.utils.data import DataLoader, Dataset

from edgetl_runtime.base import peak_rss_mb
from edgetl_runtime.manifest import TensorSpec

from ..atomic import atomic_path, clean_stale, write_json, write_text
from ..bundle import (
    BUNDLE_ENTRIES,
    BUNDLE_SUBDIR,
    EVALUATION,
    FIGURES,
    MANIFEST,
    SPLITS,
    TARGET_SPLIT,
    TARGET_TEST,
    WEIGHTS,
    Bundle,
    BundleManifest,
    library_versions,
    read_manifest,
    relative_paths,
    save_state,
    save_weights,
    write_manifest,
)
from ..data.builtin import BUILTIN_PREFIX, resolve_builtin
from ..data.sources import split_train_val
from ..data.text import Columns
from ..errors import EdgetlError
from ..family import check_family, resolve_model
from ..modality import detect
from ..model import ModelSpec, build_model
from ..ownership import Owned, check_folder, guard_data, remove_owned
from ..task import get_task
from . import distributed, evaluation, figures, strategy
from .adapt import VALIDATOR, Adaptation, batchnorm_state, has_batchnorm, information_maximisation, reestimate_batchnorm
from .auto_adapt import CANDIDATES_DIR, NotApplicable, finetune_auto
from .config import LEARNING_RATES, FinetuneConfig
from .device import move, peak_memory_mb
from .device import resolve as resolve_device
from .diagnose import diagnose
from .loggers import RunLoggers, check_loggers

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
BEST = "best.safetensors"
FEATURES = "features.safetensors"
METRICS = "metrics.jsonl"
# a run folder: the bundle's entries plus the training state, marked by run.json (unfinished) or edgetl.json
BUNDLE_FILES = (MANIFEST, WEIGHTS, SPLITS, EVALUATION, FIGURES, BUNDLE_SUBDIR)  # what MLflow keeps of the bundle
RUN_OWNED = Owned(
    "run folder", (MANIFEST, RUN_FILE), BUNDLE_ENTRIES | {RUN_FILE, METRICS, CHECKPOINT, BEST, FEATURES, CANDIDATES_DIR}
)
# options a resumed run may change: after a divergence, lower learning rates are the way on
RESUME_MAY_CHANGE = ("lr_head", "lr_backbone")
NOT_COMPARED = ("out", "log", "figures", "device")  # where the run is, what watches it, what it runs on

console = Console(highlight=False, soft_wrap=True, markup=False)  # paths and labels print verbatim
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)  # warnings


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _inputs(x: torch.Tensor | tuple | list) -> tuple[torch.Tensor, ...]:
    """A batch's model inputs as a tuple: (pixels,), (log-mel features,) or (input_ids, attention_mask)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


class _Step(torch.nn.Module):
    """What DDP wraps: the model and the adaptation's modules, called with one training step as a closure (DDP's
    gradient hooks need each step to be one call of the module it wraps)."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleDict(modules)

    def forward(self, step: Any) -> Any:
        return step()


def _loader(dataset: Dataset, batch_size: int, workers: int, plan: list[list[int]] | None = None) -> DataLoader:
    """Batches of ``plan`` (training: as the dataset forms them, text grouped by length), else consecutive
    batches in dataset order. The dataset collates (text: padded per batch). The loader has its own
    generator: creating it must not consume the global RNG (dropout)."""
    if plan is None:
        plan = [list(range(i, min(i + batch_size, len(dataset)))) for i in range(0, len(dataset), batch_size)]
    return DataLoader(
        dataset, batch_sampler=plan, collate_fn=dataset.collate, generator=torch.Generator().manual_seed(0), num_workers=workers
    )


class FinetuneRecipe:
    def __init__(self, cfg: FinetuneConfig, resume: bool = False, overwrite: bool = False) -> None:
        cfg.validate()
        if resume and overwrite:
            raise EdgetlError("--resume and --overwrite contradict each other; pass one")
        if not cfg.data.startswith(BUILTIN_PREFIX):  # paths in run.json and the manifest read the same from any folder
            cfg = replace(cfg, data=os.path.abspath(cfg.data))
        if cfg.adapt_to and not cfg.adapt_to.startswith(BUILTIN_PREFIX):
            cfg = replace(cfg, adapt_to=os.path.abspath(cfg.adapt_to))
        self.cfg = cfg
        self.resume = resume
        self.overwrite = overwrite
        self.run_dir = Path(cfg.out)
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"metric": None, "epoch": None}
        self.bad_epochs = 0
        self.started = time.time()
        self.finished_already = False
        self.lr_changes: list[dict[str, Any]] = []  # learning rates changed on --resume (after a divergence)
        self.pending_lr_change: dict[str, list[float]] = {}
        self.loggers = RunLoggers.open([], self.run_dir, {}, None, 0)  # replaced in setup() by the ones asked for
        self.logger_state: dict[str, Any] | None = None
        self.world = distributed.world()  # rank 0 alone writes the run folder and prints (distributed.py)
        self._ddp: torch.nn.Module | None = None
        self._ddp_trainable: tuple[str, ...] = ()
        self.ddp_wraps: list[dict[str, Any]] = []  # each DDP (re)wrap: what it costs when trainability changes
        self.device = resolve_device(cfg.device, self.world.local_rank, self.world.size)  # the model and its batches
        if not self.world.main:
            console.quiet = err_console.quiet = True

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Validate options, the output folder, data and weights first, then create the run folder: bad input
        leaves nothing behind, and nothing edgetl did not write is ever removed (``ownership.py``)."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        check_loggers(cfg.log)
        if not cfg.data.startswith(BUILTIN_PREFIX):
            guard_data(self.run_dir, [cfg.data])
        if cfg.adapt_to and not cfg.adapt_to.startswith(BUILTIN_PREFIX):
            guard_data(self.run_dir, [cfg.adapt_to])
        w = self.world
        self.resume = distributed.from_main(self.resume, w)  # auto's candidates: whether rank 0 found the folder
        finished = check_run_folder(self.run_dir, self.resume, self.overwrite) if w.main else None
        if distributed.from_main(finished, w):
            self.finished_already = True
            return

        self._setup_data()
        self._setup_target()
        self._setup_model()
        self._setup_adaptation()
        if w.main:
            self._prepare_run_dir()
        self.lr_changes, self.pending_lr_change = distributed.from_main((self.lr_changes, self.pending_lr_change), w)
        self._setup_optimizer()
        if self.resume:
            self._load_checkpoint()
        if not w.main:
            return
        self.loggers = RunLoggers.open(self.cfg.log, self.run_dir, self.cfg.to_dict(), self.logger_state, self.start_epoch)
        if self.cfg.log and self.loggers.state() != self.logger_state:
            self.logger_state = self.loggers.state()
            self._write_run_file()

    def _setup_data(self) -> None:
        """Read the data; its kind (image, text or audio) fills the per-modality defaults of the config."""
        data_path = resolve_builtin(self.cfg.data) if self.cfg.data.startswith(BUILTIN_PREFIX) else Path(self.cfg.data)
        columns = Columns(self.cfg.text_column, self.cfg.label_column, self.cfg.target_column)
        self.modality_spec = detect(data_path, columns)  # the modality: what differs between images, texts and audio
        self.modality = self.modality_spec.name
        self.cfg = cfg = self.cfg.for_modality(self.modality)
        source = self.modality_spec.scan(data_path, cfg.labels, columns, cfg.max_bad_fraction)
        if source.skipped:
            eg = "; ".join(f"{p} ({why})" for p, why in source.skipped[:3])
            err_console.print(
                Text.assemble(
                    ("warning:", "yellow"), f" skipped {len(source.skipped)} unreadable {self.modality_spec.noun}: {eg}"
                )
            )
        # a CSV may name sample files anywhere: none of them may lie inside --out
        guard_data(self.run_dir, [], samples=self.modality_spec.sample_files(source))
        self.source = source
        self.task = source.task
        self.task_spec = get_task(self.task)
        self.cfg = self.cfg.for_task(self.task)
        if "val" in source.splits and source.splits["val"]:
            train, val = source.splits["train"], source.splits["val"]
        else:
            train, val = split_train_val(source.splits["train"], cfg.val_fraction, cfg.seed, self.task_spec.stratify)
        self.splits = {"train": train, "val": val}
        if source.splits.get("test"):
            self.splits["test"] = source.splits["test"]
        self.labels = source.labels

    def _setup_target(self) -> None:
        """``--adapt-to``: the unlabelled target samples (a held-out share for the validator) and its labelled test
        split, if it has one (report only)."""
        self.target_splits: dict[str, list[Any]] = {}
        if not self.cfg.adapt_to:
            return
        where = self.cfg.adapt_to
        path = resolve_builtin(where) if where.startswith(BUILTIN_PREFIX) else Path(where)
        columns = Columns(self.cfg.text_column, self.cfg.label_column, self.cfg.target_column)
        found = self.modality_spec.unlabelled(path, list(self.labels), columns)
        pool, held = split_train_val(found.unlabelled, self.cfg.val_fraction, self.cfg.seed, stratify=False)
        self.target_splits = {"target": pool, "target_val": held, **({TARGET_TEST: found.test} if found.test else {})}
        self.target_origin = found.origin
        test = f", {len(found.test)} labelled test samples for the report only" if found.test else ""
        console.print(
            f"target domain {found.origin}: {len(found.unlabelled)} unlabelled {self.modality_spec.noun} "
            f"({len(pool)} to adapt on, {len(held)} for the label-free validator){test}"
        )

    def _setup_adaptation(self) -> None:
        self.adaptation: Adaptation | None = None
        if not self.target_splits:
            return
        cfg = self.cfg
        if cfg.adapt_method == "adabn" and not has_batchnorm(self.model.backbone):
            raise NotApplicable(
                f"--adapt-method adabn re-estimates BatchNorm statistics, and {cfg.model} has no BatchNorm layer "
                f"(LayerNorm); choose entropy, mcc or dann"
            )
        plain = {k: v for k, v in self.target_splits.items() if k != "target"} | {"target_plain": self.target_splits["target"]}
        views = {"target": cfg.augment, **({"target_strong": self.modality_spec.strong_augment} if cfg.self_train else {})}
        sets = {
            name: self._datasets({"train": self.target_splits["target"]}, augment, cfg.seed + i)["train"]
            for i, (name, augment) in enumerate(views.items())
        }
        sets |= self._datasets(plain, "none", cfg.seed)
        self.adaptation = Adaptation(cfg.adapt_method or "none", cfg.self_train, cfg.adapt_weight, cfg.pseudo_threshold,
                                     sets, self.backbone_info.num_features, cfg.seed)  # fmt: skip
        for module in self.adaptation.modules().values():
            module.to(self.device)

    def _datasets(self, splits: dict[str, list[Any]], augment: str, seed: int) -> dict[str, Any]:
        """The modality's datasets of ``splits``; only a split named train is augmented."""
        return self.modality_spec.datasets(splits, self.preprocess, self.backbone_info.processor, self.source, self.task,
                                           self.labels, augment, seed, self.cfg.noise_dir)  # fmt: skip

    def _setup_model(self) -> None:
        cfg = self.cfg
        family, arch = resolve_model(cfg.model)
        check_family(family, self.modality_spec, cfg.model, cfg.data)
        self.spec = ModelSpec(family, arch, self.task, self.task_spec.num_outputs(self.labels), cfg.dropout)
        options = self.modality_spec.config_from_data(cfg, self.source, console.print)  # e.g. the audio window of the clips
        self.cfg = cfg = replace(cfg, **options)
        torch.manual_seed(cfg.seed)
        self.model, backbone = build_model(self.spec, weights=cfg.weights, pretrained=cfg.pretrained, **options)
        self.task_spec.init_head(self.model, self.splits["train"])
        self.model.to(self.device)
        self.groups = backbone.groups
        self.weight_source = backbone.weights
        self.backbone_info = backbone
        self.preprocess = self.modality_spec.preprocess(backbone.preprocess, cfg)
        self.cfg = cfg = replace(cfg, **self.modality_spec.config_from_model(cfg, self.preprocess, self.source, console.print))
        self.datasets = self._datasets(self.splits, cfg.augment, cfg.seed)

    def _write_run_file(self) -> None:
        run = {"config": self.cfg.to_dict(), "lr_changes": self.lr_changes}
        write_json(self.run_dir / RUN_FILE, {**run, **({"loggers": self.logger_state} if self.logger_state else {})})

    def _prepare_run_dir(self) -> None:
        run = {"config": self.cfg.to_dict(), "lr_changes": []}
        if self.resume:
            stored_run = self._read_run_file()
            stored = stored_run.get("config", {})
            diff = [
                k
                for k in run["config"]
                if k not in (*NOT_COMPARED, *RESUME_MAY_CHANGE) and not _same_option(k, stored.get(k), run["config"][k])
            ]
            if diff:
                shown = ", ".join(f"{k}: {stored.get(k)!r} -> {run['config'][k]!r}" for k in diff[:4])
                raise EdgetlError(
                    f"{self.run_dir} was started with other options ({shown}); resume with the same options "
                    f"(only {', '.join('--' + k.replace('_', '-') for k in RESUME_MAY_CHANGE)} may change)"
                )
            self.lr_changes = list(stored_run.get("lr_changes", []))
            self.logger_state = stored_run.get("loggers") if isinstance(stored_run.get("loggers"), dict) else None
            defaults = dict(zip(RESUME_MAY_CHANGE, LEARNING_RATES[self.task]))  # a run file without them had the defaults
            was = {k: defaults[k] if stored.get(k) is None else stored[k] for k in RESUME_MAY_CHANGE}
            changed = {k: [was[k], run["config"][k]] for k in RESUME_MAY_CHANGE if was[k] != run["config"][k]}
            if changed:
                self.pending_lr_change = changed
            return
        if self.overwrite and self.run_dir.exists():
            remove_owned(self.run_dir, RUN_OWNED)  # check_folder accepted it: only edgetl's own entries are there
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_run_file()

    def _read_run_file(self) -> dict[str, Any]:
        path = self.run_dir / RUN_FILE
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(run, dict) or not isinstance(run.get("config"), dict):
                raise ValueError("no config")
            return run
        except (ValueError, UnicodeDecodeError) as exc:
            raise EdgetlError(f"{path} is damaged ({type(exc).__name__}); start the run over with --overwrite") from None

    def _setup_optimizer(self) -> None:
        groups = strategy.param_groups(self.model, self.groups, self.cfg)
        if self.adaptation is not None:
            groups += self.adaptation.param_groups(float(self.cfg.lr_head or 0), self.cfg.weight_decay)
        self.optimizer = torch.optim.AdamW(groups)
        self.loss_fn = self.task_spec.loss(self.model, self.cfg)

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """Rank 0's checkpoint (None: killed before the first epoch finished); sent to the other ranks."""
        ckpt = None
        path = self.run_dir / CHECKPOINT
        if self.world.main and path.exists():
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # truncated, garbage, a pickle that is not weights
                raise _damaged(path, exc) from None
        return distributed.from_main(ckpt, self.world)

    def _load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        ckpt = self._read_checkpoint()
        if ckpt is not None:
            try:
                self.model.load_state_dict(ckpt["model"])
                for name, module in (self.adaptation.modules() if self.adaptation else {}).items():
                    module.load_state_dict(ckpt[name])
                self.optimizer.load_state_dict(ckpt["optimizer"])
                state = (
                    int(ckpt["epoch"]),
                    list(ckpt["history"]),
                    dict(ckpt["best"]),
                    int(ckpt["bad_epochs"]),
                    float(ckpt.get("elapsed", 0.0)),
                )
            except Exception as exc:  # another model's state, missing entries
                raise _damaged(path, exc) from None
            self.start_epoch, self.history, self.best, self.bad_epochs, elapsed = state
            self.started -= elapsed
            if self.world.main:
                self._write_metrics_log()
            console.print(f"resuming {self.run_dir} after epoch {self.start_epoch}")
        # (else: killed before the first epoch finished: start from scratch in place)
        if self.pending_lr_change:
            fresh = strategy.param_groups(self.model, self.groups, self.cfg)
            for group, new in zip(self.optimizer.param_groups, fresh):
                group["base_lr"] = new["base_lr"]
            shown = ", ".join(
                f"--{k.replace('_', '-')} {new:g} (was {old:g})" for k, (old, new) in self.pending_lr_change.items()
            )
            console.print(f"continuing with {shown}")
            self.lr_changes.append({"after_epoch": self.start_epoch, **self.pending_lr_change})
            if self.world.main:
                self._write_run_file()

    # ------------------------------------------------------------------ train
    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out, target)

    def _features(self) -> dict[str, torch.Tensor]:
        """Backbone features of train and val, computed once and kept in the run folder."""
        path = self.run_dir / FEATURES
        from safetensors.torch import load_file, save_file

        found = None
        if self.world.main and path.exists():
            try:
                feats = load_file(str(path))
                if set(feats) == {"train", "val"} and len(feats["train"]) == len(self.datasets["train"]):
                    found = feats
            except Exception:
                pass
            if found is None:
                path.unlink()  # edgetl's own cache, damaged or stale: computed again
        found = distributed.from_main(found, self.world)  # rank 0's cache, or None: computed again, sharded
        feats = found
        if feats is None:
            feats = {name: self._run_backbone(self.datasets[name], f"features: {name}") for name in ("train", "val")}
            if self.world.main:
                with atomic_path(path) as tmp:
                    save_file(feats, str(tmp))
        return {k: v.to(self.device) for k, v in feats.items()}  # kept on the CPU on disk, used on the device

    def _eval_plan(self, n: int, batch_size: int) -> list[list[int]]:
        """Consecutive batches of this rank's span of ``n`` samples (all of them in one process)."""
        mine = distributed.span(n, self.world)
        return [list(mine[i : i + batch_size]) for i in range(0, len(mine), batch_size)]

    def _run_backbone(self, dataset: Dataset, label: str) -> torch.Tensor:
        """Pooled features of a whole dataset, sharded over the ranks and gathered."""
        self.model.backbone.eval()
        plan = self._eval_plan(len(dataset), self.cfg.batch_size * 2)
        loader = _loader(dataset, self.cfg.batch_size * 2, self.cfg.workers, plan=plan)
        out = []
        with torch.no_grad(), _progress() as progress:
            task = progress.add_task(label, total=len(loader), info="")
            for x, _ in loader:
                out.append(self.model.backbone(*_inputs(move(x, self.device))).cpu())
                progress.advance(task)
        part = torch.cat(out).numpy() if out else np.zeros((0,), np.float32)
        return torch.from_numpy(distributed.gather_rows(part, self.world))

    def train(self) -> None:
        if self.finished_already:
            return
        cfg = self.cfg
        w = self.world
        feats = self._features() if cfg.uses_feature_cache else None
        train_set = self.datasets["train"]
        steps = (len(train_set) + cfg.batch_size - 1) // cfg.batch_size
        primary, _ = self.task_spec.primary
        for epoch in range(self.start_epoch, cfg.epochs):
            t0 = time.time()
            torch.manual_seed(_epoch_seed(cfg.seed, epoch))
            gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
            n_train = strategy.trainable_groups(cfg, epoch, len(self.groups))
            strategy.apply_freezing(self.model, self.groups, n_train, cfg.bn_statistics_train)
            if cfg.strategy == "two-phase" and epoch == cfg.phase1_epochs:
                self.bad_epochs = 0  # a new phase gets its own patience
            head_scale = strategy.head_lr_scale(cfg, epoch)
            total_loss, seen = 0.0, 0
            train_out: list[np.ndarray] = []  # the batches' outputs: train metrics on the augmented data, no extra pass
            train_y: list[np.ndarray] = []
            order = torch.randperm(len(train_set), generator=gen)  # one shuffle for both paths
            train_set.set_epoch(epoch)
            plan = train_set.batches(order.tolist(), cfg.batch_size)  # the same batches on both paths (and ranks)
            shards = [distributed.shard(idx, w) for idx in plan]  # this rank's part of each global batch
            weights = [weight for _, weight in shards]
            if feats is not None:
                batches = (
                    (feats["train"][torch.as_tensor(idx)], torch.as_tensor(train_set.targets[np.asarray(idx)]))
                    for idx, _ in shards
                )
            else:
                batches = iter(_loader(train_set, cfg.batch_size, cfg.workers, plan=[idx for idx, _ in shards]))
            target_batches = self._target_batches(epoch, steps)
            self._wrap_for_ddp()
            adapt_facts: dict[str, float] = {}
            with _progress() as progress:
                task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps, info="")
                for step, (x, y) in enumerate(batches):
                    x, y = move(x, self.device), y.to(self.device)
                    strategy.set_lrs(self.optimizer, strategy.lr_factor(cfg, epoch, step, steps), head_scale)
                    target = next(target_batches) if target_batches is not None else None
                    share = (epoch * steps + step) / (cfg.epochs * steps)
                    real = len(y) if weights[step] > 0 else 0  # a rank with no sample of this batch weighs 0
                    step_fn = lambda: self._step(x, y, feats is not None, n_train, target, share, real > 0)  # noqa: B023,E731
                    out, loss, extra, facts = self._ddp(step_fn) if self._ddp is not None else step_fn()
                    for k, v in facts.items():
                        adapt_facts[k] = adapt_facts.get(k, 0.0) + v / steps
                    # the whole batch's loss; the target terms are already the global batch's, the same on every rank
                    loss_sum, count = distributed.all_sum([(loss + extra).item() * real, real], w)
                    value = loss_sum / max(count, 1)
                    if not math.isfinite(value):
                        raise self._diverged(epoch, f"step {step + 1}/{steps}: the training loss is {value}")
                    self.optimizer.zero_grad(set_to_none=True)
                    (loss * weights[step] + extra * w.size).backward()  # DDP averages: see distributed.gather_live
                    self.optimizer.step()
                    total_loss += loss_sum
                    seen += int(count)
                    if real:
                        train_out.append(out.detach().cpu().numpy())
                        train_y.append(y.cpu().numpy())
                    progress.update(task, advance=1, info=f"loss {total_loss / max(seen, 1):.4f}")
            train_seconds = time.time() - t0
            train_out_all = distributed.gather_rows(_rows(train_out), w)
            train_y_all = distributed.gather_rows(_rows(train_y), w)
            if w.active and adapt_facts:
                keys = sorted(adapt_facts)
                adapt_facts = dict(zip(keys, (v / w.size for v in distributed.all_sum([adapt_facts[k] for k in keys], w))))
            val_outputs = self._head_outputs(feats["val"]) if feats is not None else self._outputs("val")
            val_targets = self.datasets["val"].targets
            val_metrics = self._metrics_from_outputs(val_outputs, val_targets)
            val_loss = self._eval_loss(val_outputs, val_targets)
            target_facts, adapted_state = self._evaluate_target() if self.adaptation is not None else ({}, None)
            self._check_finite(
                epoch, {**val_metrics, "loss": val_loss, **{k: v for k, v in target_facts.items() if k == VALIDATOR}}
            )
            entry = {
                "epoch": epoch + 1,
                "train_loss": total_loss / max(1, seen),
                "val_loss": val_loss,
                "val": val_metrics,
                "train": self._metrics_from_outputs(train_out_all, train_y_all),
                "lr": self._learning_rates(),
                "trainable_groups": n_train,
                "total_groups": len(self.groups),
                "trainable": strategy.trainable_names(n_train, len(self.groups)),
                "train_samples": seen,
                "seconds": round(time.time() - t0, 3),
                **target_facts,
                **({"adapt": adapt_facts} if adapt_facts else {}),
            }
            chooses_by_target = self.adaptation is not None and (cfg.adapt_method != "none" or cfg.self_train)
            self._end_epoch(entry, target_facts[VALIDATOR] if chooses_by_target else val_metrics[primary], adapted_state)
            if w.main:
                self.loggers.epoch(entry)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in val_metrics.items())
            if target_facts:
                shown += f"  target IM {target_facts[VALIDATOR]:.4f}"
                if TARGET_TEST in target_facts:
                    shown += f" (test {primary} {target_facts[TARGET_TEST][primary]:.4f}, report only)"
            console.print(
                f"epoch {epoch + 1}/{cfg.epochs}  loss {entry['train_loss']:.4f}  val loss {val_loss:.4f}  val {shown}  "
                f"lr head {entry['lr'].get('head', 0):.2g}  groups {n_train}/{len(self.groups)}  "
                f"({entry['seconds']:.1f}s, {seen / max(train_seconds, 1e-9):.0f} samples/s)"
            )
            if cfg.patience and self.bad_epochs >= cfg.patience:
                console.print(f"early stop: no {primary} improvement for {self.bad_epochs} epochs")
                break

    def _step(
        self, x: Any, y: torch.Tensor, cached: bool, n_train: int, target: Any, share: float, real: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """One batch forward: the outputs, the source loss of this rank's rows, the adaptation's target loss of the
        global batch (0 without one) and the adaptation's facts. ``x`` is backbone features when they are cached;
        ``real`` is False on a rank that holds a stand-in row of this batch."""
        f = x if cached else self._backbone_features(x, n_train)
        out = self.model.forward_head(f)
        loss = self._loss(out, y)
        extra, facts = torch.zeros((), device=out.device), {}
        if target is not None:
            extra, facts = self._target_step(target, f, n_train, share, real)
        return out, loss, extra, facts

    def _wrap_for_ddp(self) -> None:
        """Distributed: the model (and the adaptation's discriminator) in DistributedDataParallel, wrapped again
        whenever the set of trainable parameters changes (two-phase, gradual): DDP fixes its gradient buckets
        to the parameters that need gradients when it is built."""
        if not self.world.active:
            return
        modules = {"model": self.model, **(self.adaptation.modules() if self.adaptation else {})}
        trainable = tuple(f"{k}.{n}" for k, m in modules.items() for n, p in m.named_parameters() if p.requires_grad)
        if self._ddp is not None and trainable == self._ddp_trainable:
            return
        from torch.nn.parallel import DistributedDataParallel

        self._ddp = None
        gc.collect()  # the old wrapper's gradient hooks go with it
        t0 = time.time()
        on_gpu = [self.device.index] if self.device.type == "cuda" else None
        self._ddp = DistributedDataParallel(_Step(modules), device_ids=on_gpu)
        self._ddp_trainable = trainable
        self.ddp_wraps.append({"trainable_tensors": len(trainable), "seconds": round(time.time() - t0, 4)})

    def _backbone_features(self, x: Any, n_train: int) -> torch.Tensor:
        """Pooled features of a batch; without gradients while the whole backbone is frozen."""
        if n_train == 0:
            with torch.no_grad():
                return self.model.backbone(*_inputs(x))
        return self.model.backbone(*_inputs(x))

    def _target_batches(self, epoch: int, steps: int) -> Any:
        """The epoch's target batches (weak view, and the strong view when self-training), one per step; None
        when the method needs none (source-only, AdaBN)."""
        ad = self.adaptation
        if ad is None or not ad.per_step:
            return None
        ad.set_epoch(epoch)
        shards = [distributed.shard(idx, self.world) for idx in ad.plan(epoch, steps, self.cfg.batch_size)]
        plan = [idx for idx, _ in shards]
        weak = _loader(ad.datasets["target"], self.cfg.batch_size, self.cfg.workers, plan=plan)
        strong = (
            iter(_loader(ad.datasets["target_strong"], self.cfg.batch_size, self.cfg.workers, plan=plan))
            if ad.self_train
            else None
        )
        return ((x, next(strong)[0] if strong is not None else None, weight > 0) for (x, _), (_, weight) in zip(weak, shards))

    def _target_step(
        self, batch: tuple[Any, Any, bool], source_features: torch.Tensor, n_train: int, progress: float, real: bool
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The adaptation's loss of the global target batch (this rank's rows forward, the others' gathered)."""
        assert self.adaptation is not None
        weak, strong, target_real = move(batch, self.device)
        target_features = self._backbone_features(weak, n_train)
        target_logits = self.model.forward_head(target_features)
        strong_logits = self.model.forward_head(self._backbone_features(strong, n_train)) if strong is not None else None
        w = self.world
        return self.adaptation.loss(
            source_features, target_features, target_logits, strong_logits, progress,
            gather_source=lambda rows: distributed.gather_live(rows, w, real),
            gather_target=lambda rows: distributed.gather_live(rows, w, target_real),
        )  # fmt: skip

    def _evaluate_target(self) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
        """The label-free validator on held-out target samples and, for the report only, the labelled target test
        split's metrics. AdaBN evaluates (and would ship) the model with target statistics: those weights come back
        too, and the source statistics are put back for training on."""
        ad = self.adaptation
        assert ad is not None
        saved = batchnorm_state(self.model) if ad.method == "adabn" else None
        if saved is not None:
            self._adabn()
        facts = self._target_scores()
        state = None
        if saved is not None:
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(saved, strict=False)
        return facts, state

    def _target_scores(self) -> dict[str, Any]:
        """The current weights' validator on held-out target samples and metrics on the labelled target test split."""
        assert self.adaptation is not None
        ds = self.adaptation.datasets
        facts: dict[str, Any] = {VALIDATOR: information_maximisation(self._outputs_of(ds["target_val"]))}
        if TARGET_TEST in ds:
            facts[TARGET_TEST] = self._metrics_from_outputs(self._outputs_of(ds[TARGET_TEST]), ds[TARGET_TEST].targets)
        return facts

    def _adabn(self) -> None:
        assert self.adaptation is not None
        loader = _loader(self.adaptation.datasets["target_plain"], self.cfg.batch_size * 2, self.cfg.workers)
        reestimate_batchnorm(self.model.backbone, (_inputs(move(x, self.device)) for x, _ in loader))

    def _check_finite(self, epoch: int, val_metrics: dict[str, float]) -> None:
        """Before anything of this epoch is saved: every weight and validation metric must be a finite number."""
        bad = [n for n, p in self.model.state_dict().items() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
        if bad:
            raise self._diverged(epoch, f"weights became nan or inf ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})")
        odd = {k: v for k, v in val_metrics.items() if not math.isfinite(v)}
        if odd:
            raise self._diverged(epoch, f"validation {', '.join(f'{k} {v}' for k, v in odd.items())}")

    def _diverged(self, epoch: int, what: str) -> EdgetlError:
        """Training went non-finite: say where, what to change, and what was kept."""
        cfg = self.cfg
        kept = (
            (
                f"the last good checkpoint (epoch {self.history[-1]['epoch']}) is kept in {self.run_dir}: continue it with "
                f"--resume and lower learning rates, or start over with --overwrite"
            )
            if self.history
            else "nothing was saved: run again with lower learning rates and --resume (or --overwrite)"
        )
        return EdgetlError(
            f"training diverged in epoch {epoch + 1}, {what}; the learning rate is probably too high "
            f"(--lr-head {cfg.lr_head:g}, --lr-backbone {cfg.lr_backbone:g}): try 10x lower; {kept}"
        )

    def _end_epoch(self, entry: dict[str, Any], value: float, best_state: dict[str, torch.Tensor] | None = None) -> None:
        """Best weights (``best_state`` when they differ from the training state: AdaBN's), then the checkpoint,
        then the metrics log: each write atomic."""
        improved = self.task_spec.is_better(value, self.best["metric"])  # the same on every rank: gathered metrics
        if improved:
            self.best = {"metric": value, "epoch": entry["epoch"]}
            self.bad_epochs = 0
            if self.world.main:
                save_state(best_state if best_state is not None else self.model.state_dict(), self.run_dir / BEST)
        else:
            self.bad_epochs += 1
        entry["best"] = improved
        self.history.append(entry)
        if not self.world.main:
            return
        ckpt = {
            "epoch": entry["epoch"],
            "model": self.model.state_dict(),
            **{name: m.state_dict() for name, m in (self.adaptation.modules() if self.adaptation else {}).items()},
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "elapsed": time.time() - self.started,
        }
        with atomic_path(self.run_dir / CHECKPOINT) as tmp:
            torch.save(ckpt, tmp)
        self._write_metrics_log()

    def _write_metrics_log(self) -> None:
        write_text(self.run_dir / METRICS, "".join(json.dumps(e) + "\n" for e in self.history))

    # ------------------------------------------------------------- evaluation
    def _head_outputs(self, feats: torch.Tensor) -> np.ndarray:
        self.model.head.eval()
        with torch.no_grad():
            out = self.model.forward_head(feats).cpu().numpy()
        self.model.head.train()
        return out

    def _metrics_from_outputs(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return self.task_spec.metrics(outputs, targets, self.spec.num_outputs)

    def _outputs(self, split: str) -> np.ndarray:
        """The current model's outputs on a split (eval mode, no augmentation)."""
        return self._outputs_of(self.datasets[split])

    def _outputs_of(self, dataset: Dataset) -> np.ndarray:
        """Sharded over the ranks and gathered in order: every rank gets all outputs."""
        was_training = self.model.training
        self.model.eval()
        plan = self._eval_plan(len(dataset), self.cfg.batch_size * 2)
        loader = _loader(dataset, self.cfg.batch_size * 2, self.cfg.workers, plan=plan)
        outs = []
        with torch.no_grad():
            for x, _ in loader:
                outs.append(self.model(*_inputs(move(x, self.device))).cpu().numpy())
        self.model.train(was_training)
        return distributed.gather_rows(np.concatenate(outs) if outs else np.zeros((0,), np.float32), self.world)

    def _eval_loss(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The training loss (same function, label smoothing included) on evaluation outputs."""
        with torch.no_grad():
            return float(self._loss(torch.from_numpy(outputs).to(self.device), torch.as_tensor(targets).to(self.device)))

    def _peak_gpu(self) -> dict[str, float]:
        """The largest rank's peak GPU memory (on a GPU; the CPU's is peak RSS)."""
        gpu = peak_memory_mb(self.device)
        return {} if gpu is None else {"peak_gpu_mb": distributed.all_max(gpu, self.world)}

    def _device_name(self) -> str:
        """``cpu``, or ``cuda:0 (NVIDIA H200)``: what the manifest says the run trained on."""
        if self.device.type != "cuda":
            return self.device.type
        return f"{self.device} ({torch.cuda.get_device_name(self.device)})"

    def _learning_rates(self) -> dict[str, float]:
        """The learning rate of each parameter group at the end of the epoch ("head", "backbone.0", ...)."""
        rates: dict[str, float] = {}
        for group in self.optimizer.param_groups:
            rates.setdefault(group["name"].rsplit(".", 1)[0], float(group["lr"]))
        return rates

    # ------------------------------------------------------------------- save
    def save(self) -> Bundle:
        """Reload the best weights, measure them on val (and test), write the bundle."""
        if self.finished_already:
            return Bundle(self.run_dir, read_manifest(self.run_dir))
        from safetensors.torch import load_file

        best = self.run_dir / BEST
        state = None
        if self.world.main:
            try:
                state = load_file(str(best))
                self.model.load_state_dict(state)
            except Exception as exc:
                raise EdgetlError(
                    f"{best} cannot be read ({type(exc).__name__}); it is damaged: start over with --overwrite"
                ) from None
        if self.world.active:
            self.model.load_state_dict(distributed.from_main(state, self.world))
        self.model.eval()
        outputs = {split: self._outputs(split) for split in self.splits if split != "train"}
        metrics: dict[str, Any] = {
            split: self._metrics_from_outputs(out, self.datasets[split].targets) for split, out in outputs.items()
        }
        if self.adaptation is not None:  # the bundle's weights on the target: the validator, and the report's test split
            scores = self._target_scores()  # as loaded: AdaBN's target statistics are already in the best weights
            metrics["target"] = {"im": scores.pop(VALIDATOR)}
            metrics.update(scores)
        odd = [f"{split} {k} {v}" for split, values in metrics.items() for k, v in values.items() if not math.isfinite(v)]
        if odd:
            raise EdgetlError(
                f"the best weights of {self.run_dir} give non-finite metrics ({', '.join(odd)}); "
                f"no bundle written: fine-tune again with lower learning rates (--overwrite)"
            )
        metrics.update(
            {
                "best_epoch": self.best["epoch"],
                "epochs_run": len(self.history),
                "wall_time_s": round(time.time() - self.started, 2),
                "peak_rss_mb": round(distributed.all_max(peak_rss_mb(), self.world), 1),  # the largest rank's
                **self._peak_gpu(),
            }
        )
        if not self.world.main:  # rank 0 writes the bundle; the others return what it wrote
            return Bundle(self.run_dir, distributed.from_main(None, self.world))
        findings = diagnose(self.history, self.task, self.cfg.strategy, self.best, self.datasets["train"].targets,
                            self.datasets["val"].targets)  # fmt: skip
        for finding in findings:
            err_console.print(Text.assemble(("warning:", "yellow"), f" {finding['message']}"))
        save_weights(self.model, self.run_dir / WEIGHTS)
        if self.backbone_info.save is not None:
            self.backbone_info.save(self.run_dir)  # e.g. the tokenizer and encoder config of a text model
        value = self.task_spec.target_key
        key = self.modality_spec.sample_key
        rows = {
            name: [{key: getattr(s, key), value: getattr(s, value)} for s in samples] for name, samples in self.splits.items()
        }
        if self.target_splits:  # the target's unlabelled samples (export calibrates on them) and its labelled test split
            rows[TARGET_SPLIT] = [{key: getattr(s, key)} for n in ("target", "target_val") for s in self.target_splits[n]]
            if TARGET_TEST in self.target_splits:
                rows[TARGET_TEST] = [{key: getattr(s, key), value: getattr(s, value)} for s in self.target_splits[TARGET_TEST]]
        if key == "path":  # relative to the bundle: it moves together with its data, and reads the same from any folder
            rows = relative_paths(rows, self.run_dir)
        write_json(self.run_dir / SPLITS, rows)
        held_out = "test" if "test" in outputs else "val"  # what the pictures of errors show
        found = evaluation.evaluate(self.task, outputs[held_out], self.datasets[held_out].targets, list(self.labels),
                                    [r[key] for r in rows[held_out]], held_out, key)  # fmt: skip
        write_json(self.run_dir / EVALUATION, found)
        drawn = self.cfg.figures and figures.write_figures(
            self.run_dir, self.history, found, self.task_spec.primary[0], self.best["epoch"], self.lr_changes,
            image_of=(lambda rel: self.run_dir / rel) if self.modality_spec.pictured else None,
        )  # fmt: skip
        cfg_dict = self.cfg.to_dict()
        manifest = BundleManifest(
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            modality=self.modality,
            family=self.spec.family,
            arch=self.spec.arch,
            task=self.task,
            labels=tuple(self.labels),
            model=self.spec.to_dict(),
            weights_source=self.weight_source.to_dict(),
            preprocess=self.preprocess,
            input=TensorSpec.from_json(self._input_spec(), MANIFEST, "input"),
            output=TensorSpec(self.task_spec.output_name, (1, self.spec.num_outputs), "float32"),
            training={
                **cfg_dict,
                "layer_groups": len(self.groups),
                "feature_cache_used": self.cfg.uses_feature_cache,
                "bn_statistics_trained": self.cfg.bn_statistics_train,
                "world_size": self.world.size,  # processes that trained it (distributed.py); --batch-size is global
                "trained_on": self._device_name(),
                **({"ddp_wraps": self.ddp_wraps} if self.ddp_wraps else {}),
                **({"lr_changes": self.lr_changes} if self.lr_changes else {}),
                "diagnostics": findings,  # overfitting / never beating a trivial baseline (train/diagnose.py)
            },
            data={
                "source": str(Path(self.source.origin).resolve()),
                **({"paths": {"relative_to": "bundle", "bundle_was_at": str(self.run_dir.resolve())}} if key == "path" else {}),
                "splits": {k: len(v) for k, v in self.splits.items()},
                **self.modality_spec.skipped_facts(self.source),
                **({"target": self._target_facts()} if self.target_splits else {}),
            },
            metrics=metrics,
            history=tuple(self.history),
            versions=library_versions(),
            figures=drawn or {},
        )
        write_manifest(self.run_dir, manifest)
        distributed.from_main(manifest.to_json(), self.world)
        self.loggers.finish(self.run_dir, metrics, [self.run_dir / n for n in BUNDLE_FILES if (self.run_dir / n).exists()])
        return Bundle(self.run_dir, manifest.to_json(), self.model, self.backbone_info.processor)

    def _target_facts(self) -> dict[str, Any]:
        """What the manifest's ``data`` records about the target domain."""
        return {
            "source": str(Path(self.target_origin).resolve()),  # a builtin: too is a folder by now
            "method": self.cfg.adapt_method,
            "self_train": self.cfg.self_train,
            "unlabelled": len(self.target_splits["target"]) + len(self.target_splits["target_val"]),
            "validator_samples": len(self.target_splits["target_val"]),
            "labelled_test": len(self.target_splits.get(TARGET_TEST, [])),
        }

    def _input_spec(self) -> dict[str, Any]:
        return self.modality_spec.input_spec(self.preprocess)

    def cleanup(self) -> None:
        """Training state is not part of a finished bundle."""
        if not self.world.main:
            return
        for name in (CHECKPOINT, BEST, FEATURES):
            (self.run_dir / name).unlink(missing_ok=True)

    def close(self, failed: bool) -> None:
        """End the loggers (a failed or interrupted run is marked so in MLflow)."""
        self.loggers.close(failed=failed)


def check_run_folder(run_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Before a recipe writes into ``run_dir``: only edgetl's own run or bundle may be there (``ownership.py``; the
    temp files a killed run left are cleared), and --resume / --overwrite must fit what is there. True when
    ``resume`` finds a finished bundle: nothing is left to do."""
    if check_folder(run_dir, RUN_OWNED, replacing=overwrite):
        clean_stale(run_dir)
    if (run_dir / MANIFEST).exists() and not overwrite:
        if resume:
            return True
        raise EdgetlError(f"{run_dir} already holds a finished bundle; pass --overwrite or another --out")
    if (run_dir / RUN_FILE).exists() and not (resume or overwrite):
        raise EdgetlError(f"{run_dir} holds an unfinished run; add --resume to continue it or --overwrite to start over")
    if resume and not (run_dir / RUN_FILE).exists():
        raise EdgetlError(f"nothing to resume in {run_dir} (no {RUN_FILE}); drop --resume to start a new run")
    return False


def _rows(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


def _damaged(path: Path, exc: BaseException) -> EdgetlError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
    return EdgetlError(
        f"{path} cannot be read ({reason}); it is damaged: delete it to restart this run "
        f"from epoch 1 with --resume, or start over with --overwrite"
    )


def _same_option(key: str, stored: Any, now: Any) -> bool:
    """Whether a resumed run's option equals the stored one (the data path compared as the folder it names)."""
    if key == "data" and isinstance(stored, str) and isinstance(now, str) and not now.startswith(BUILTIN_PREFIX):
        return Path(stored).resolve() == Path(now).resolve()
    return stored == now


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def finetune(
    data: str,
    out: str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    nproc: int = 1,
    per_device_batch: int | None = None,
    **options: Any,
) -> Bundle:
    """Fine-tune a pretrained model on ``data`` and write a bundle to ``out``.

    ``options`` are the fields of ``FinetuneConfig`` (model, strategy, epochs, ...). ``nproc`` > 1 runs the same
    run as that many local processes (``launch.py``); under torchrun or ``accelerate launch`` each process is one
    rank already. ``--batch-size`` is the global batch; ``per_device_batch`` sets it to that many per rank instead.
    """
    from ..data.transcripts import looks_like_transcripts

    w = distributed.world()
    if nproc < 1:
        raise EdgetlError("--nproc must be at least 1")
    if per_device_batch is not None and per_device_batch < 1:
        raise EdgetlError("--per-device-batch must be at least 1")
    if nproc > 1 and w.active and nproc != w.size:
        raise EdgetlError(f"--nproc {nproc} under a launcher that started {w.size} ranks: drop --nproc")
    if nproc > 1 and not w.active:
        from .launch import launch_local

        launch_local(nproc, {"data": data, "out": out, "resume": resume, "overwrite": overwrite,
                             "per_device_batch": per_device_batch, **options})  # fmt: skip
        return Bundle(Path(out), read_manifest(out))
    if per_device_batch is not None:
        options["batch_size"] = per_device_batch * w.size
    if not data.startswith(BUILTIN_PREFIX) and looks_like_transcripts(data):  # clips with transcriptions: Whisper
        if w.active:
            raise EdgetlError(
                "distributed fine-tuning covers classification and regression; speech recognition (a transcripts "
                "CSV) runs in one process: drop --nproc / the launcher"
            )
        if options.get("device", "auto") not in ("auto", "cpu"):
            raise EdgetlError(
                f"--device {options['device']}: speech recognition (a transcripts CSV) trains on the CPU for now; drop --device"
            )
        from .transcribe import finetune_transcriber

        path = finetune_transcriber(data, out, resume=resume, overwrite=overwrite, **options)
        return Bundle(path, read_manifest(path))
    try:
        cfg = FinetuneConfig(data=data, out=out, **options)
    except TypeError as exc:
        raise EdgetlError(f"finetune: {exc}") from None
    try:
        bundle = _finetune_auto(cfg, resume, overwrite) if cfg.adapt_method == "auto" else _run_recipe(cfg, resume, overwrite)
    except Exception as exc:
        lost = distributed.lost_peer(exc, w)
        if lost is not None:
            raise lost from None
        raise
    distributed.finish()
    return bundle


def _run_recipe(cfg: FinetuneConfig, resume: bool, overwrite: bool = False) -> Bundle:
    recipe = FinetuneRecipe(cfg, resume=resume, overwrite=overwrite)
    failed = True
    try:
        recipe.setup()
        recipe.train()
        bundle = recipe.save()
        recipe.cleanup()
        failed = False
    finally:
        recipe.close(failed)
    return bundle


def _finetune_auto(cfg: FinetuneConfig, resume: bool, overwrite: bool) -> Bundle:
    """``--adapt-method auto`` (``auto_adapt.py``): the data is read first, so bad input leaves nothing behind;
    run.json marks the folder unfinished until the chosen bundle is in place."""
    probe = FinetuneRecipe(replace(cfg, adapt_method="none"), resume=resume, overwrite=overwrite)
    cfg = replace(probe.cfg, adapt_method="auto")
    run_dir = Path(cfg.out)
    for data in (cfg.data, cfg.adapt_to or ""):
        if data and not data.startswith(BUILTIN_PREFIX):
            guard_data(run_dir, [data])
    w = probe.world
    if distributed.from_main(check_run_folder(run_dir, resume, overwrite) if w.main else None, w):
        return Bundle(run_dir, distributed.from_main(read_manifest(run_dir) if w.main else None, w))
    probe._setup_data()
    probe._setup_target()
    if w.main:
        if overwrite and run_dir.exists():
            remove_owned(run_dir, RUN_OWNED)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / RUN_FILE).exists():
            write_json(run_dir / RUN_FILE, {"config": cfg.to_dict(), "lr_changes": []})
    path = finetune_auto(cfg, resume, lambda c, again: _run_recipe(c, again).path, choose_here=w.main)
    manifest = None
    if w.main:
        (run_dir / RUN_FILE).unlink()
        manifest = read_manifest(path)
        console.print(f"auto: chose {manifest['training']['adapt_method_chosen']} (by the label-free validator)")
    return Bundle(path, distributed.from_main(manifest, w))
