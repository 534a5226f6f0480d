"""Image preprocessing for evaluation and prediction: Pillow and numpy only.

The spec is the manifest's ``preprocess`` section (resolved on the training side by
``edgetl.data.preprocess.resolve_preprocess``): resize the shorter side, centre-crop,
normalise by mean/std, NCHW float32. Training, export parity, the benchmark and a
device all run this same code, so an artifact is fed exactly what the PyTorch model saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def image_size(spec: dict[str, Any]) -> tuple[int, int]:
    _, h, w = spec["input_size"]
    return int(h), int(w)


def resample(spec: dict[str, Any]) -> Image.Resampling:
    return RESAMPLE[spec["interpolation"]]


def normalize(img: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """An RGB image already at input size -> float32 CHW, normalised by mean/std."""
    arr: np.ndarray = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess_image(img: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """Evaluation transform: resize the shorter side, centre-crop, normalise."""
    img = img.convert("RGB")
    h, w = image_size(spec)
    short = spec["resize"]
    iw, ih = img.size
    scale = short / min(iw, ih)
    new_w, new_h = max(w, round(iw * scale)), max(h, round(ih * scale))
    img = img.resize((new_w, new_h), resample(spec))
    left, top = (new_w - w) // 2, (new_h - h) // 2
    img = img.crop((left, top, left + w, top + h))
    return normalize(img, spec)


DEFAULT_MAX_IMAGE_PIXELS = 50_000_000  # 50 megapixels: every phone camera; a decompression bomb is far above


class ImageRejected(ValueError):
    """An image edgetl will not decode (above the pixel limit)."""


def max_image_pixels() -> int:
    """The largest image (width x height) edgetl decodes: ``EDGETL_MAX_IMAGE_PIXELS``, else 50 megapixels."""
    import os

    value = os.environ.get("EDGETL_MAX_IMAGE_PIXELS", "")
    try:
        return int(value) if value.strip() else DEFAULT_MAX_IMAGE_PIXELS
    except ValueError:
        from .errors import EdgetlError

        raise EdgetlError(
            f"EDGETL_MAX_IMAGE_PIXELS={value!r} is not a whole number of pixels; unset it or set e.g. 100000000"
        ) from None


def open_image(path: str) -> Image.Image:
    """``Image.open`` with the pixel limit checked before anything is decoded (decompression bombs)."""
    import warnings

    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = max(limit, 1)  # Pillow's own guard refuses at twice this; ours below at once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageRejected(f"more than {limit} pixels (EDGETL_MAX_IMAGE_PIXELS)") from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise ImageRejected(f"{w}x{h} is more than {limit} pixels (EDGETL_MAX_IMAGE_PIXELS raises the limit)")
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB; 16- and 32-bit greyscale (16-bit PNG, TIFF) and float images are scaled to 0..255, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            top = 65535.0
        elif im.mode == "F":
            top = 1.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 255.0
        else:  # 32-bit integers: 16-bit data in practice, 8-bit when nothing exceeds it
            peak = float(arr.max(initial=0.0))
            top = 255.0 if peak <= 255 else (65535.0 if peak <= 65535 else peak)
        arr = np.clip(np.nan_to_num(arr) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, mode="L")
    return im.convert("RGB")


def load_image(path: str) -> Image.Image:
    with open_image(path) as im:
        return to_rgb(im)


def read_images(paths: list[str], spec: dict[str, Any], advice: str) -> np.ndarray:
    """Image files -> the evaluation-preprocessed float32 NCHW batch; a file that cannot be read is one
    ``EdgetlError`` line naming it (too large, or unreadable with ``advice``)."""
    from .errors import EdgetlError

    arrays = []
    for path in paths:
        try:
            arrays.append(preprocess_image(load_image(path), spec))
        except EdgetlError:
            raise
        except ImageRejected as exc:
            raise EdgetlError(f"image {path} is too large ({exc})") from None
        except Exception as exc:
            raise EdgetlError(f"cannot read image {path} ({type(exc).__name__}); {advice}") from None
    return np.stack(arrays).astype(np.float32)
