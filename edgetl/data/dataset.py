"""A torch Dataset over labelled images with deterministic per-sample augmentation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from edgetl_runtime.image import load_image, preprocess_image

from ..errors import EdgetlError
from .augment import augment_image
from .sources import Sample, encode_targets


class FixedShapeDataset(Dataset):
    """What image and audio datasets share: samples of one fixed input shape, their targets, an epoch
    counter for deterministic (seed, epoch, index) augmentation, and batches of consecutive items."""

    def __init__(
        self,
        samples: list[Sample],
        preprocess: dict[str, Any],
        task: str,
        labels: list[str],
        augment: str = "none",
        seed: int = 0,
    ) -> None:
        self.samples = samples
        self.preprocess = preprocess
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.targets = encode_targets(task, labels, samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def batches(self, order: list[int], batch_size: int) -> list[list[int]]:
        """Consecutive chunks of ``order`` (every item has the same shape; the text dataset groups by length instead)."""
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    collate = staticmethod(default_collate)


class ImageDataset(FixedShapeDataset):
    """Yields (CHW float tensor, target). Augmentation depends only on (seed, epoch, index)."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.samples[i].path
        try:
            img = load_image(path)
        except Exception as exc:
            raise EdgetlError(f"cannot read image {path} ({type(exc).__name__}); remove or replace it") from None
        if self.augment == "none":
            arr = preprocess_image(img, self.preprocess)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            arr = augment_image(img, self.preprocess, self.augment, rng)
        return torch.from_numpy(arr), torch.as_tensor(self.targets[i])
