"""Regression: one output mapped back to target units with the training set's mean and std; MSE in
standardised units, MAE watched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgetl_runtime.metrics import DEFAULT_BUDGET, PRIMARY, is_better, task_metrics
from edgetl_runtime.predict import decode

from .base import Loss

if TYPE_CHECKING:
    import torch
    from torch import nn


class Regression:
    name = "regression"
    target_key = "target"
    output_name = "prediction"
    stratify = False

    @property
    def primary(self) -> tuple[str, bool]:
        return PRIMARY[self.name]

    @property
    def default_budget(self) -> float:
        return DEFAULT_BUDGET[self.name]

    def num_outputs(self, labels: list[str]) -> int:
        return 1

    def init_head(self, model: nn.Module, train: list[Any]) -> None:
        """The output layer starts at the training targets' mean and std (``model.TargetScale``)."""
        y = np.asarray([s.target for s in train], dtype=np.float64)
        scale: Any = model.output
        scale.mean.fill_(float(y.mean()))
        scale.std.fill_(float(y.std()) or 1.0)

    def loss(self, model: nn.Module, cfg: Any) -> Loss:
        from torch import nn

        mse = nn.MSELoss()

        scale: Any = model.output

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            std = scale.std  # read at each step: a resumed run's checkpoint loads into the buffer
            return mse(out.squeeze(1) / std, target / std)

        return loss

    def metrics(self, outputs: np.ndarray, targets: np.ndarray, num_outputs: int) -> dict[str, float]:
        return task_metrics(self.name, outputs, targets, num_outputs)

    def is_better(self, new: float, best: float | None) -> bool:
        return is_better(self.name, new, best)

    def decode(
        self, labels: list[str], key: str, items: list[str], outputs: np.ndarray, top_k: int, where: Any
    ) -> list[dict[str, Any]]:
        return decode(self.name, labels, key, items, outputs, top_k, where)


REGRESSION = Regression()
