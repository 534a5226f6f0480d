"""Train-time augmentation on PIL images, driven by an explicit numpy RNG.

Every random choice comes from the generator passed in, so a sample's
augmentation depends only on (seed, epoch, index): runs are repeatable and a
resumed run sees the same images as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from edgetl_runtime.image import image_size, normalize, resample

# name -> (random-resized-crop scale range, horizontal flip, colour jitter strength)
AUGMENT_PRESETS: dict[str, tuple[tuple[float, float], bool, float]] = {
    "none": ((1.0, 1.0), False, 0.0),
    "crop": ((0.6, 1.0), False, 0.0),
    "crop-flip": ((0.6, 1.0), True, 0.0),
    "strong": ((0.08, 1.0), True, 0.3),
    "heavy": ((0.35, 1.0), False, 0.5),  # self-training's strong view: no flip, strong crops and colour
}


def _random_resized_crop_box(w: int, h: int, scale: tuple[float, float], rng: np.random.Generator) -> tuple[int, int, int, int]:
    area = w * h
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * ratio)))
        ch = int(round(math.sqrt(target / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            left = int(rng.integers(0, w - cw + 1))
            top = int(rng.integers(0, h - ch + 1))
            return left, top, left + cw, top + ch
    side = min(w, h)
    return (w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side


def augment_image(img: Image.Image, spec: dict[str, Any], preset: str, rng: np.random.Generator) -> np.ndarray:
    """Random-resized-crop (+ flip, + jitter) to input size, then normalise to CHW."""
    scale, flip, jitter = AUGMENT_PRESETS[preset]
    img = img.convert("RGB")
    box = _random_resized_crop_box(*img.size, scale, rng)
    h, w = image_size(spec)
    img = img.resize((w, h), resample(spec), box=box)
    if flip and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if jitter > 0:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(float(rng.uniform(1 - jitter, 1 + jitter)))
    return normalize(img, spec)
