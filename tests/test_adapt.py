"""Domain adaptation (``--adapt-to``): the losses and the validator on known inputs, AdaBN's statistics, every
method end to end on a colour shift with the real MobileNetV2, the unlabelled target data paths, resume, export
calibration on the target, and the synthetic digits source."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, make_image
from PIL import Image
from test_speech import SFAST, keywords, tiny_whisper  # noqa: F401 (fixtures)
from test_text import TFAST, tiny_bert, write_sentiment_csv  # noqa: F401 (tiny_bert is a fixture)
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.data.synthetic_digits import font_files, write_digits_synthetic
from edgetl.errors import EdgetlError
from edgetl.train import adapt

runner = CliRunner()
CLASSES = ("red", "green", "blue")
COLORS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}
# a linear head learns the colour task in 3 epochs at 32 px; the full network trains (for DANN's reversed gradient and
# AdaBN's source statistics) but does not learn it this quickly: AFULL checks mechanics, not accuracy
AFAST = {**FAST, "strategy": "linear", "epochs": 3, "lr_head": 3e-2, "batch_size": 4}
AFULL = {**FAST, "strategy": "full", "epochs": 2, "lr_head": 1e-2, "lr_backbone": 1e-3}


# ------------------------------------------------------------------ losses
def test_entropy_loss_prefers_confident_and_diverse_predictions():
    confident = torch.eye(3) * 20  # three samples, three different classes, each certain
    uniform = torch.zeros(3, 3)
    collapsed = torch.tensor([[20.0, 0, 0]] * 3)  # certain, but all one class
    assert adapt.entropy_loss(confident) < adapt.entropy_loss(uniform)
    assert adapt.entropy_loss(confident) < adapt.entropy_loss(collapsed) - 1.0  # the diversity term: log 3 apart
    assert float(adapt.entropy_loss(confident)) == pytest.approx(-math.log(3), abs=1e-3)


def test_mcc_loss_is_zero_without_confusion_and_grows_with_it():
    sharp = torch.eye(4) * 50
    assert float(adapt.mcc_loss(sharp)) == pytest.approx(0.0, abs=1e-4)
    assert float(adapt.mcc_loss(torch.zeros(4, 4))) == pytest.approx(0.75, abs=1e-4)  # all mass off the diagonal but 1/4
    mixed = torch.eye(4) * 2
    assert 0.0 < float(adapt.mcc_loss(mixed)) < 0.75


def test_gradient_reversal_and_its_warm_up():
    x = torch.ones(3, requires_grad=True)
    adapt.reverse_gradient(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))
    assert adapt.dann_coeff(0.0) == 0.0
    assert 0.99 < adapt.dann_coeff(1.0) <= 1.0
    assert adapt.dann_coeff(0.1) < adapt.dann_coeff(0.5)


def test_dann_loss_trains_discriminator_and_reverses_features():
    torch.manual_seed(0)
    disc = adapt.DomainDiscriminator(4, hidden=8).eval()  # no dropout: both passes see the same network
    src = torch.randn(6, 4, requires_grad=True)
    tgt = torch.randn(6, 4) + 3
    loss = adapt.dann_loss(disc, src, tgt, 1.0)
    loss.backward()
    # the features' gradient is the negative of the one that would lower the discriminator's loss
    src2 = src.detach().clone().requires_grad_(True)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        disc(torch.cat([src2, tgt])), torch.cat([torch.ones(6), torch.zeros(6)])
    )
    plain.backward()
    assert torch.allclose(src.grad, -src2.grad)


def test_self_training_uses_only_confident_pseudo_labels():
    weak = torch.tensor([[10.0, 0.0], [0.1, 0.0]])  # the first is sure (class 0), the second is not
    strong = torch.tensor([[0.0, 5.0], [0.0, 5.0]])
    loss, kept = adapt.self_training_loss(weak, strong, 0.95)
    assert kept == 0.5
    expected = torch.nn.functional.cross_entropy(strong[:1], torch.tensor([0])) / 2
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_information_maximisation_validator():
    assert adapt.information_maximisation(np.eye(5) * 50) == pytest.approx(1.0, abs=1e-6)
    assert adapt.information_maximisation(np.zeros((5, 5))) == pytest.approx(0.0, abs=1e-6)
    collapsed = np.tile([50.0, 0, 0, 0, 0], (5, 1))
    assert adapt.information_maximisation(collapsed) == pytest.approx(0.0, abs=1e-6)
    half = np.eye(5) * 2
    assert 0.0 < adapt.information_maximisation(half) < 1.0


def test_adabn_sets_target_statistics_exactly():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    net[1].running_mean.fill_(5.0)
    batches = [torch.randn(4, 2, 5, 5) * 3 + 1 for _ in range(3)]
    adapt.reestimate_batchnorm(net, ((b,) for b in batches))
    with torch.no_grad():
        y = torch.cat([net[0](b) for b in batches])
    per_batch_mean = torch.stack([net[0](b).mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(net[1].running_mean, per_batch_mean.detach(), atol=1e-5)
    assert torch.allclose(net[1].running_mean, y.mean((0, 2, 3)), atol=1e-5)  # equal batches: the plain mean
    assert not net.training and net[1].momentum == 0.1
    assert adapt.has_batchnorm(net) and not adapt.has_batchnorm(torch.nn.LayerNorm(3))


def test_target_cycle_is_seeded_and_covers_the_pool():
    cycle = adapt.TargetCycle(10, 4, seed=3)
    plan = cycle.plan(epoch=1, steps=5)
    assert plan == adapt.TargetCycle(10, 4, seed=3).plan(epoch=1, steps=5)
    assert plan != cycle.plan(epoch=2, steps=5)
    flat = [i for b in plan for i in b]
    assert len(flat) == 20 and set(flat[:10]) == set(range(10))


# ---------------------------------------------------------- shift task data
def _shifted(img: Image.Image) -> Image.Image:
    """The target domain: washed out and tinted (a brighter, yellowish camera)."""
    arr = np.asarray(img).astype(np.float32) * 0.5 + np.array([110, 100, 40])
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def shift(tmp_path_factory) -> tuple[Path, Path]:
    """Source: colour squares on dark noise, by class folder. Target: the same classes shifted, as a flat folder of
    unlabelled images plus a labelled test/<class>/ split."""
    root = tmp_path_factory.mktemp("shift")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / "source" / name).mkdir(parents=True)
        (root / "target" / "test" / name).mkdir(parents=True)
        (root / "target" / "camera").mkdir(parents=True, exist_ok=True)
        for i in range(10):
            make_image(COLORS[name], rng).save(root / "source" / name / f"{i}.png")
            _shifted(make_image(COLORS[name], rng)).save(root / "target" / "camera" / f"{name[0]}{i}.png")
            if i < 4:
                _shifted(make_image(COLORS[name], rng)).save(root / "target" / "test" / name / f"{i}.png")
    return root / "source", root / "target"


@pytest.mark.parametrize(
    "method, extra",
    [("none", {}), ("adabn", {}), ("entropy", {}), ("mcc", {}), ("dann", {}), ("mcc", {"self_train": True})],
)
def test_every_method_writes_an_adapted_bundle(shift, tmp_path, method, extra):
    source, target = shift
    b = edgetl.finetune(str(source), str(tmp_path / "run"), adapt_to=str(target), adapt_method=method, **extra, **AFAST)
    m = b.manifest
    assert m["data"]["target"] == {
        "source": str(target.resolve()),
        "method": method,
        "self_train": bool(extra),
        "unlabelled": 30,
        "validator_samples": 6,
        "labelled_test": 12,
    }
    assert set(m["metrics"]["target_test"]) == {"accuracy", "macro_f1"}
    assert m["metrics"]["val"]["accuracy"] > 0.5  # it learnt the source task (3 classes)
    assert -1.0 <= m["metrics"]["target"]["im"] <= 1.0
    for entry in m["history"]:
        assert math.isfinite(entry["target_im"]) and "accuracy" in entry["target_test"]
        if method in ("entropy", "mcc", "dann") or extra:
            assert entry["adapt"]  # the target terms of the epoch's steps
    if extra:
        assert 0.0 <= m["history"][-1]["adapt"]["pseudo_kept"] <= 1.0
    if method == "dann":
        assert m["history"][-1]["adapt"]["domain"] > 0
    # chosen by the label-free validator (source-only: by source validation)
    key = [e["val"]["accuracy"] for e in m["history"]] if method == "none" else [e["target_im"] for e in m["history"]]
    assert m["metrics"]["best_epoch"] == int(np.argmax(key)) + 1
    splits = json.loads((b.path / "splits.json").read_text())
    assert len(splits["target"]) == 30 and all(set(r) == {"path"} for r in splits["target"])
    assert len(splits["target_test"]) == 12
    assert not (b.path / "checkpoint.pt").exists()


def test_adabn_ships_target_statistics(shift, tmp_path):
    """The bundle's BatchNorm statistics are the target's: re-estimating them again on the target changes nothing."""
    from edgetl.bundle import load_bundle
    from edgetl.train.finetune import _inputs, _loader

    source, target = shift
    b = edgetl.finetune(str(source), str(tmp_path / "run"), adapt_to=str(target), adapt_method="adabn", **AFULL)
    assert b.manifest["training"]["bn_statistics_trained"] is True  # the source statistics were learnt, then swapped
    model = load_bundle(b.path).model
    before = {k: v.clone() for k, v in adapt.batchnorm_state(model).items()}
    from edgetl.data.sources import Sample
    from edgetl.modality import get_modality

    splits = json.loads((b.path / "splits.json").read_text())
    pool = [Sample(str(b.path / r["path"])) for r in splits["target"]]
    ds = get_modality("image").datasets({"t": pool}, b.preprocess, None, None, "classification", list(b.labels), "none", 0)["t"]
    # the validator's held-out share is part of the recorded pool: estimate on the part trained on (the first 24)
    ds.samples = ds.samples[:24]
    ds.targets = ds.targets[:24]
    adapt.reestimate_batchnorm(model.backbone, (_inputs(x) for x, _ in _loader(ds, 16, 0)))
    after = adapt.batchnorm_state(model)
    means = [k for k in before if k.endswith("running_mean")]
    assert all(torch.allclose(before[k], after[k], atol=1e-4) for k in means)


def test_adapted_bundle_exports_with_target_calibration(shift, tmp_path):
    """int8 calibrates on the unlabelled target samples; parity and the benchmark's default data include the
    labelled target test split."""
    from edgetl.bench.evalset import eval_set
    from edgetl.bundle import load_bundle
    from edgetl.export import export
    from edgetl.export.samples import calibration_inputs, held_out

    source, target = shift
    b = edgetl.finetune(str(source), str(tmp_path / "run"), adapt_to=str(target), adapt_method="mcc", **AFAST)
    bundle = load_bundle(b.path)
    calib = calibration_inputs(bundle, 100)
    assert len(calib) == 30  # every target sample (24 adapted on + 6 validator), none of the 30 source ones
    _, targets = held_out(bundle, 100)
    assert len(targets) == 6 + 12  # source val + labelled target test
    _, _, origin, _ = eval_set(b.path, b.manifest)
    assert origin == "target_test split of run"
    art = export(b.path, "onnx", "int8", max_accuracy_drop=None)
    assert art.manifest["converter"]["calibration_source"] == "bundle target split (unlabelled, --adapt-to)"
    assert art.manifest["converter"]["calibration_samples"] == 30
    from edgetl.cli import _info_rows

    rows = dict(_info_rows(b.manifest))  # what `edgetl info` tabulates
    assert rows["adapted to"] == f"{target.resolve()} (30 unlabelled, 12 labelled for the report), mcc"
    assert "accuracy" in rows["target_test metrics"]
    assert runner.invoke(app, ["info", str(b.path)]).exit_code == 0


def test_resume_of_dann_matches_uninterrupted(shift, tmp_path, monkeypatch):
    from conftest import interrupted_after_epoch

    source, target = shift
    opts = dict(adapt_to=str(target), adapt_method="dann", self_train=True, **{**AFULL, "epochs": 3})
    whole = edgetl.finetune(str(source), str(tmp_path / "a"), **opts).manifest
    with interrupted_after_epoch(monkeypatch, 1):
        edgetl.finetune(str(source), str(tmp_path / "b"), **opts)
    resumed = edgetl.finetune(str(source), str(tmp_path / "b"), resume=True, **opts).manifest
    assert resumed["metrics"]["target_test"] == whole["metrics"]["target_test"]
    assert [e["target_im"] for e in resumed["history"]] == pytest.approx([e["target_im"] for e in whole["history"]], abs=1e-6)


def test_auto_trains_every_candidate_and_keeps_the_validators_choice(shift, tmp_path):
    from edgetl.bundle import load_bundle
    from edgetl.train.auto_adapt import choose, scores_of

    source, target = shift
    out = tmp_path / "run"
    b = edgetl.finetune(str(source), str(out), adapt_to=str(target), adapt_method="auto", **AFAST)
    auto = b.manifest["data"]["target"]["auto"]
    candidates = {m: json.loads((out / "candidates" / m / "edgetl.json").read_text()) for m in auto["candidates"]}
    assert set(candidates) == {"none", "adabn", "entropy", "mcc", "dann"}
    scores = {m: scores_of(man) for m, man in candidates.items()}
    assert auto["candidates"] == scores and auto["chosen"] == choose(scores)[0]
    chosen = candidates[auto["chosen"]]
    assert b.manifest["metrics"] == chosen["metrics"] and b.manifest["training"]["adapt_method_chosen"] == auto["chosen"]
    assert (out / "model.safetensors").read_bytes() == (out / "candidates" / auto["chosen"] / "model.safetensors").read_bytes()
    assert not (out / "run.json").exists()
    model = load_bundle(out)  # the copied bundle loads, and its sample paths resolve from its new place
    splits = json.loads((out / "splits.json").read_text())
    assert all((out / r["path"]).is_file() for r in splits["target"] + splits["train"])
    assert list(model.labels) == ["blue", "green", "red"]
    again = edgetl.finetune(str(source), str(out), adapt_to=str(target), adapt_method="auto", resume=True, **AFAST)
    assert again.manifest == b.manifest


def test_auto_choice_rule():
    from edgetl.train.auto_adapt import choose

    scores = {
        "none": {"source_val": 0.99, "validator": 0.5},
        "adabn": {"source_val": 0.90, "validator": 0.9},  # the best validator, but it forgot the source task
        "mcc": {"source_val": 0.975, "validator": 0.8},
        "dann": {"source_val": 0.99, "validator": 0.6},
    }
    chosen, why = choose(scores)
    assert chosen == "mcc" and "source validation" in why["adabn"] and "validator" in why["dann"]
    assert choose({"none": {"source_val": 0.9, "validator": 0.7}, "mcc": {"source_val": 0.9, "validator": 0.7}})[0] == "none"


# ------------------------------------------------------------- data paths
def test_target_folder_layouts(tmp_path):
    from edgetl.data.unlabelled import scan_target_files
    from edgetl_runtime.image import IMAGE_SUFFIXES

    root = tmp_path / "t"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "test" / "red").mkdir(parents=True)
    for p in (root / "x.png", root / "a" / "y.jpg", root / "a" / "deep" / "z.png", root / "test" / "red" / "t.png"):
        Image.new("RGB", (8, 8)).save(p)
    (root / "notes.txt").write_text("not an image")
    found = scan_target_files(root, IMAGE_SUFFIXES, "image", ["red", "blue"])
    assert sorted(Path(s.path).name for s in found.unlabelled) == ["x.png", "y.jpg", "z.png"]
    assert [(Path(s.path).name, s.label) for s in found.test] == [("t.png", "red")]
    assert all(s.label is None for s in found.unlabelled)
    # test/ holding other classes than the source's is not a labelled split: its images are unlabelled data
    found = scan_target_files(root, IMAGE_SUFFIXES, "image", ["cat"])
    assert len(found.unlabelled) == 4 and not found.test


def test_target_texts_txt_and_csv(tmp_path):
    from edgetl.data.unlabelled import scan_target_texts

    txt = tmp_path / "t.txt"
    txt.write_text("good day\n\nbad day\n", encoding="utf-8")
    assert [s.text for s in scan_target_texts(txt, "text", "label", ["pos", "neg"]).unlabelled] == ["good day", "bad day"]
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text,label,split\nnice,pos,test\nawful,,\nugly,neg,train\ngrim,neg,test\n", encoding="utf-8")
    found = scan_target_texts(csv_file, "text", "label", ["pos", "neg"])
    assert [s.text for s in found.unlabelled] == ["awful", "ugly"]  # a train row's label is never used
    assert [(s.text, s.label) for s in found.test] == [("nice", "pos"), ("grim", "neg")]


def test_text_adaptation_with_a_layernorm_encoder(tiny_bert, tmp_path):  # noqa: F811
    data = write_sentiment_csv(tmp_path / "s.csv")
    target = tmp_path / "target.txt"
    target.write_text("\n".join(["superb kind lovely", "grim nasty poor", "happy nice", "sad ugly bad"] * 3), encoding="utf-8")
    b = edgetl.finetune(str(data), str(tmp_path / "run"), model=str(tiny_bert), adapt_to=str(target), adapt_method="mcc",
                        self_train=True, **TFAST)  # fmt: skip
    assert b.manifest["data"]["target"]["unlabelled"] == 12
    assert all(math.isfinite(e["target_im"]) for e in b.manifest["history"])
    with pytest.raises(EdgetlError, match="no BatchNorm layer"):
        edgetl.finetune(
            str(data), str(tmp_path / "r2"), model=str(tiny_bert), adapt_to=str(target), adapt_method="adabn", **TFAST
        )
    assert not (tmp_path / "r2").exists()


def test_audio_adaptation_on_keyword_clips(keywords, tiny_whisper, tmp_path):  # noqa: F811
    """Target: the keyword folder itself as a target domain: its train/ and val/ clips unlabelled, test/ the report."""
    b = edgetl.finetune(str(keywords), str(tmp_path / "run"), model=str(tiny_whisper), adapt_to=str(keywords),
                        adapt_method="dann", self_train=True, **{**SFAST, "epochs": 2})  # fmt: skip
    target = b.manifest["data"]["target"]
    clips = sorted(keywords.rglob("*.wav"))
    tests = sorted((keywords / "test").rglob("*.wav"))
    assert target["unlabelled"] == len(clips) - len(tests) and target["labelled_test"] == len(tests)
    assert b.manifest["history"][-1]["adapt"]["domain"] > 0
    with pytest.raises(EdgetlError, match="no BatchNorm layer"):
        edgetl.finetune(str(keywords), str(tmp_path / "r2"), model=str(tiny_whisper), adapt_to=str(keywords),
                        adapt_method="adabn", **SFAST)  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (["--adapt-method", "mcc"], "needs unlabelled target data"),
        (["--self-train"], "needs unlabelled target data"),
        (["--adapt-to", "{target}", "--adapt-method", "coral"], "unknown --adapt-method 'coral'"),
        (["--adapt-to", "{empty}"], "holds 0 images"),
        (["--adapt-to", "{missing}"], "is not a folder"),
        (["--adapt-to", "{target}", "--pseudo-threshold", "1.5"], "--pseudo-threshold must be between 0 and 1"),
    ],
)
def test_cli_adaptation_errors(shift, tmp_path, args, message):
    source, target = shift
    (tmp_path / "empty").mkdir()
    fill = {"target": str(target), "empty": str(tmp_path / "empty"), "missing": str(tmp_path / "nope")}
    args = [a.format(**fill) for a in args]
    r = runner.invoke(app, ["finetune", str(source), "--out", str(tmp_path / "run"), "--image-size", "32", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_regression_refuses_adaptation(regression_csv, tmp_path):
    with pytest.raises(EdgetlError, match="applies to classification only"):
        edgetl.finetune(str(regression_csv), str(tmp_path / "r"), adapt_to=str(regression_csv.parent), **AFAST)


# ------------------------------------------------------------ field keywords
def test_field_keywords_are_other_voices_through_a_harsh_channel(tmp_path):
    import inspect

    from test_audio_data import require_espeak

    from edgetl.data.field_keywords import SOURCE_VOICES, channel, field_voices, write_keywords_field
    from edgetl.data.keywords import drawn_voices, write_keywords
    from edgetl_runtime.audio import load_audio

    defaults = inspect.signature(write_keywords).parameters
    assert (defaults["voices"].default, defaults["seed"].default) == (SOURCE_VOICES, 0)  # what builtin:keywords uses
    assert not set(field_voices()) & set(drawn_voices(SOURCE_VOICES, 0))
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)  # above every pass band
    y = channel(tone, np.random.default_rng(0))
    assert y.shape == tone.shape and np.isfinite(y).all() and np.abs(y).max() <= 0.9
    spec = np.abs(np.fft.rfft(y))
    assert spec[5000] < 0.05 * spec.max()  # the 5 kHz tone is gone: what is left is noise and hum
    assert np.array_equal(y, channel(tone, np.random.default_rng(0)))
    out = require_espeak(write_keywords_field, tmp_path / "field", takes=1, progress=False)
    mark = json.loads((out / "edgetl-dataset.json").read_text())
    assert mark["voices"] == field_voices()
    assert sorted(p.name for p in (out / "test").iterdir()) == ["down", "no", "up", "yes"]
    clip = load_audio(str(next((out / "test" / "yes").glob("*.wav"))))
    assert len(clip) == 16000 and np.isfinite(clip).all()


# --------------------------------------------------------- synthetic digits
def test_synthetic_digits_in_the_real_digits_format(tmp_path):
    out = write_digits_synthetic(tmp_path / "syn", per_font=1)
    fonts = len(font_files()) or 1
    mark = json.loads((out / "edgetl-dataset.json").read_text())
    assert mark["images"] == 10 * fonts and len(mark["fonts"]) == fonts
    for d in range(10):
        files = sorted((out / str(d)).glob("*.png"))
        assert len(files) == fonts
        arr = np.asarray(Image.open(files[0]))
        assert arr.shape == (8, 8) and arr.min() < 100 < arr.max()  # ink on white, as builtin:digits
    again = write_digits_synthetic(tmp_path / "again", per_font=1)
    assert (out / "3" / "f000-0.png").read_bytes() == (again / "3" / "f000-0.png").read_bytes()  # seeded
    with pytest.raises(EdgetlError, match="already holds"):
        write_digits_synthetic(out, per_font=1)
