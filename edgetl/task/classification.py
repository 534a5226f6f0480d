"""Classification: one logit per label, cross-entropy with label smoothing, accuracy watched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgetl_runtime.metrics import DEFAULT_BUDGET, PRIMARY, is_better, task_metrics
from edgetl_runtime.predict import decode

from .base import Loss

if TYPE_CHECKING:
    from torch import nn


class Classification:
    name = "classification"
    target_key = "label"
    output_name = "logits"
    stratify = True

    @property
    def primary(self) -> tuple[str, bool]:
        return PRIMARY[self.name]

    @property
    def default_budget(self) -> float:
        return DEFAULT_BUDGET[self.name]

    def num_outputs(self, labels: list[str]) -> int:
        return len(labels)

    def init_head(self, model: nn.Module, train: list[Any]) -> None:
        return None

    def loss(self, model: nn.Module, cfg: Any) -> Loss:
        from torch import nn

        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def metrics(self, outputs: np.ndarray, targets: np.ndarray, num_outputs: int) -> dict[str, float]:
        return task_metrics(self.name, outputs, targets, num_outputs)

    def is_better(self, new: float, best: float | None) -> bool:
        return is_better(self.name, new, best)

    def decode(
        self, labels: list[str], key: str, items: list[str], outputs: np.ndarray, top_k: int, where: Any
    ) -> list[dict[str, Any]]:
        return decode(self.name, labels, key, items, outputs, top_k, where)


CLASSIFICATION = Classification()
