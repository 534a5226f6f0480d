"""The fine-tuning configuration: every option the recipe reads, nothing else."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import EdgetlError
from ..modality import MODALITIES, get_modality
from .device import DEVICES, valid_device

ADAPT_METHODS = ("none", "adabn", "entropy", "mcc", "dann")  # train/adapt.py: none is source-only, with the report
STRATEGIES = ("linear", "partial", "full", "gradual", "two-phase", "decoder")  # decoder: transcription only
# default (head, backbone) learning rates: a new head learns fast; a pretrained decoder is only nudged
LEARNING_RATES = {"classification": (3e-3, 1e-4), "regression": (3e-3, 1e-4), "transcription": (1e-4, 3e-5)}


@dataclass
class FinetuneConfig:
    data: str
    out: str
    model: str | None = None  # None: mobilenet_v2 for images, minilm-l6 for text, whisper-tiny.en for audio
    weights: str | None = None
    pretrained: bool = True
    strategy: str = "two-phase"
    epochs: int = 6
    head_epochs: int | None = None  # two-phase: epochs of phase 1 (default: a third, at least 1)
    unfreeze: int = 2  # partial: top N layer groups trained with the head
    gradual_every: int = 1  # gradual: one more group every K epochs
    batch_size: int = 32
    lr_head: float | None = None  # None: LEARNING_RATES of the task (the new head; Whisper's decoder when transcribing)
    lr_backbone: float | None = None
    layer_decay: float | None = None  # e.g. 0.8: each lower group gets 0.8x the LR of the one above
    weight_decay: float = 0.01
    warmup_epochs: float = 0.5
    dropout: float = 0.2
    train_bn: bool | None = None  # BatchNorm statistics update in unfrozen groups? None: only when training from scratch
    label_smoothing: float = 0.1
    augment: str | None = None  # None: crop-flip for images, none for text (the only choice there), light for audio
    patience: int = 3  # early stopping; 0 disables it
    val_fraction: float = 0.2
    seed: int = 0
    image_size: int | None = None
    max_length: int | None = None  # text: tokens per text (default 128, at most the model's positions)
    max_audio_seconds: float | None = None  # audio: the feature window (default: the clips' length if all alike, else 2 s)
    noise_dir: str | None = None  # audio: background recordings mixed in by augmentation (default: synthetic noise)
    text_column: str = "text"
    label_column: str = "label"
    target_column: str = "target"
    labels: list[str] | None = None
    max_bad_fraction: float = 0.1
    feature_cache: bool = True  # linear + no augmentation: run the backbone once
    workers: int = 0
    threads: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N (train/device.py)
    figures: bool = True  # draw figures/*.png into the bundle (about 3 s)
    log: list[str] = field(default_factory=list)  # experiment loggers: "tensorboard", "mlflow" (train/loggers.py)
    # domain adaptation (train/adapt.py): unlabelled target data, the method, and self-training on top
    adapt_to: str | None = None
    adapt_method: str | None = None  # None: mcc when --adapt-to is given
    self_train: bool = False
    adapt_weight: float = 1.0  # the target loss's weight next to the source cross-entropy
    pseudo_threshold: float = 0.95  # self-training: the weak view's confidence a pseudo-label needs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> None:
        """Reject unsupported combinations before any work starts."""
        if self.strategy not in STRATEGIES:
            raise EdgetlError(f"unknown strategy '{self.strategy}'; choose one of {', '.join(STRATEGIES)}")
        known = dict.fromkeys(a for m in MODALITIES.values() for a in m.augments)
        if self.augment is not None and self.augment not in known:
            raise EdgetlError(f"unknown augmentation '{self.augment}'; choose one of {', '.join(known)}")
        finite = all(
            math.isfinite(v)
            for v in (
                1.0 if self.lr_head is None else self.lr_head,
                1.0 if self.lr_backbone is None else self.lr_backbone,
                self.weight_decay,
                self.warmup_epochs,
                self.dropout,
                self.label_smoothing,
                self.val_fraction,
                self.max_bad_fraction,
                self.layer_decay or 1.0,
                self.max_audio_seconds or 1.0,
                self.adapt_weight,
                self.pseudo_threshold,
            )
        )
        checks = [
            (finite, "numeric options must be finite numbers (not nan or inf)"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (all(lr is None or lr > 0 for lr in (self.lr_head, self.lr_backbone)), "learning rates must be positive"),
            (self.weight_decay >= 0, "--weight-decay must be 0 or more"),
            (self.warmup_epochs >= 0, "--warmup-epochs must be 0 or more"),
            (0 <= self.seed < 2**32, "--seed must be a whole number from 0 to 4294967295"),
            (self.workers >= 0, "--workers must be 0 (load data in the main process) or more"),
            (self.threads is None or self.threads >= 1, "--threads must be at least 1"),
            (valid_device(self.device), f"--device must be {DEVICES}"),
            (0.0 < self.val_fraction < 1.0, "--val-fraction must be between 0 and 1"),
            (0.0 <= self.dropout < 1.0, "--dropout must be in [0, 1)"),
            (0.0 <= self.label_smoothing < 1.0, "--label-smoothing must be in [0, 1)"),
            (self.unfreeze >= 1, "--unfreeze must be at least 1"),
            (self.gradual_every >= 1, "--gradual-every must be at least 1"),
            (self.layer_decay is None or 0 < self.layer_decay <= 1, "--layer-decay must be in (0, 1]"),
            (self.image_size is None or 16 <= self.image_size <= 4096, "--image-size must be 16 to 4096 pixels"),
            (self.max_length is None or self.max_length >= 4, "--max-length must be at least 4"),
            (self.max_audio_seconds is None or self.max_audio_seconds > 0, "--max-audio-seconds must be positive"),
            (self.patience >= 0, "--patience must be 0 (off) or more"),
            (0.0 <= self.max_bad_fraction <= 1.0, "--max-bad-fraction must be in [0, 1]"),
            (self.adapt_weight >= 0, "--adapt-weight must be 0 or more"),
            (0.0 < self.pseudo_threshold < 1.0, "--pseudo-threshold must be between 0 and 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgetlError(message)
        if self.strategy == "two-phase" and self.epochs < 2:
            raise EdgetlError("--strategy two-phase needs --epochs 2 or more (head phase, then full)")
        if self.head_epochs is not None and self.strategy == "two-phase" and not 1 <= self.head_epochs < self.epochs:
            raise EdgetlError(
                f"--head-epochs must be 1 to {self.epochs - 1}: fewer than --epochs {self.epochs}, "
                f"so that the full phase gets at least one epoch"
            )
        if self.labels is not None:
            if not self.labels:
                raise EdgetlError("--labels is empty; list the class names, comma-separated")
            repeated = sorted({x for x in self.labels if self.labels.count(x) > 1})
            if repeated:
                raise EdgetlError(f"--labels lists {', '.join(repeated)} more than once; list each class once")
        if not self.adapt_to and (self.adapt_method is not None or self.self_train):
            flag = "--self-train" if self.self_train else f"--adapt-method {self.adapt_method}"
            raise EdgetlError(f"{flag} needs unlabelled target data: add --adapt-to FOLDER (or a text file for texts)")
        if self.adapt_method is not None and self.adapt_method not in (*ADAPT_METHODS, "auto"):
            raise EdgetlError(f"unknown --adapt-method '{self.adapt_method}'; choose one of {', '.join(ADAPT_METHODS)} or auto")
        if self.weights and not self.pretrained:
            raise EdgetlError("--weights and --no-pretrained contradict each other; drop one")

    def for_modality(self, modality: str) -> FinetuneConfig:
        """Fill the per-modality defaults (model, augment); reject options of other modalities in one line."""
        spec = get_modality(modality)
        if self.augment is not None and self.augment not in spec.augments:
            owners = " and ".join(m.data_word for m in MODALITIES.values() if self.augment in m.augments)
            only_none = spec.augments == ("none",)  # nothing to choose: the option is pointless here
            hint = (
                f"drop it for {spec.data_word} data" if only_none else f"for {spec.data_word} choose {', '.join(spec.augments)}"
            )
            raise EdgetlError(f"--augment {self.augment} applies to {owners} only; {hint}")
        for owner in MODALITIES.values():
            for i, (name, flag) in enumerate(owner.own_options):
                if owner is not spec and getattr(self, name) is not None:
                    # the first option of each modality sizes its input: name this modality's own instead
                    hint = f"use {spec.own_options[0][1]} for {spec.data_word}" if i == 0 else f"drop it for {spec.data_word}"
                    raise EdgetlError(f"{flag} applies to {owner.data_word} only; {hint}")
        return replace(self, model=self.model or spec.default_model, augment=self.augment or spec.default_augment)

    def for_task(self, task: str) -> FinetuneConfig:
        """Fill the learning rates the user left to the task's defaults; reject strategies of another task."""
        wrong = ("linear", "gradual") if task == "transcription" else ("decoder",)
        if self.strategy in wrong:
            hint = (
                "decoder, partial, full or two-phase"
                if task == "transcription"
                else "linear, partial, full, gradual or two-phase"
            )
            raise EdgetlError(f"--strategy {self.strategy} does not apply to {task}; choose {hint}")
        if self.adapt_to and task != "classification":
            raise EdgetlError(
                f"--adapt-to applies to classification only (its methods and its label-free validator work on "
                f"class predictions); drop it for {task}"
            )
        head, backbone = LEARNING_RATES[task]
        return replace(
            self,
            adapt_method=(self.adapt_method or "mcc") if self.adapt_to else None,
            lr_head=head if self.lr_head is None else self.lr_head,
            lr_backbone=backbone if self.lr_backbone is None else self.lr_backbone,
        )

    @property
    def phase1_epochs(self) -> int:
        return self.head_epochs if self.head_epochs is not None else max(1, self.epochs // 3)

    @property
    def bn_statistics_train(self) -> bool:
        """Pretrained: keep BatchNorm running statistics (small-data fine-tuning recipe); scratch: learn them.
        AdaBN learns them too: it swaps source statistics for target ones, so they must be the source's."""
        if self.train_bn is not None:
            return self.train_bn
        return not self.pretrained or self.adapt_method == "adabn"

    @property
    def uses_feature_cache(self) -> bool:
        """Target batches go through the backbone every step: adaptation never uses the cache."""
        return self.strategy == "linear" and self.augment == "none" and self.feature_cache and not self.adapt_to
