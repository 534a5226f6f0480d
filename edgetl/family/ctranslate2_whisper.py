"""Read a CTranslate2 Whisper model (``model.bin``) as a transformers Whisper state dict and config.

CTranslate2 stores a model as one binary file (``ModelSpec._serialize`` in
``ctranslate2/specs/model_spec.py``), little-endian:

- ``uint32`` binary version (6 today), a string spec name (``WhisperSpec``), ``uint32`` spec revision;
- ``uint32`` variable count, then per variable: string name, ``uint8`` rank, rank x ``uint32`` dims,
  ``uint8`` dtype id (float32, int8, int16, int32, float16, bfloat16 in that order), ``uint32`` byte
  count, the raw bytes;
- ``uint32`` alias count, then (alias, target) string pairs (the tied output projection).

A string is ``uint16`` length including a trailing NUL, then the bytes. Quantised weights come with
a ``<name>_scale`` variable (int8: one float per output row, int16: one float), value = q / scale.

Names follow ``WhisperLoader`` in ``ctranslate2/converters/transformers.py``: the encoder's
``self_attention/linear_0`` is q, k and v fused along the output axis (k has no bias in Whisper,
so its third of the fused bias is zero), the decoder's cross-attention ``attention/linear_1`` is k
and v fused, ``layer_norm/{gamma,beta}`` are LayerNorm weight and bias, ``ffn/linear_{0,1}`` are
fc1/fc2, ``position_encodings/encodings`` are the positional embeddings and
``decoder/projection/weight`` aliases the token embeddings.
Nothing here imports ctranslate2.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..errors import EdgetlError

SPEC_NAME = "WhisperSpec"
SUPPORTED_VERSIONS = range(4, 7)  # the dtype-id layout; WhisperSpec was only ever written as version 6
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")
_ACTIVATIONS = {0: "relu", 1: "gelu_new", 2: "silu", 3: "gelu", 4: "quick_gelu", 5: "tanh"}  # common_spec.Activation


class _NotCT2(Exception):
    pass


def _reader(fh: IO[bytes]) -> tuple[Callable[[str], Any], Callable[[], str]]:
    def number(fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        raw = fh.read(size)
        if len(raw) != size:
            raise _NotCT2("the file ends early")
        return struct.unpack("<" + fmt, raw)[0]

    def string() -> str:
        n = number("H")
        raw = fh.read(n)
        if n == 0 or len(raw) != n or raw[-1] != 0:
            raise _NotCT2("a name is not a NUL-terminated string")
        return raw[:-1].decode("utf-8")

    return number, string


def _header(fh: IO[bytes]) -> tuple[int, str]:
    number, string = _reader(fh)
    version = number("I")
    if version not in SUPPORTED_VERSIONS:
        raise _NotCT2(f"binary version {version}" if version < 1000 else "no CTranslate2 header")
    name = string()
    number("I")  # spec revision
    return version, name


def is_ct2_whisper(path: str | Path) -> bool:
    """Whether ``path`` is a file that starts like a CTranslate2 Whisper model.bin."""
    try:
        with open(path, "rb") as fh:
            return _header(fh)[1] == SPEC_NAME
    except (OSError, _NotCT2, UnicodeDecodeError):
        return False


def _decode(raw: bytes, dtype_id: int, shape: list[int]) -> torch.Tensor:
    if dtype_id >= len(_DTYPES):
        raise _NotCT2(f"unknown dtype id {dtype_id}")
    kind = _DTYPES[dtype_id]
    if kind == "bfloat16":  # the top half of a float32
        arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(raw, kind)
    if arr.size != int(np.prod(shape)):
        raise _NotCT2("a variable's size does not match its shape")
    return torch.from_numpy(arr.reshape(shape).copy())


def _index(fh: IO[bytes]) -> tuple[dict[str, tuple[int, list[int], int, int]], dict[str, str]]:
    """Variables by name as (dtype id, shape, offset, byte count), and the aliases; no data is read."""
    number, string = _reader(fh)
    _, name = _header(fh)
    if name != SPEC_NAME:
        raise _NotCT2(f"a CTranslate2 {name} model, not Whisper")
    index = {}
    for _ in range(number("I")):
        var = string()
        shape = [number("I") for _ in range(number("B"))]
        dtype_id, nbytes = number("B"), number("I")
        index[var] = (dtype_id, shape, fh.tell(), nbytes)
        fh.seek(nbytes, 1)
    aliases = {}
    for _ in range(number("I")):
        alias = string()
        aliases[alias] = string()
    return index, aliases


def _bad_file(path: Path, exc: Exception) -> EdgetlError:
    return EdgetlError(
        f"{path} is not a CTranslate2 Whisper model.bin ({exc}); pass a folder with model.bin and config.json "
        f"written by ct2-transformers-converter"
    )


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """The shape of every variable (and alias) in a CTranslate2 Whisper ``model.bin``, without reading the data."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            index, aliases = _index(fh)
    except OSError as exc:
        raise EdgetlError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (_NotCT2, UnicodeDecodeError) as exc:
        raise _bad_file(path, exc) from None
    shapes = {var: tuple(shape) for var, (_, shape, _, _) in index.items()}
    shapes.update({alias: shapes[target] for alias, target in aliases.items() if target in shapes})
    return shapes


def read_variables(path: str | Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """The variables of a CTranslate2 Whisper ``model.bin`` by name, floats as float32 (dequantised), aliases resolved.

    ``keep(name)``: read only those variables (the others are not read); an alias kept reads its target."""
    path = Path(path)
    keep = keep or (lambda name: True)
    try:
        with open(path, "rb") as fh:
            index, aliases = _index(fh)
            names = {var for var in index if keep(var.removesuffix("_scale"))}
            names |= {aliases[a] for a in aliases if keep(a) and aliases[a] in index}
            names |= {f"{var}_scale" for var in names if f"{var}_scale" in index}
            values = {}
            for var in sorted(names, key=lambda v: index[v][2]):
                dtype_id, shape, offset, nbytes = index[var]
                fh.seek(offset)
                data = fh.read(nbytes)
                if len(data) != nbytes:
                    raise _NotCT2("the file ends early")
                values[var] = _decode(data, dtype_id, shape)
    except OSError as exc:
        raise EdgetlError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (_NotCT2, UnicodeDecodeError, ValueError) as exc:
        raise _bad_file(path, exc) from None
    out = {}
    for var, value in values.items():
        if var.endswith("_scale") and var.removesuffix("_scale") in values:
            continue
        scale = values.get(f"{var}_scale")
        if scale is not None:  # int8: one scale per output row; int16: one scale for the tensor
            value = value.float() / (scale.float().reshape(-1, *[1] * (value.dim() - 1)) if scale.dim() else scale.float())
        elif value.is_floating_point():
            value = value.float()
        out[var] = value
    for alias, target in aliases.items():
        if target in out and keep(alias):
            out[alias] = out[target]
    return out


def _count_layers(variables: dict[str, Any], stack: str) -> int:
    found = (re.fullmatch(rf"{stack}/layer_(\d+)/.*", name) for name in variables)
    return len({m.group(1) for m in found if m})


def _scalar(variables: dict[str, torch.Tensor], name: str, default: int | None = None) -> int:
    """An integer scalar variable (``default`` when absent; KeyError when absent without a default or not a scalar)."""
    value = variables.get(name)
    if value is None and default is not None:
        return default
    if value is None or value.numel() != 1:
        raise KeyError(name)
    return int(value.reshape(-1)[0])


def _special_ids(folder: Path | None, vocab_size: int) -> dict[str, int]:
    """Token ids of <|endoftext|> and <|startoftranscript|> from vocabulary.txt, else Whisper's layout."""
    multilingual = vocab_size >= 51865
    ids = {
        "<|endoftext|>": 50257 if multilingual else 50256,
        "<|startoftranscript|>": 50258 if multilingual else 50257,
        "<|notimestamps|>": 50363 if multilingual else 50362,
    }
    vocab = folder / "vocabulary.txt" if folder else None
    if vocab is not None and vocab.is_file():
        for i, token in enumerate(vocab.read_text(encoding="utf-8").splitlines()):
            if token in ids:
                ids[token] = i
    return ids


def whisper_config(path: str | Path) -> Any:
    """A transformers ``WhisperConfig`` for a CTranslate2 Whisper folder or model.bin.

    Sizes come from the variables' shapes, heads and activation from its scalars, token ids from
    ``vocabulary.txt`` next to it; no weights are read."""
    from transformers import WhisperConfig

    model_bin, folder = _model_file(path)
    shapes = read_shapes(model_bin)
    scalars = read_variables(model_bin, keep=lambda name: shapes.get(name) == ())
    try:
        d_model, n_mels, _ = shapes["encoder/conv1/weight"]
        vocab_size = shapes["decoder/embeddings/weight"][0]
        enc_heads = _scalar(scalars, "encoder/num_heads")
        activation = _scalar(scalars, "decoder/activation", 3)  # GELU
        kwargs = dict(
            vocab_size=vocab_size,
            num_mel_bins=n_mels,
            d_model=d_model,
            encoder_layers=_count_layers(shapes, "encoder"),
            decoder_layers=_count_layers(shapes, "decoder"),
            encoder_attention_heads=enc_heads,
            decoder_attention_heads=_scalar(scalars, "decoder/num_heads", enc_heads),
            encoder_ffn_dim=shapes["encoder/layer_0/ffn/linear_0/weight"][0],
            decoder_ffn_dim=shapes["decoder/layer_0/ffn/linear_0/weight"][0],
            max_source_positions=shapes["encoder/position_encodings/encodings"][0],
            max_target_positions=shapes["decoder/position_encodings/encodings"][0],
            scale_embedding=bool(_scalar(scalars, "decoder/scale_embeddings", 0)),
        )
    except KeyError as exc:
        raise EdgetlError(f"{model_bin} has no {exc.args[0]}; it is not a CTranslate2 Whisper model edgetl can read") from None
    except ValueError:  # a conv weight that is not (out, in, kernel)
        raise EdgetlError(
            f"{model_bin} has an encoder/conv1/weight of shape {shapes['encoder/conv1/weight']}; "
            f"it is not a CTranslate2 Whisper model edgetl can read"
        ) from None
    if activation not in _ACTIVATIONS:
        raise EdgetlError(f"{model_bin} uses activation {activation}, which edgetl does not know")
    ids = _special_ids(folder, vocab_size)
    return WhisperConfig(  # suppressed tokens belong to decoding: ``generation_config`` has them
        **kwargs,
        activation_function=_ACTIVATIONS[activation],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        tie_word_embeddings=True,
    )


def _ct2_config(folder: Path | None) -> dict[str, Any]:
    path = folder / "config.json" if folder else None
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgetlError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _attention(variables: dict[str, torch.Tensor], src: str, dst: str, fused: str) -> dict[str, torch.Tensor]:
    """Un-fuse ``fused`` ("qkv": self-attention linear_0; "q|kv": cross-attention linear_0 + linear_1) into *_proj."""
    out: dict[str, torch.Tensor] = {}
    if fused == "qkv":
        parts = [(f"{src}/linear_0", ["q", "k", "v"])]
    else:
        parts = [(f"{src}/linear_0", ["q"]), (f"{src}/linear_1", ["k", "v"])]
    for var, projs in parts:
        w_chunks = variables[f"{var}/weight"].chunk(len(projs), dim=0)
        bias = variables.get(f"{var}/bias")
        b_chunks = bias.chunk(len(projs), dim=0) if bias is not None else [None] * len(projs)
        for p, w, b in zip(projs, w_chunks, b_chunks):
            out[f"{dst}.{p}_proj.weight"] = w.contiguous()
            if p != "k" and b is not None:  # Whisper's k_proj has no bias (CTranslate2 stores zeros)
                out[f"{dst}.{p}_proj.bias"] = b.contiguous()
    out_var = f"{src}/linear_{1 if fused == 'qkv' else 2}"
    out[f"{dst}.out_proj.weight"] = variables[f"{out_var}/weight"]
    out[f"{dst}.out_proj.bias"] = variables[f"{out_var}/bias"]
    return out


def _norm(variables: dict[str, torch.Tensor], src: str, dst: str) -> dict[str, torch.Tensor]:
    return {f"{dst}.weight": variables[f"{src}/gamma"], f"{dst}.bias": variables[f"{src}/beta"]}


def _linear(variables: dict[str, torch.Tensor], src: str, dst: str) -> dict[str, torch.Tensor]:
    return {f"{dst}.weight": variables[f"{src}/weight"], f"{dst}.bias": variables[f"{src}/bias"]}


def _self_attention_and_ffn(v: dict[str, torch.Tensor], src: str, dst: str) -> dict[str, torch.Tensor]:
    """What every encoder and decoder layer has: self-attention (fused q/k/v), the feed-forward block, their norms."""
    return {
        **_attention(v, f"{src}/self_attention", f"{dst}.self_attn", "qkv"),
        **_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"),
        **_linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1"),
        **_linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2"),
        **_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm"),
    }


def encoder_state_dict(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys of a transformers ``WhisperEncoder`` (``conv1.weight``, ``layers.0.self_attn.q_proj.weight``, ...)."""
    v = variables
    try:
        sd = {
            **_linear(v, "encoder/conv1", "conv1"),
            **_linear(v, "encoder/conv2", "conv2"),
            "embed_positions.weight": v["encoder/position_encodings/encodings"],
            **_norm(v, "encoder/layer_norm", "layer_norm"),
        }
        for i in range(_count_layers(v, "encoder")):
            sd.update(_self_attention_and_ffn(v, f"encoder/layer_{i}", f"layers.{i}"))
    except KeyError as exc:
        raise EdgetlError(
            f"the CTranslate2 Whisper model has no variable {exc.args[0]}; it is not a Whisper encoder edgetl can read"
        ) from None
    return sd


def decoder_state_dict(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys of a transformers ``WhisperDecoder``."""
    v = variables
    try:
        sd = {
            "embed_tokens.weight": v["decoder/embeddings/weight"],
            "embed_positions.weight": v["decoder/position_encodings/encodings"],
            **_norm(v, "decoder/layer_norm", "layer_norm"),
        }
        for i in range(_count_layers(v, "decoder")):
            src, dst = f"decoder/layer_{i}", f"layers.{i}"
            sd.update(_self_attention_and_ffn(v, src, dst))
            sd.update(_attention(v, f"{src}/attention", f"{dst}.encoder_attn", "q|kv"))
            sd.update(_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm"))
    except KeyError as exc:
        raise EdgetlError(
            f"the CTranslate2 Whisper model has no variable {exc.args[0]}; it is not a Whisper decoder edgetl can read"
        ) from None
    return sd


def _model_file(path: str | Path) -> tuple[Path, Path | None]:
    """(model.bin, its folder) for a CTranslate2 folder or a model.bin file."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
        if not path.is_file():
            raise EdgetlError(f"{path.parent} has no model.bin; pass a CTranslate2 Whisper folder (model.bin, config.json)")
        return path, path.parent
    if not path.is_file():
        raise EdgetlError(f"{path} does not exist; pass a CTranslate2 Whisper folder (model.bin, config.json)")
    return path, path.parent


def load_encoder(path: str | Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """(``WhisperConfig``, ``WhisperEncoder`` state dict) of a CTranslate2 Whisper folder or model.bin; the decoder is not read."""
    model_bin, _ = _model_file(path)
    config = whisper_config(model_bin)
    return config, encoder_state_dict(read_variables(model_bin, keep=lambda name: name.startswith("encoder/")))


def load_whisper(path: str | Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """(``WhisperConfig``, ``WhisperForConditionalGeneration`` state dict) of a CTranslate2 Whisper folder or model.bin.

    ``proj_out.weight`` is the token embedding (tied, as CTranslate2's alias says)."""
    model_bin, _ = _model_file(path)
    config = whisper_config(model_bin)
    variables = read_variables(model_bin)
    sd = {f"model.encoder.{k}": t for k, t in encoder_state_dict(variables).items()}
    sd.update({f"model.decoder.{k}": t for k, t in decoder_state_dict(variables).items()})
    sd["proj_out.weight"] = variables.get("decoder/projection/weight", sd["model.decoder.embed_tokens.weight"])
    return config, sd


def generation_config(path: str | Path) -> Any:
    """A greedy, no-timestamps ``GenerationConfig`` for a CTranslate2 Whisper folder (its config.json and vocabulary)."""
    from transformers import GenerationConfig

    model_bin, folder = _model_file(path)
    config = whisper_config(model_bin)
    ids = _special_ids(folder, config.vocab_size)
    ct2 = _ct2_config(folder)
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        suppress_tokens=ct2.get("suppress_ids", []),
        begin_suppress_tokens=ct2.get("suppress_ids_begin", []),
        is_multilingual=config.vocab_size >= 51865,
        max_length=config.max_target_positions,
        do_sample=False,
        num_beams=1,
    )
