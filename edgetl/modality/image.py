"""Images: folders or CSVs of image files, preprocessed to NCHW float32 pixels (``edgetl_runtime/image.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgetl_runtime.base import Batch
from edgetl_runtime.image import IMAGE_SUFFIXES, read_images

from ..data.augment import AUGMENT_PRESETS
from ..errors import EdgetlError
from .base import Say, fact, files_under

if TYPE_CHECKING:
    import torch


class ImageModality:
    name = "image"
    noun = "images"
    data_word = "images"
    a_name = "an image"
    kind = "vision"
    precedence = 2  # the fallback: anything that is not audio or text
    sample_key = "path"
    result_key = "file"
    raw_inputs = "image files"
    predict_api = "predict_files"
    default_model = "mobilenet_v2"
    default_augment = "crop-flip"
    augments: tuple[str, ...] = tuple(AUGMENT_PRESETS)
    strong_augment = "heavy"  # no flip: a mirrored 2 or 7 is not one
    own_options: tuple[tuple[str, str], ...] = (("image_size", "--image-size"),)
    layout_io = True
    artifact_input = "float32 pixels [batch, 3, height, width]"
    token_inputs = False
    pictured = True

    def looks_like(self, path: Path, columns: Any) -> bool:
        return True

    def scan(
        self,
        path: Path,
        labels: list[str] | None = None,
        columns: Any = None,
        max_bad_fraction: float = 0.1,
        progress: bool = True,
    ) -> Any:
        from ..data.sources import scan_images

        return scan_images(path, labels, max_bad_fraction)

    def unlabelled(self, path: Path, labels: list[str], columns: Any) -> Any:
        from ..data.unlabelled import scan_target_files

        return scan_target_files(path, IMAGE_SUFFIXES, "image", labels)

    def sample_files(self, source: Any) -> list[str]:
        return [s.path for split in source.splits.values() for s in split]

    def skipped_facts(self, source: Any) -> dict[str, Any]:
        return {"skipped_images": len(source.skipped)}

    def config_from_data(self, cfg: Any, source: Any, say: Say) -> dict[str, Any]:
        return {}

    def preprocess(self, pretrained: dict[str, Any], cfg: Any) -> dict[str, Any]:
        from ..data.preprocess import resolve_preprocess

        return resolve_preprocess(pretrained, {"image_size": cfg.image_size})

    def config_from_model(self, cfg: Any, preprocess: dict[str, Any], source: Any, say: Say) -> dict[str, Any]:
        return {}

    def datasets(
        self,
        splits: dict[str, list[Any]],
        preprocess: dict[str, Any],
        processor: Any,
        source: Any,
        task: str,
        labels: list[str],
        augment: str,
        seed: int,
        noise_dir: str | None = None,
    ) -> dict[str, Any]:
        from ..data.dataset import ImageDataset

        return {
            name: ImageDataset(samples, preprocess, task, labels, augment=augment if name == "train" else "none", seed=seed)
            for name, samples in splits.items()
        }

    def input_spec(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        _, h, w = preprocess["input_size"]
        return {"name": "pixel_values", "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW"}

    def summary(self, preprocess: dict[str, Any]) -> str:
        p = preprocess
        size = fact(p, "input_size")
        return (
            f"resize {fact(p, 'resize')} crop {size[1:] if isinstance(size, list) else '-'} {fact(p, 'interpolation')} "
            f"mean {fact(p, 'mean')} std {fact(p, 'std')}"
        )

    def check_export(self, bundle: Any) -> None:
        return None

    def calibration_items(self, source: str) -> list[str]:
        return files_under(source, "images", IMAGE_SUFFIXES)

    def samples(self, bundle: Any, items: list[str], length: int | None) -> Batch:
        return read_images(items, bundle.preprocess, "is the training data still there?")

    def eval_inputs(self, bundle: Any, items: list[str], origin: str) -> Batch:
        return read_images(items, bundle.preprocess, "is the data still there?")

    def protocol_facts(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        return {}

    def unpad(self, batch: Batch) -> Batch:
        return batch

    def encode(self, model: Any, raw: list[str]) -> Batch:
        for f in raw:
            if Path(f).is_dir():
                raise EdgetlError(f"{f} is a folder, not a file; pass image files to predict on")
            if not Path(f).is_file():
                raise EdgetlError(f"{f} does not exist; pass image files to predict on")
        return read_images(raw, model.preprocess, "pass a PNG/JPEG/BMP image")

    def model_inputs(self, batch: Batch, names: list[str]) -> list[torch.Tensor]:
        import torch

        return [torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))]


IMAGE = ImageModality()
