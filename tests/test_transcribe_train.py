"""Fine-tuning Whisper to transcribe, on a tiny random Whisper (the built-in tokenizer, a 32-wide model) and
espeak-ng sentences: the bundle, resume, the strategies, and transcribing with the result."""

import json

import pytest
import torch
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.errors import EdgetlError
from edgetl.train.transcribe import TranscribeRecipe

runner = CliRunner()
OPTS = dict(batch_size=2, patience=0, warmup_epochs=0.0, lr_head=1e-2, lr_backbone=1e-2, augment="none")


def test_a_transcription_run_learns_and_writes_a_bundle(tiny_asr, sentences, tmp_path):
    b = edgetl.finetune(str(sentences), str(tmp_path / "run"), model=str(tiny_asr), strategy="full", epochs=3, **OPTS)
    m = b.manifest
    assert (m["task"], m["modality"], m["family"]) == ("transcription", "audio", "speech")
    assert m["data"]["splits"] == {"train": 6, "val": 3, "test": 3} and set(m["metrics"]["test"]) == {"wer", "cer"}
    hist = m["history"]
    assert [h["trainable"] for h in hist] == [["encoder.0", "encoder.1", "encoder.2", "decoder"]] * 3
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.5  # teacher forcing learns the sentences' tokens
    assert all(h["val"]["wer"] >= 0 for h in hist) and m["metrics"]["best_epoch"] in (1, 2, 3)
    folder = b.path / "whisper"
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert not (b.path / "checkpoint.pt").exists() and not (b.path / "best.safetensors").exists()
    clip = sorted((sentences / "test").glob("*.wav"))[0]
    r = runner.invoke(app, ["transcribe", str(clip), "--model", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    assert isinstance(json.loads(r.output)[0]["text"], str)
    r = runner.invoke(app, ["info", str(b.path)])
    assert r.exit_code == 0 and "transcription" in r.output, r.output
    r = runner.invoke(app, ["export", str(b.path), "--target", "ctranslate2", "--quantize", "int8"])
    assert r.exit_code == 2 and "come in fp32, fp16, int8-dynamic, not 'int8'" in r.output, r.output


def test_decoder_strategy_freezes_the_encoder(tiny_asr, sentences, tmp_path):
    cfg = edgetl.FinetuneConfig(
        data=str(sentences), out=str(tmp_path / "r"), model=str(tiny_asr), strategy="decoder", epochs=1, **OPTS
    )
    recipe = TranscribeRecipe(cfg)
    recipe.setup()
    before = {k: v.clone() for k, v in recipe.model.model.encoder.state_dict().items()}
    recipe.train()
    after = recipe.model.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert recipe.history[0]["trainable"] == ["decoder"] and recipe.history[0]["trainable_groups"] == 0
    with pytest.raises(EdgetlError, match="--strategy linear does not apply to transcription"):
        TranscribeRecipe(edgetl.FinetuneConfig(data="x", out="y", strategy="linear"))


def test_an_interrupted_transcription_run_resumes_to_the_same_result(tiny_asr, sentences, tmp_path, monkeypatch):
    opts = dict(model=str(tiny_asr), strategy="two-phase", epochs=2, head_epochs=1, **OPTS)
    whole = edgetl.finetune(str(sentences), str(tmp_path / "whole"), **opts).manifest["history"]
    real_end = TranscribeRecipe._end_epoch

    def end_then_die(self, entry):
        real_end(self, entry)
        if entry["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(TranscribeRecipe, "_end_epoch", end_then_die)
    with pytest.raises(KeyboardInterrupt):
        edgetl.finetune(str(sentences), str(tmp_path / "cut"), **opts)
    monkeypatch.setattr(TranscribeRecipe, "_end_epoch", real_end)
    assert (tmp_path / "cut" / "checkpoint.pt").exists() and not (tmp_path / "cut" / "edgetl.json").exists()
    with pytest.raises(EdgetlError, match="--resume"):
        edgetl.finetune(str(sentences), str(tmp_path / "cut"), **opts)
    with pytest.raises(EdgetlError, match="other options .*seed"):  # a resumed run keeps its options
        edgetl.finetune(str(sentences), str(tmp_path / "cut"), resume=True, **{**opts, "seed": 1})
    resumed = edgetl.finetune(str(sentences), str(tmp_path / "cut"), resume=True, **opts).manifest["history"]
    assert [h["train_loss"] for h in resumed] == pytest.approx([h["train_loss"] for h in whole], rel=1e-5)
    assert [h["val"] for h in resumed] == [h["val"] for h in whole]
    done = (tmp_path / "cut" / "edgetl.json").stat().st_mtime_ns
    again = edgetl.finetune(str(sentences), str(tmp_path / "cut"), resume=True, **opts)  # finished: returned as it is
    assert again.manifest["history"] == resumed
    assert (tmp_path / "cut" / "edgetl.json").stat().st_mtime_ns == done
