"""What every modality answers: shared code asks these and never switches on the modality's name.

A Protocol, not a base class (as torchtune's recipe interface): each modality is one flat
module; to add one, copy the nearest and change what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgetl_runtime.base import Batch

from ..errors import EdgetlError

if TYPE_CHECKING:  # the facts need no torch; building datasets and model inputs does
    import torch

Say = Callable[[str], None]  # prints one line to the user


class Modality(Protocol):
    """Images, texts or audio clips: the data, its preprocessing and inputs, and how messages name them."""

    name: str  # the manifest's ``modality``: "image"
    noun: str  # what the data holds, in messages: "images"
    data_word: str  # the data, as option errors name it: "images", "text", "audio"
    a_name: str  # the name with its article: "an image"
    kind: str  # what a model of this modality is called: "vision"
    precedence: int  # detection order: the lowest whose ``looks_like`` holds wins
    sample_key: str  # the field naming a sample in splits.json ("path": a file, relative to the bundle)
    result_key: str  # the field naming an input in predict results
    raw_inputs: str  # what predict takes, in messages: "image files"
    predict_api: str  # the edgetl function that predicts on raw inputs of this modality
    default_model: str
    default_augment: str
    augments: tuple[str, ...]  # the --augment presets that apply
    strong_augment: str  # self-training's strong view (FixMatch): heavier than any default, labels kept
    own_options: tuple[tuple[str, str], ...]  # (config field, flag) only this modality reads; the first sizes its input
    layout_io: bool  # whether export's --layout and --io apply
    artifact_input: str  # what its artifacts take, in messages
    token_inputs: bool  # inputs are token id arrays, each text at its own length (padded in a batch)
    pictured: bool  # its samples can be drawn as pictures (the gallery of worst mistakes in figures/)

    def looks_like(self, path: Path, columns: Any) -> bool:
        """Whether ``path`` holds data of this modality (``columns``: the text data's column names)."""

    def scan(
        self,
        path: Path,
        labels: list[str] | None = None,
        columns: Any = None,
        max_bad_fraction: float = 0.1,
        progress: bool = True,
    ) -> Any:
        """The samples of every split (an ``ImageSource``, ``TextSource`` or ``AudioSource``)."""

    def unlabelled(self, path: Path, labels: list[str], columns: Any) -> Any:
        """``--adapt-to``'s target data: unlabelled samples, and a labelled test split if it has one (``TargetData``)."""

    def sample_files(self, source: Any) -> list[str]:
        """The files the samples are (none for texts read from a table)."""

    def skipped_facts(self, source: Any) -> dict[str, Any]:
        """What the manifest's ``data`` records about unreadable samples."""

    def config_from_data(self, cfg: Any, source: Any, say: Say) -> dict[str, Any]:
        """Config fields the data settles before the model is built; they are also ``build_model`` options."""

    def preprocess(self, pretrained: dict[str, Any], cfg: Any) -> dict[str, Any]:
        """The bundle's preprocessing: the backbone's contract plus the user's overrides (``cfg``: the fine-tuning config)."""

    def config_from_model(self, cfg: Any, preprocess: dict[str, Any], source: Any, say: Say) -> dict[str, Any]:
        """Config fields the model's defaults settle (recorded so a resumed run checks them)."""

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
        """One torch Dataset per split; only the training split is augmented."""

    def input_spec(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        """The bundle manifest's input: name, batch-1 shape, dtype and layout."""

    def summary(self, preprocess: dict[str, Any]) -> str:
        """The preprocessing line ``edgetl info`` prints."""

    def check_export(self, bundle: Any) -> None:
        """A one-line error when the bundle lacks what its artifacts need."""

    def calibration_items(self, source: str) -> list[str]:
        """The samples of a user's ``--calibration`` (a folder of files, or a text file)."""

    def samples(self, bundle: Any, items: list[str], length: int | None) -> Batch:
        """Canonical inputs of the bundle's own samples (calibration, held-out parity); texts padded to ``length``."""

    def eval_inputs(self, bundle: Any, items: list[str], origin: str) -> Batch:
        """Canonical inputs a benchmark measures accuracy on (texts padded to the bundle's max_length)."""

    def protocol_facts(self, preprocess: dict[str, Any]) -> dict[str, Any]:
        """What a benchmark report's protocol records about the inputs."""

    def unpad(self, batch: Batch) -> Batch:
        """One sample at its own length (texts: padding dropped), as the guard feeds artifacts."""

    def encode(self, model: Any, raw: list[str]) -> Batch:
        """Raw inputs to predict on (files or texts) -> the model's canonical batch."""

    def model_inputs(self, batch: Batch, names: list[str]) -> list[torch.Tensor]:
        """A canonical batch -> the tensors a ``TransferModel`` takes, in order."""


def fact(preprocess: dict[str, Any], key: str) -> object:
    """A preprocessing value as ``edgetl info`` shows it ("-" when missing, floats without trailing zeros)."""
    value = preprocess.get(key, "-")
    return f"{value:g}" if isinstance(value, float) else value


def files_under(directory: str, kind: str, suffixes: set[str]) -> list[str]:
    """The files of ``kind`` anywhere under a user's ``--calibration`` folder, sorted; one line when there are none."""
    root = Path(directory)
    if not root.is_dir():
        raise EdgetlError(f"--calibration {directory} is not a folder; pass a folder of {kind}")
    paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in suffixes)
    if not paths:
        raise EdgetlError(f"--calibration {directory} holds no {kind} ({', '.join(sorted(suffixes))})")
    return paths
