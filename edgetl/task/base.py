"""What every task answers on the training side; the metrics and decoding live in ``edgetl_runtime``.

A Protocol, not a base class: each task is one flat module. Sequence tasks (speech recognition)
will answer the same questions with their own head, loss and metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # the facts need no torch; the head and the loss do
    import torch
    from torch import nn

Loss = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


class Task(Protocol):
    """Classification or regression: the head's outputs, the loss, the metric early stopping watches."""

    name: str  # the manifest's ``task``
    target_key: str  # the field holding a sample's answer (a sample's attribute, a splits.json field)
    output_name: str  # the bundle's output name
    stratify: bool  # whether a validation split drawn from training keeps each class's share

    @property
    def primary(self) -> tuple[str, bool]:
        """The metric early stopping watches, and whether larger is better."""

    @property
    def default_budget(self) -> float:
        """What an artifact may lose against PyTorch by default (``edgetl_runtime.metrics``)."""

    def num_outputs(self, labels: list[str]) -> int:
        """The head's output count."""

    def init_head(self, model: nn.Module, train: list[Any]) -> None:
        """Set what the head learns from the training samples before the first step."""

    def loss(self, model: nn.Module, cfg: Any) -> Loss:
        """The training loss: ``loss(outputs, targets)``."""

    def metrics(self, outputs: np.ndarray, targets: np.ndarray, num_outputs: int) -> dict[str, float]:
        """The task's metrics (``edgetl_runtime.metrics.task_metrics``)."""

    def is_better(self, new: float, best: float | None) -> bool:
        """Whether ``new`` improves on ``best`` (None: nothing yet)."""

    def decode(
        self, labels: list[str], key: str, items: list[str], outputs: np.ndarray, top_k: int, where: Any
    ) -> list[dict[str, Any]]:
        """One result per input (``edgetl_runtime.predict.decode``)."""
