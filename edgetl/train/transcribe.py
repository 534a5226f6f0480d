"""Fine-tuning Whisper to transcribe a team's own vocabulary (task "transcription").

The whole ``WhisperForConditionalGeneration`` trains with teacher forcing (labels padded with -100, the
decoder input the labels shifted right behind the start token); validation is the word error rate of greedy
``generate`` on the validation clips, and the best checkpoint is the one with the lowest WER. Strategies on
the classification machinery (``strategy.py``), the decoder taking the head's place:

- ``decoder``: the encoder frozen, the decoder trains (the transcription twin of ``linear``);
- ``partial``: the top ``--unfreeze`` encoder groups and the decoder;
- ``full``; ``two-phase``: decoder only for ``--head-epochs``, then everything (decoder LR 10x lower).

Layer groups are the encoder's conv front-end and each of its layers. SpecAugment (Whisper's own
time and feature masking, ``apply_spec_augment``) is on unless ``--augment none``. ``--max-audio-seconds S``
(default 30) trims the encoder to S seconds (its first S*50 positions, ``speech_asr.trim_encoder``) for short
clips: training, validation, the bundle, its exports and the device loop then all use S-second windows, and
the encoder's cost falls with S. Runs are resumable like
every run: after each epoch the best weights, then a full checkpoint, are written atomically.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgetl_runtime.base import peak_rss_mb

from ..atomic import atomic_dir, atomic_path, write_json, write_text
from ..bundle import ASR_DIR, MANIFEST, SPLITS, library_versions
from ..data.sources import split_train_val
from ..data.transcripts import Transcript, TranscriptSource, error_rates, scan_transcripts
from ..errors import EdgetlError
from ..family.speech_asr import Recognizer, load_recognizer, whisper_features
from ..ownership import guard_data, remove_owned
from . import strategy
from .config import FinetuneConfig
from .finetune import BEST, CHECKPOINT, METRICS, NOT_COMPARED, RUN_FILE, RUN_OWNED, _epoch_seed, _same_option, check_run_folder

MAX_LABEL_TOKENS = 440  # Whisper's decoder holds 448 positions, a few of them for the prompt


class _Parts(nn.Module):
    """The names ``strategy.py`` expects: the encoder as ``backbone``, the decoder (with its tied output
    projection) as ``head``."""

    def __init__(self, whisper: nn.Module) -> None:
        super().__init__()
        self.backbone = whisper.model.encoder
        self.head = whisper.model.decoder


def encoder_groups(encoder: nn.Module) -> list[list[str]]:
    """The conv front-end and fixed positions, then each layer; the final layer norm joins the last group."""
    layers = [[f"layers.{i}"] for i in range(len(encoder.layers))]
    layers[-1].append("layer_norm")
    return [["conv1", "conv2", "embed_positions"], *layers]


class TranscribeRecipe:
    def __init__(self, cfg: FinetuneConfig, resume: bool = False, overwrite: bool = False) -> None:
        cfg.validate()
        if resume and overwrite:
            raise EdgetlError("--resume and --overwrite contradict each other; pass one")
        self.cfg = replace(cfg.for_task("transcription"), model=cfg.model or "whisper-tiny.en")
        self.resume, self.overwrite = resume, overwrite
        self.run_dir = Path(cfg.out)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"metric": None, "epoch": None}
        self.start_epoch, self.bad_epochs, self.started = 0, 0, time.time()
        self.mels: dict[str, torch.Tensor] = {}  # clip path -> log-mel (n_mels, frames of the window)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        guard_data(self.run_dir, [cfg.data])
        self.finished = check_run_folder(self.run_dir, self.resume, self.overwrite)  # --resume of a finished bundle
        if self.finished:
            return
        if self.resume:
            self._check_same_options()
        self.source: TranscriptSource = scan_transcripts(cfg.data, cfg.max_bad_fraction)
        train, val = self.source.splits["train"], self.source.splits["val"]
        if not val:
            if len(train) < 2:
                raise EdgetlError(f"{self.source.origin}: one training clip cannot also give a validation split; add clips")
            train, val = split_train_val(train, cfg.val_fraction, cfg.seed, stratify=False)
        self.splits = {"train": train, "val": val, **({"test": self.source.splits["test"]} if self.source.splits["test"] else {})}
        torch.manual_seed(cfg.seed)
        self.rec: Recognizer = load_recognizer(cfg.model, cfg.max_audio_seconds)
        self.model = self.rec.model
        window = self.rec.seconds * 16000
        if too_long := [t for items in self.splits.values() for t in items if len(self.source.waveforms[t.path]) > window]:
            n = len(self.source.waveforms[too_long[0].path]) / 16000
            raise EdgetlError(
                f"{too_long[0].path} lasts {n:.1f} s, more than the encoder's {self.rec.seconds:g} s window "
                f"({len(too_long)} clips do); pass a larger --max-audio-seconds (at most 30) or cut the clips"
            )
        self.model.config.apply_spec_augment = cfg.augment != "none"
        self.prefix = self._prefix()
        self.labels = {s: [self._label(t) for t in items] for s, items in self.splits.items()}
        self.parts = _Parts(self.model)
        self.groups = encoder_groups(self.model.model.encoder)
        self.optimizer = torch.optim.AdamW(strategy.param_groups(self.parts, self.groups, cfg))
        if self.overwrite and self.run_dir.exists():
            remove_owned(self.run_dir, RUN_OWNED)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            self._load_checkpoint()
        else:
            write_json(self.run_dir / RUN_FILE, {"config": cfg.to_dict(), "task": "transcription"})

    def _prefix(self) -> list[int]:
        """The tokens after the start token: no timestamps (English-only), or language, task, no timestamps."""
        tok = self.rec.tokenizer
        names = (
            ["<|notimestamps|>"] if not self.rec.generation.is_multilingual else ["<|en|>", "<|transcribe|>", "<|notimestamps|>"]
        )
        ids = [tok.token_to_id(n) for n in names]
        if any(i is None for i in ids):
            raise EdgetlError(f"the tokenizer of {self.cfg.model} lacks {', '.join(names)}; it is not a Whisper tokenizer")
        return ids

    def _label(self, t: Transcript) -> list[int]:
        ids = [
            *self.prefix,
            *self.rec.tokenizer.encode(" " + t.text, add_special_tokens=False).ids,
            self.rec.generation.eos_token_id,
        ]
        if len(ids) > MAX_LABEL_TOKENS:
            raise EdgetlError(
                f"the transcription of {t.path} is {len(ids)} tokens, more than Whisper's {MAX_LABEL_TOKENS}; split the clip"
            )
        return ids

    def _check_same_options(self) -> None:
        """A resumed run must use the options it was started with (where it is and what watches it aside)."""
        try:
            stored = json.loads((self.run_dir / RUN_FILE).read_text(encoding="utf-8"))["config"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EdgetlError(
                f"{self.run_dir / RUN_FILE} cannot be read ({type(exc).__name__}); start over with --overwrite"
            ) from None
        now = self.cfg.to_dict()
        diff = [k for k in now if k not in NOT_COMPARED and not _same_option(k, stored.get(k), now[k])]
        if diff:
            shown = ", ".join(f"{k}: {stored.get(k)!r} -> {now[k]!r}" for k in diff[:4])
            raise EdgetlError(f"{self.run_dir} was started with other options ({shown}); resume with the same options")

    def _load_checkpoint(self) -> None:
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            return
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.start_epoch, self.history = int(ckpt["epoch"]), list(ckpt["history"])
            self.best, self.bad_epochs = dict(ckpt["best"]), int(ckpt["bad_epochs"])
        except Exception as exc:
            raise EdgetlError(
                f"{path} cannot be read ({type(exc).__name__}); delete it to restart with --resume, or --overwrite"
            ) from None

    # ------------------------------------------------------------------ train
    def _features(self, items: list[Transcript]) -> torch.Tensor:
        """Log-mel features of the encoder's window (30 s, or the trimmed one), computed once per clip."""
        todo = [t.path for t in items if t.path not in self.mels]
        if todo:
            feats = whisper_features([self.source.waveforms[p] for p in todo], self.model.config.num_mel_bins, self.rec.frames)
            self.mels.update(zip(todo, feats))
        return torch.stack([self.mels[t.path] for t in items])

    def _batch_labels(self, ids: list[list[int]]) -> torch.Tensor:
        out = torch.full((len(ids), max(map(len, ids))), -100, dtype=torch.long)  # -100: no loss on the padding
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def _loss(self, split: str, order: list[int]) -> float:
        """Teacher-forced loss over ``order`` of ``split`` (no gradient)."""
        items, labels, total = self.splits[split], self.labels[split], 0.0
        with torch.no_grad():
            for i in range(0, len(order), self.cfg.batch_size):
                idx = order[i : i + self.cfg.batch_size]
                out = self.model(
                    input_features=self._features([items[j] for j in idx]), labels=self._batch_labels([labels[j] for j in idx])
                )
                total += float(out.loss) * len(idx)
        return total / max(1, len(order))

    def evaluate(self, split: str) -> dict[str, float]:
        """WER and CER of greedy decoding on ``split``."""
        items = self.splits[split]
        was = self.model.training
        self.model.eval()
        longest = max((len(ids) for ids in self.labels[split]), default=8)
        heard = self.rec.transcribe(
            [self.source.waveforms[t.path] for t in items], self.cfg.batch_size, max_new_tokens=2 * longest + 8
        )
        self.model.train(was)
        return error_rates([t.text for t in items], heard)

    def train(self) -> None:
        from rich.console import Console

        say = Console(highlight=False, soft_wrap=True, markup=False).print
        cfg, train = self.cfg, self.splits["train"]
        steps = math.ceil(len(train) / cfg.batch_size)
        scfg = replace(cfg, strategy="linear") if cfg.strategy == "decoder" else cfg
        for epoch in range(self.start_epoch, cfg.epochs):
            t0 = time.time()
            torch.manual_seed(_epoch_seed(cfg.seed, epoch))
            n_train = strategy.trainable_groups(scfg, epoch, len(self.groups))
            strategy.apply_freezing(self.parts, self.groups, n_train)
            if cfg.strategy == "two-phase" and epoch == cfg.phase1_epochs:
                self.bad_epochs = 0
            self.model.train()
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))).tolist()
            total, seen = 0.0, 0
            for step in range(steps):
                idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                strategy.set_lrs(
                    self.optimizer, strategy.lr_factor(scfg, epoch, step, steps), strategy.head_lr_scale(scfg, epoch)
                )
                out = self.model(input_features=self._features([train[j] for j in idx]),
                                 labels=self._batch_labels([self.labels["train"][j] for j in idx]))  # fmt: skip
                value = out.loss.item()
                if not math.isfinite(value):
                    raise EdgetlError(
                        f"training diverged in epoch {epoch + 1} (loss {value}); lower --lr-head/--lr-backbone 10x and --overwrite"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                self.optimizer.step()
                total, seen = total + value * len(idx), seen + len(idx)
            seconds = time.time() - t0
            self.model.eval()
            val = self.evaluate("val")
            entry = {
                "epoch": epoch + 1, "train_loss": total / max(1, seen), "val_loss": self._loss("val", list(range(len(self.splits["val"])))),
                "val": val, "lr": {g["name"].rsplit(".", 1)[0]: float(g["lr"]) for g in self.optimizer.param_groups},
                "trainable_groups": n_train, "total_groups": len(self.groups),
                "trainable": [f"encoder.{i}" for i in range(len(self.groups) - n_train, len(self.groups))] + ["decoder"],
                "train_samples": seen, "seconds": round(time.time() - t0, 3),
            }  # fmt: skip
            self._end_epoch(entry)
            say(f"epoch {epoch + 1}/{cfg.epochs}  loss {entry['train_loss']:.4f}  val loss {entry['val_loss']:.4f}  "
                f"val WER {val['wer']:.4f}  CER {val['cer']:.4f}  groups {n_train}/{len(self.groups)}  "
                f"({entry['seconds']:.1f}s, {seen / max(seconds, 1e-9):.1f} clips/s)")  # fmt: skip
            if cfg.patience and self.bad_epochs >= cfg.patience:
                say(f"early stop: no WER improvement for {self.bad_epochs} epochs")
                break

    def _end_epoch(self, entry: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        wer = entry["val"]["wer"]
        improved = self.best["metric"] is None or wer < self.best["metric"]
        if improved:
            self.best, self.bad_epochs = {"metric": wer, "epoch": entry["epoch"]}, 0
            with atomic_path(self.run_dir / BEST) as tmp:
                save_file({k: v.contiguous() for k, v in self.model.state_dict().items() if k != "proj_out.weight"}, str(tmp))
        else:
            self.bad_epochs += 1
        entry["best"] = improved
        self.history.append(entry)
        ckpt = {"epoch": entry["epoch"], "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "history": self.history, "best": self.best, "bad_epochs": self.bad_epochs}  # fmt: skip
        with atomic_path(self.run_dir / CHECKPOINT) as tmp:
            torch.save(ckpt, tmp)
        write_text(self.run_dir / METRICS, "".join(json.dumps(e) + "\n" for e in self.history))

    # ------------------------------------------------------------------- save
    def save(self) -> Path:
        """Reload the best weights, measure val and test, write the bundle (the manifest last)."""
        from safetensors.torch import load_file

        self.model.load_state_dict(load_file(str(self.run_dir / BEST)), strict=False)  # proj_out is tied to the embeddings
        self.model.eval()
        metrics: dict[str, Any] = {split: self.evaluate(split) for split in self.splits if split != "train"}
        odd = [f"{s} {k}" for s, v in metrics.items() for k, x in v.items() if not math.isfinite(x)]
        if odd:
            raise EdgetlError(f"the best weights of {self.run_dir} give non-finite {', '.join(odd)}; no bundle written")
        metrics.update({"best_epoch": self.best["epoch"], "epochs_run": len(self.history),
                        "wall_time_s": round(time.time() - self.started, 2), "peak_rss_mb": round(peak_rss_mb(), 1)})  # fmt: skip
        with atomic_dir(self.run_dir / ASR_DIR) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.rec.generation.save_pretrained(tmp)
            (tmp / "tokenizer.json").write_bytes((self.rec.folder / "tokenizer.json").read_bytes())
        rows = {name: [{"path": t.path, "text": t.text} for t in items] for name, items in self.splits.items()}
        write_json(self.run_dir / SPLITS, rows)
        cfg = self.model.config
        manifest = {
            "format": "edgetl-bundle", "version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "modality": "audio", "family": "speech", "arch": self.cfg.model, "task": "transcription", "labels": [],
            "model": {"family": "speech", "arch": self.cfg.model, "task": "transcription", "num_outputs": cfg.vocab_size, "folder": ASR_DIR},
            "preprocess": {"features": "whisper-log-mel", "sample_rate": 16000, "n_mels": cfg.num_mel_bins, "max_audio_seconds": self.rec.seconds,
                           "frames": self.rec.frames, "files": "wav, flac, ogg"},
            "input": {"name": "input_features", "shape": [1, cfg.num_mel_bins, self.rec.frames], "dtype": "float32", "layout": "NCT"},
            "output": {"name": "tokens", "shape": [1, "tokens"], "dtype": "int64"},
            "training": {**self.cfg.to_dict(), "layer_groups": len(self.groups)},
            "data": {"source": self.source.origin, "splits": {k: len(v) for k, v in self.splits.items()},
                     "skipped": len(self.source.skipped)},
            "metrics": metrics, "history": self.history, "versions": library_versions(),
        }  # fmt: skip
        write_json(self.run_dir / MANIFEST, manifest)
        return self.run_dir

    def cleanup(self) -> None:
        for name in (CHECKPOINT, BEST):
            (self.run_dir / name).unlink(missing_ok=True)


def finetune_transcriber(data: str, out: str, *, resume: bool = False, overwrite: bool = False, **options: Any) -> Path:
    """Fine-tune Whisper on a transcription dataset; returns the bundle folder."""
    try:
        cfg = FinetuneConfig(data=data, out=out, **options)
    except TypeError as exc:
        raise EdgetlError(f"finetune: {exc}") from None
    recipe = TranscribeRecipe(cfg, resume=resume, overwrite=overwrite)
    recipe.setup()
    if recipe.finished:  # --resume found the bundle done: nothing is left to do
        return recipe.run_dir
    recipe.train()
    path = recipe.save()
    recipe.cleanup()
    return path
