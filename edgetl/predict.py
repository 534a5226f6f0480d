"""Predict on raw files (images, audio clips) or texts with a bundle or artifact: the manifest's preprocessing
(tokenizer, log-mel features), then top-k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bundle import MANIFEST, load_bundle
from .errors import EdgetlError
from .modality import get_modality
from .task import get_task


def open_model(path: str | Path, threads: int | None = None) -> Any:
    """A bundle folder (PyTorch) or an exported artifact folder (its own runtime)."""
    from edgetl_runtime import ARTIFACT_MANIFEST, LoadedArtifact

    p = Path(path)
    if (p / ARTIFACT_MANIFEST).is_file() and not (p / MANIFEST).is_file():
        return LoadedArtifact(p, threads)
    return load_bundle(p)


def predict_raw(bundle: Any, items: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Raw inputs of the model's own modality (image or audio files, texts) -> one result each: top-k
    (label, probability) for classification, the value for regression."""
    modality = get_modality(getattr(bundle, "modality", "image"))
    outputs = bundle.predict(modality.encode(bundle, items))
    return get_task(bundle.task).decode(bundle.labels, modality.result_key, items, outputs, top_k, bundle.path)


def _expect(bundle: Any, name: str, mismatch: str) -> None:
    """A one-line error when ``bundle`` is not of modality ``name``: ``mismatch`` formatted with its own modality."""
    have = get_modality(getattr(bundle, "modality", "image"))
    if have.name != name:  # the entry point of one modality was given another's model
        raise EdgetlError(mismatch.format(path=bundle.path, have=have))


def predict_files(bundle: Any, files: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """One result per file: top-k (label, probability) for classification, the value for regression.

    ``bundle`` is a ``Bundle`` or a ``LoadedArtifact`` (anything with predict/preprocess/labels/task)."""
    _expect(bundle, "image", "{path} is {have.a_name} model; use {have.predict_api}")
    return predict_raw(bundle, files, top_k)


def predict_texts(bundle: Any, texts: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Like ``predict_files`` for a text model: raw texts in, one result per text.

    ``bundle`` is a text ``Bundle`` (its transformers tokenizer) or a ``LoadedArtifact`` (the
    ``tokenizers`` file that travels with it); both have ``encode_texts`` and ``predict``."""
    _expect(bundle, "text", "{path} is not a text model; pass {have.raw_inputs} to predict on")
    return predict_raw(bundle, texts, top_k)


def predict_audio(bundle: Any, files: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Like ``predict_files`` for a speech model: audio files (WAV/FLAC/OGG, any rate and channel count) in,
    one result per file. Features come from ``runtime/audio.py`` with the manifest's settings, for a
    ``Bundle`` and a ``LoadedArtifact`` alike (the artifact path needs numpy and its runtime only)."""
    _expect(bundle, "audio", "{path} is not a speech model; pass {have.raw_inputs} to predict on")
    return predict_raw(bundle, files, top_k)


def transcribe_files(files: list[str], model: str = "whisper-tiny.en", batch_size: int = 8) -> list[dict[str, Any]]:
    """The text of each audio file (any length, rate and channel count) by a Whisper model (PyTorch greedy
    decoding without timestamps), a transcription bundle, or an exported transcription artifact (the runtime's
    numpy loop); files longer than 30 s are cut into windows at quiet moments and joined."""
    from edgetl_runtime.audio import SAMPLE_RATE, load_audio

    from .family.speech_asr import load_recognizer

    if not files:
        raise EdgetlError("no audio files given; pass WAV, FLAC or OGG files")
    clips = [load_audio(f, SAMPLE_RATE) for f in files]  # bad files fail here, before the model loads
    folder = Path(model)
    if (folder / "manifest.json").is_file():  # an exported artifact: the device's torch-free loop
        from edgetl_runtime.transcriber import load_transcriber

        texts = load_transcriber(folder).transcribe(clips)
    else:
        if (folder / "edgetl.json").is_file() and (folder / "whisper").is_dir():  # a transcription bundle
            model = str(folder / "whisper")
        texts = load_recognizer(model).transcribe_long(clips, batch_size)
    return [{"file": f, "text": t, "seconds": round(len(c) / SAMPLE_RATE, 3)} for f, c, t in zip(files, clips, texts)]
