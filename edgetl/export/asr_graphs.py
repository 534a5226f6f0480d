"""Whisper as two exportable graphs with a key/value cache, written from transformers' submodules.

- ``WhisperEncoderGraph``: ``input_features`` float32 [1, n_mels, frames] -> ``cross_key``, ``cross_value``
  [layers, 1, heads, frames / 2, head_dim]: the encoder, then every decoder layer's cross-attention keys and
  values, computed once per clip.
- ``WhisperDecoderGraph``: one decoding step. ``input_ids`` int64 [1, n] (the prompt, then one token at a
  time), ``past_key``/``past_value`` [layers, 1, heads, past, head_dim] (``past`` = 0 on the first step), the
  cross keys/values -> ``logits`` [1, vocab] of the last position, ``present_key``/``present_value`` with
  ``past + n`` positions. Positions follow from the cache's length; a causal mask covers the n new tokens.

- ``WhisperFixedCacheDecoderGraph``: the same step for runtimes that need static shapes (LiteRT): one token,
  its position, and a cache of a fixed number of slots that the step writes into.

The math is transformers' eager Whisper (query scaled before the product, pre-norm layers, GELU, tied
output projection), with no Python branches on data, so ``torch.onnx.export`` and ``openvino.convert_model``
trace it as written. Shorter inputs than 30 s take the first ``frames / 2`` encoder positions (the trimmed
encoder of ``family/speech.py``); the default export keeps Whisper's full window.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ENCODER_INPUTS, ENCODER_OUTPUTS = ["input_features"], ["cross_key", "cross_value"]
DECODER_INPUTS = ["input_ids", "past_key", "past_value", "cross_key", "cross_value"]
DECODER_OUTPUTS = ["logits", "present_key", "present_value"]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[1, T, d] -> [1, heads, T, d / heads]."""
    return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Attention of already-scaled queries; [1, heads, n, head_dim] -> [1, n, d]."""
    w = torch.matmul(q, k.transpose(2, 3))
    if mask is not None:
        w = w + mask
    out = torch.matmul(torch.softmax(w, dim=-1), v)
    return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


def _cross_and_feed_forward(
    layer: Any, x: torch.Tensor, cross_key: torch.Tensor, cross_value: torch.Tensor, heads: int
) -> torch.Tensor:
    """A decoder layer after its self-attention: cross-attention to the encoder's keys/values, then the MLP."""
    c = layer.encoder_attn
    h = layer.encoder_attn_layer_norm(x)
    x = x + c.out_proj(_attend(_heads(c.q_proj(h) * c.scaling, heads), cross_key, cross_value, None))
    h = layer.final_layer_norm(x)
    return x + layer.fc2(layer.activation_fn(layer.fc1(h)))


def _last_logits(decoder: Any, proj_out: Any, x: torch.Tensor) -> torch.Tensor:
    """[1, vocab] logits of the last position. W @ x rather than x @ W.T: the exporter would fold the transpose
    into a second copy of the (tied) embedding matrix, 80 MB for tiny.en."""
    x = decoder.layer_norm(x[:, -1])
    return torch.matmul(proj_out.weight, x.unsqueeze(-1)).squeeze(-1)


class WhisperEncoderGraph(nn.Module):
    """input_features [1, n_mels, 2T] -> cross_key, cross_value [layers, 1, heads, T, head_dim]."""

    def __init__(self, whisper: Any, positions: int | None = None) -> None:
        super().__init__()
        self.encoder = whisper.model.encoder
        self.cross = nn.ModuleList(layer.encoder_attn for layer in whisper.model.decoder.layers)
        self.heads = whisper.config.decoder_attention_heads
        self.positions = positions or whisper.config.max_source_positions

    def forward(self, input_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.encoder
        x = nn.functional.gelu(enc.conv1(input_features))
        x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: self.positions]
        for layer in enc.layers:
            x = layer(x, None, layer_head_mask=None)[0]
        x = enc.layer_norm(x)
        keys = torch.stack([_heads(a.k_proj(x), self.heads) for a in self.cross])
        values = torch.stack([_heads(a.v_proj(x), self.heads) for a in self.cross])
        return keys, values


class WhisperDecoderGraph(nn.Module):
    """One cached decoding step: see the module docstring for inputs and outputs."""

    def __init__(self, whisper: Any) -> None:
        super().__init__()
        self.decoder = whisper.model.decoder
        self.proj_out = whisper.proj_out
        self.heads = whisper.config.decoder_attention_heads

    def forward(
        self,
        input_ids: torch.Tensor,
        past_key: torch.Tensor,
        past_value: torch.Tensor,
        cross_key: torch.Tensor,
        cross_value: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dec, heads = self.decoder, self.heads
        past, n = past_key.shape[3], input_ids.shape[1]
        x = dec.embed_tokens(input_ids) + dec.embed_positions.weight[past : past + n]
        keys = torch.arange(past + n).unsqueeze(0)
        queries = (torch.arange(n) + past).unsqueeze(1)
        mask = torch.where(keys <= queries, 0.0, float("-inf")).to(x.dtype)  # [n, past + n]
        present_k, present_v = [], []
        for i, layer in enumerate(dec.layers):
            a = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q = _heads(a.q_proj(h) * a.scaling, heads)
            k = torch.cat([past_key[i], _heads(a.k_proj(h), heads)], dim=2)
            v = torch.cat([past_value[i], _heads(a.v_proj(h), heads)], dim=2)
            present_k.append(k)
            present_v.append(v)
            x = _cross_and_feed_forward(layer, x + a.out_proj(_attend(q, k, v, mask)), cross_key[i], cross_value[i], heads)
        return _last_logits(dec, self.proj_out, x), torch.stack(present_k), torch.stack(present_v)


class WhisperFixedCacheDecoderGraph(nn.Module):
    """One token per step with a self-attention cache of a fixed ``slots`` positions, for runtimes without dynamic
    shapes (LiteRT): ``input_ids`` [1, 1], ``position`` [1] (this token's index), ``cache_key``/``cache_value``
    [layers, 1, heads, slots, head_dim] (slots at ``position`` and after are masked out, whatever they hold), the
    cross keys/values -> ``logits`` [1, vocab] and the caches with this token's keys/values written at
    ``position``. The write is a one-hot blend, not a scatter, so the converter keeps plain element-wise ops."""

    def __init__(self, whisper: Any, slots: int) -> None:
        super().__init__()
        self.decoder = whisper.model.decoder
        self.proj_out = whisper.proj_out
        self.heads, self.slots = whisper.config.decoder_attention_heads, slots

    def forward(
        self,
        input_ids: torch.Tensor,
        position: torch.Tensor,
        cache_key: torch.Tensor,
        cache_value: torch.Tensor,
        cross_key: torch.Tensor,
        cross_value: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dec, heads = self.decoder, self.heads
        x = dec.embed_tokens(input_ids) + torch.index_select(dec.embed_positions.weight, 0, position).unsqueeze(0)
        slots = torch.arange(self.slots)
        mask = torch.where(slots <= position, 0.0, float("-inf")).to(x.dtype).unsqueeze(0)  # [1, slots]
        write = (slots == position).to(x.dtype).reshape(1, 1, self.slots, 1)
        new_k, new_v = [], []
        for i, layer in enumerate(dec.layers):
            a = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q = _heads(a.q_proj(h) * a.scaling, heads)
            k = cache_key[i] * (1 - write) + _heads(a.k_proj(h), heads) * write
            v = cache_value[i] * (1 - write) + _heads(a.v_proj(h), heads) * write
            new_k.append(k)
            new_v.append(v)
            x = _cross_and_feed_forward(layer, x + a.out_proj(_attend(q, k, v, mask)), cross_key[i], cross_value[i], heads)
        return _last_logits(dec, self.proj_out, x), torch.stack(new_k), torch.stack(new_v)


def cache_shape(whisper: Any, past: int) -> tuple[int, int, int, int, int]:
    """The self-attention cache's shape with ``past`` positions: [layers, 1, heads, past, head_dim]."""
    c = whisper.config
    return (c.decoder_layers, 1, c.decoder_attention_heads, past, c.d_model // c.decoder_attention_heads)
