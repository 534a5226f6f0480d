"""A Hugging Face Whisper folder (a transcription bundle's ``whisper/``) as a CTranslate2 model folder.

``convert`` runs ``ctranslate2.converters.TransformersConverter`` on the local folder (offline, no remote
code) and writes what ``edgetl_runtime.ctranslate2_rt.Ct2Whisper`` and ``faster_whisper.WhisperModel``
load: ``model.bin``, ``config.json`` (the decoding settings: ``suppress_ids`` = the generation config's
``suppress_tokens``, ``suppress_ids_begin`` = its ``begin_suppress_tokens``), ``vocabulary.json``, plus
``tokenizer.json`` (faster-whisper would otherwise fetch one from the Hub) and ``preprocessor_config.json``
(``feature_size`` = the model's mel bins, which faster-whisper's feature extractor reads).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import EdgetlError
from ..family.hf import quiet_imports, short_reason
from ..offline import enforce_offline

MODEL_FILE = "model.bin"
# precision -> (CTranslate2 quantization, load the HF weights as float16)
# int8 on CPU: linear weights (and the token embedding) stored as int8 with one float scale per output row;
# at run time the matmuls quantise their inputs to int8 on the fly and accumulate in int32 (CTranslate2's
# "int8_float32"), while convolutions, layer norms, softmax and the rest stay float32.
# fp16 on CPU: the weights are stored as float16, but CPUs have no float16 compute in CTranslate2, so a
# "default" load computes in float32 (half the file, the same numbers as fp32 up to the weights' rounding).
PRECISIONS = {"fp32": ("float32", False), "fp16": ("float16", True), "int8": ("int8", False)}


def _num_mel_bins(whisper_dir: Path) -> int:
    try:
        config = json.loads((whisper_dir / "config.json").read_text(encoding="utf-8"))
        return int(config["num_mel_bins"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgetlError(f"cannot read num_mel_bins from {whisper_dir / 'config.json'}: {short_reason(exc)}") from None


def convert(whisper_dir: Path, out: Path, precision: str) -> dict[str, Any]:
    """Convert the Whisper folder ``whisper_dir`` into the existing, empty folder ``out`` at ``precision``
    ("fp32", "fp16" or "int8"); returns the converter's name, version and quantization and the model file."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    if precision not in PRECISIONS:
        raise EdgetlError(f"CTranslate2 precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    whisper_dir, out = Path(whisper_dir), Path(out)
    tokenizer = whisper_dir / "tokenizer.json"
    if not tokenizer.is_file():
        raise EdgetlError(f"{whisper_dir} has no tokenizer.json; the CTranslate2 model needs the Whisper tokenizer")
    if not out.is_dir() or any(out.iterdir()):
        raise EdgetlError(f"{out} must be an existing, empty folder for the CTranslate2 model")
    n_mels = _num_mel_bins(whisper_dir)
    quantization, as_float16 = PRECISIONS[precision]
    enforce_offline()
    staging = out / ".ct2"  # the converter replaces its output folder: give it one of its own inside ``out``
    try:
        with quiet_imports():
            converter = TransformersConverter(str(whisper_dir), load_as_float16=as_float16, trust_remote_code=False)
            converter.convert(str(staging), quantization=quantization)
        for f in staging.iterdir():
            f.replace(out / f.name)
        staging.rmdir()
        shutil.copyfile(tokenizer, out / "tokenizer.json")
        (out / "preprocessor_config.json").write_text(
            json.dumps({"feature_size": n_mels, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400, "chunk_length": 30})
            + "\n",
            encoding="utf-8",
        )
    except EdgetlError:
        raise
    except Exception as exc:  # the converter raises ValueError, OSError, RuntimeError, NotImplementedError, ...
        shutil.rmtree(staging, ignore_errors=True)
        raise EdgetlError(f"CTranslate2 cannot convert {whisper_dir}: {type(exc).__name__}: {short_reason(exc)}") from None
    return {
        "converter": {"name": "ctranslate2", "version": ctranslate2.__version__, "quantization": quantization},
        "model_file": MODEL_FILE,
    }
