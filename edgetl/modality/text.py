"""Texts: tables, JSONL or folders of texts, tokenised by the bundle's own tokenizer into int64 token arrays."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from edgetl_runtime.base import Batch
from edgetl_runtime.text import trim_padding

from ..errors import EdgetlError
from .base import Say, fact

if TYPE_CHECKING:
    import torch

TOKENIZER_FILE = "tokenizer.json"  # the bundle's fast tokenizer, which every text artifact carries


class TextModality:
    name = "text"
    noun = "texts"
    data_word = "text"
    a_name = "a text"
    kind = "text"
    precedence = 1  # after audio: an audio folder may hold a stray .txt
    sample_key = "text"
    result_key = "text"
    raw_inputs = "texts"
    predict_api = "predict_texts"
    default_model = "minilm-l6"
    default_augment = "none"
    augments: tuple[str, ...] = ("none",)
    strong_augment = "none"  # no text augmentation: self-training is plain pseudo-labelling
    own_options: tuple[tuple[str, str], ...] = (("max_length", "--max-length"),)
    layout_io = False
    artifact_input = "token ids"
    token_inputs = True
    pictured = False

    def looks_like(self, path: Path, columns: Any) -> bool:
        from ..data.text import looks_like_text

        return looks_like_text(path, columns)

    def scan(
        self,
        path: Path,
        labels: list[str] | None = None,
        columns: Any = None,
        max_bad_fraction: float = 0.1,
        progress: bool = True,
    ) -> Any:
        from ..data.text import Columns, scan_texts

        return scan_texts(path, labels, columns if columns is not None else Columns())

    def unlabelled(self, path: Path, labels: list[str], columns: Any) -> Any:
        from ..data.unlabelled import scan_target_texts

        return scan_target_texts(path, columns.text, columns.label, labels)

    def sample_files(self, source: Any) -> list[str]:
        return []  # texts live inside the data (a table or JSONL), not in files a CSV names anywhere

    def skipped_facts(self, source: Any) -> dict[str, Any]:
        return {}

    def config_from_data(self, cfg: Any, source: Any, say: Say) -> dict[str, Any]:
        return {}

    def preprocess(self, pretrained: dict[str, Any], cfg: Any) -> dict[str, Any]:
        limit = pretrained["max_positions"]
        if cfg.max_length and cfg.max_length > limit:
            raise EdgetlError(f"--max-length {cfg.max_length} is more than {cfg.model} takes ({limit} positions)")
        return {**pretrained, "max_length": cfg.max_length or pretrained["max_length"]}

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
        from ..data.text import TextDataset

        return {
            name: TextDataset(samples, processor, preprocess["max_length"], task, labels, seed=seed)
            for name, samples in splits.items()
        }

    def input_spec(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        # token ids and mask, batch x tokens (dynamic up to max_length)
        return {"name": preprocess["input_names"], "shape": [1, preprocess["max_length"]], "dtype": "int64", "layout": "NT"}

    def summary(self, preprocess: dict[str, Any]) -> str:
        p = preprocess
        return f"{fact(p, 'tokenizer')} max_length {fact(p, 'max_length')} ({fact(p, 'files')}/), {fact(p, 'pooling')} pooling"

    def check_export(self, bundle: Any) -> None:
        folder = bundle.preprocess.get("files", "encoder")
        if not (bundle.path / folder / TOKENIZER_FILE).is_file():
            raise EdgetlError(f"{bundle.path}/{folder} has no {TOKENIZER_FILE} (a fast tokenizer); text export needs one")

    def calibration_items(self, source: str) -> list[str]:
        path = Path(source)
        if not path.is_file():
            raise EdgetlError(f"--calibration {source} is not a file; pass a UTF-8 text file, one text per line")
        try:
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise EdgetlError(f"--calibration {source} is not UTF-8; pass a UTF-8 text file, one text per line") from None
        if not texts:
            raise EdgetlError(f"--calibration {source} holds no texts")
        return texts

    def samples(self, bundle: Any, items: list[str], length: int | None) -> Batch:
        return bundle.encode_texts(items, length)

    def eval_inputs(self, bundle: Any, items: list[str], origin: str) -> Batch:
        return bundle.encode_texts(items, int(bundle.preprocess["max_length"]))

    def protocol_facts(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        return {}  # the benchmark records the texts' token lengths itself

    def unpad(self, batch: Batch) -> Batch:
        return trim_padding(cast(dict[str, np.ndarray], batch))

    def encode(self, model: Any, raw: list[str]) -> Batch:
        if not raw or any(not t.strip() for t in raw):
            raise EdgetlError("pass one or more non-empty texts to predict on")
        return model.encode_texts(raw)

    def model_inputs(self, batch: Batch, names: list[str]) -> list[torch.Tensor]:
        import torch

        arrays = cast(dict[str, np.ndarray], batch)  # named token arrays, taken in the bundle's input order
        return [torch.from_numpy(np.ascontiguousarray(arrays[n], dtype=np.int64)) for n in names]


TEXT = TextModality()
