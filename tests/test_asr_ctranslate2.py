"""Whisper as a CTranslate2 model: ``edgetl.export.asr_ctranslate2.convert`` and ``edgetl_runtime.ctranslate2_rt``
decode the same greedy tokens as PyTorch ``generate`` (a random 2+2-layer Whisper in fp32, with its suppress
lists; the real built-in tiny.en in int8, compared as text)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgetl.errors import EdgetlError
from edgetl.export.asr_ctranslate2 import convert
from edgetl.family.speech_asr import load_recognizer
from edgetl_runtime.audio import log_mel
from edgetl_runtime.ctranslate2_rt import Ct2Whisper

SR = 16000
NEW = 20  # a random model may talk until the budget runs out
CT2_FILES = {"model.bin", "config.json", "vocabulary.json", "tokenizer.json", "preprocessor_config.json"}


def _clips() -> list[np.ndarray]:
    """A 1 s tone, 2 s of noise and a 3 s chirp, deterministic."""
    rng = np.random.default_rng(0)
    t1, t3 = np.arange(SR) / SR, np.arange(3 * SR) / SR
    return [
        (0.3 * np.sin(2 * np.pi * 440 * t1)).astype(np.float32),
        (0.1 * rng.standard_normal(2 * SR)).astype(np.float32),
        (0.2 * np.sin(2 * np.pi * (200 + 300 * t3) * t3)).astype(np.float32),
    ]


def _features(clips: list[np.ndarray], n_mels: int = 80) -> np.ndarray:
    return np.stack([log_mel(c, 30.0, n_mels) for c in clips])


def _generated(row: list[int], prompt: list[int], eot: int) -> list[int]:
    """A row of ``Recognizer.token_ids`` without the prompt (if it is there), the end-of-text and padding."""
    if row[: len(prompt)] == prompt:
        row = row[len(prompt) :]
    return row[: row.index(eot)] if eot in row else row


def _torch_tokens(folder: Path, clips: list[np.ndarray], prompt: list[int], eot: int) -> list[list[int]]:
    return [_generated(r, prompt, eot) for r in load_recognizer(str(folder)).token_ids(clips, max_new_tokens=NEW)]


def _convert(src: Path, out: Path, precision: str) -> dict:
    out.mkdir(parents=True)
    return convert(src, out, precision)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return _clips()


@pytest.fixture(scope="module")
def fp32_folder(tiny_asr, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ct2") / "fp32"
    info = _convert(tiny_asr, out, "fp32")
    assert info["converter"]["name"] == "ctranslate2" and info["converter"]["quantization"] == "float32"
    assert info["model_file"] == "model.bin" and CT2_FILES <= {p.name for p in out.iterdir()}
    return out


def test_fp32_decodes_the_tokens_of_pytorch_generate(tiny_asr, fp32_folder, clips):
    gen = json.loads((tiny_asr / "generation_config.json").read_text())
    cfg = json.loads((fp32_folder / "config.json").read_text())
    assert cfg["suppress_ids"] == gen["suppress_tokens"] and cfg["suppress_ids_begin"] == gen["begin_suppress_tokens"]
    assert json.loads((fp32_folder / "preprocessor_config.json").read_text())["feature_size"] == 80
    m = Ct2Whisper(fp32_folder, threads=2)
    assert m.prompt == [gen["decoder_start_token_id"], gen["no_timestamps_token_id"]] and m.compute_type == "float32"
    ct2 = m.token_ids(_features(clips), max_new_tokens=NEW)
    assert ct2 == _torch_tokens(tiny_asr, clips, m.prompt, m.eot_id)
    assert all(0 < len(r) <= NEW and m.eot_id not in r for r in ct2)
    encoded = m.encode(_features(clips[:1]))
    assert m.generate(encoded, m.prompt, NEW) == ct2[:1]  # encoder output or features: the same decoding
    t = m.timings(_features(clips[:1]), tokens=4, repeats=1)
    assert set(t) == {"encoder_s", "first_token_s", "per_token_s"} and all(v >= 0 for v in t.values())


def test_suppress_lists_apply_as_in_transformers(tiny_asr, fp32_folder, clips, tmp_path):
    """Ban the first generated token of every clip at the first position only, and its second token always: both
    decoders change their output, and still agree."""
    m = Ct2Whisper(fp32_folder, threads=2)
    before = m.token_ids(_features(clips), max_new_tokens=NEW)
    src = tmp_path / "hf"
    shutil.copytree(tiny_asr, src)
    gen = json.loads((src / "generation_config.json").read_text())
    gen["begin_suppress_tokens"] += sorted({r[0] for r in before})
    gen["suppress_tokens"] += sorted({r[1] for r in before if len(r) > 1})
    (src / "generation_config.json").write_text(json.dumps(gen))
    _convert(src, tmp_path / "ct2", "fp32")
    after = Ct2Whisper(tmp_path / "ct2", threads=2).token_ids(_features(clips), max_new_tokens=NEW)
    assert after != before and all(a[0] != b[0] for a, b in zip(after, before))
    assert after == _torch_tokens(src, clips, m.prompt, m.eot_id)


@pytest.mark.parametrize("precision, quantization", [("fp16", "float16"), ("int8", "int8")])
def test_fp16_and_int8_convert_and_decode(tiny_asr, clips, tmp_path, precision, quantization):
    out = tmp_path / precision
    info = _convert(tiny_asr, out, precision)
    assert info["converter"]["quantization"] == quantization and CT2_FILES <= {p.name for p in out.iterdir()}
    m = Ct2Whisper(out, threads=2)
    assert m.compute_type == ("float32" if precision == "fp16" else "int8_float32")  # no float16 compute on CPUs
    ids = m.token_ids(_features(clips), max_new_tokens=NEW)
    assert len(ids) == 3 and all(0 < len(r) <= NEW and all(isinstance(t, int) and 0 <= t < 51864 for t in r) for r in ids)


def test_conversion_problems_are_one_line_errors(tiny_asr, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgetlError, match="precision 'int4'"):
        convert(tiny_asr, tmp_path / "empty", "int4")
    with pytest.raises(EdgetlError, match="existing, empty folder"):
        convert(tiny_asr, tmp_path / "full", "fp32")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_bytes((tiny_asr / "tokenizer.json").read_bytes())
    with pytest.raises(EdgetlError, match="no tokenizer.json"):
        convert(tmp_path / "empty", tmp_path / "empty", "fp32")
    (broken / "config.json").write_text('{"num_mel_bins": 80, "model_type": "nonsense"}')
    with pytest.raises(EdgetlError, match="CTranslate2 cannot convert") as exc:
        convert(broken, tmp_path / "empty", "fp32")
    assert "\n" not in str(exc.value) and not any((tmp_path / "empty").iterdir())
    with pytest.raises(EdgetlError, match="CTranslate2 cannot load"):
        Ct2Whisper(tmp_path / "empty")


@pytest.mark.slow  # real weights: 3-10 s on 2 cores (load, save, convert, two decoders)
def test_builtin_tiny_en_in_int8_hears_what_pytorch_hears(sentences, tmp_path):
    from edgetl.data.transcripts import normalise, scan_transcripts

    rec = load_recognizer("whisper-tiny.en")
    hf = tmp_path / "hf"
    rec.model.save_pretrained(hf, safe_serialization=True)  # as edgetl/train/transcribe.py saves a bundle
    rec.generation.save_pretrained(hf)
    shutil.copyfile(rec.folder / "tokenizer.json", hf / "tokenizer.json")
    _convert(hf, tmp_path / "int8", "int8")
    src = scan_transcripts(sentences)
    items = [t for t in src.splits["test"] if t.text == "close the valve"]
    clips = [src.waveforms[t.path] for t in items]
    m = Ct2Whisper(tmp_path / "int8", threads=2)
    ct2 = [rec.tokenizer.decode(r, skip_special_tokens=True).strip() for r in m.token_ids(_features(clips), max_new_tokens=32)]
    torch_text = rec.transcribe(clips, max_new_tokens=32)
    # int8 matmuls may change case or punctuation ("Open" / "open"), and on clips the model is unsure of
    # (made-up words, odd voices) a word: this plain sentence in the test voice must read the same
    assert len(items) == 1 and [normalise(t) for t in ct2] == [normalise(t) for t in torch_text] and ct2[0]
