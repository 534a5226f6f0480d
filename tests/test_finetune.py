"""Real fine-tuning runs of the real built-in MobileNetV2 on small generated data."""

import json

import numpy as np
import pytest
from conftest import FAST, write_color_folder, write_random_label_folder
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def two_phase_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("tp")
    data = write_color_folder(root / "colors", per_class=15)
    bundle = edgetl.finetune(
        str(data),
        str(root / "run"),
        **{**FAST, "strategy": "two-phase", "epochs": 3, "head_epochs": 1, "lr_head": 3e-2, "batch_size": 4, "lr_backbone": 1e-5},
    )
    return bundle


def test_two_phase_bundle_contents(two_phase_bundle):
    run = two_phase_bundle.path
    assert sorted(p.name for p in run.iterdir()) == [
        "edgetl.json",
        "evaluation.json",
        "metrics.jsonl",
        "model.safetensors",
        "run.json",
        "splits.json",
    ]
    m = json.loads((run / "edgetl.json").read_text())
    assert m["format"] == "edgetl-bundle" and m["family"] == "torchvision" and m["arch"] == "mobilenet_v2"
    assert m["labels"] == ["blue", "green", "red"] and m["task"] == "classification"
    assert m["weights_source"]["kind"] == "builtin" and len(m["weights_source"]["sha256"]) == 64
    assert m["input"] == {"name": "pixel_values", "shape": [1, 3, 32, 32], "dtype": "float32", "layout": "NCHW"}
    assert m["preprocess"]["mean"] == [0.485, 0.456, 0.406] and m["preprocess"]["interpolation"] == "bilinear"
    assert m["data"]["splits"] == {"train": 36, "val": 9}
    splits = json.loads((run / "splits.json").read_text())
    assert {k: len(v) for k, v in splits.items()} == m["data"]["splits"]
    assert not {s["path"] for s in splits["train"]} & {s["path"] for s in splits["val"]}
    assert set(m["metrics"]["val"]) == {"accuracy", "macro_f1"}
    assert m["metrics"]["peak_rss_mb"] > 100 and m["versions"]["torch"].startswith("2.14.1")
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["trainable_groups"] for l in lines] == [0, 19, 19]
    assert m["metrics"]["val"]["accuracy"] >= 0.7, m["metrics"]  # chance is 0.33
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]


def test_metrics_log_has_val_loss_and_learning_rates(two_phase_bundle):
    """Per epoch: validation loss, the LR of each parameter group, the samples trained on."""
    lines = [json.loads(l) for l in (two_phase_bundle.path / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        assert np.isfinite(line["val_loss"]) and line["val_loss"] > 0
        assert set(line["lr"]) == {"head", *(f"backbone.{i}" for i in range(19))}
        assert line["train_samples"] == 36
    # two-phase: the head's LR drops 10x against the backbone's once the backbone trains (lr_head 3e-2, lr_backbone 1e-5)
    ratios = [line["lr"]["head"] / line["lr"]["backbone.18"] for line in lines]
    assert ratios == pytest.approx([3000.0, 300.0, 300.0], rel=1e-6)


def test_a_healthy_run_has_no_findings_and_random_labels_do(two_phase_bundle, tmp_path):
    """The diagnosis (train/diagnose.py) stays quiet on a run that learns, and flags one that cannot beat the
    majority class: colour images whose labels were drawn at random."""
    assert two_phase_bundle.manifest["training"]["diagnostics"] == []
    noisy = write_random_label_folder(tmp_path, per_class=10)
    b = edgetl.finetune(str(noisy), str(tmp_path / "run"), **{**FAST, "strategy": "linear", "epochs": 2, "lr_head": 3e-3})
    kinds = [d["kind"] for d in b.manifest["training"]["diagnostics"]]
    assert kinds == ["underfitting"], b.manifest["training"]["diagnostics"]
    assert "never beats predicting the majority class" in b.manifest["training"]["diagnostics"][0]["message"]


def test_reloaded_bundle_predicts_the_same(two_phase_bundle, tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    fresh = edgetl.load_bundle(two_phase_bundle.path)
    assert np.array_equal(fresh.predict(x), two_phase_bundle.predict(x))
    img = write_color_folder(tmp_path / "p", per_class=1, seed=9)
    res = edgetl.predict_files(fresh, [str(img / "red" / "red_000.png")], top_k=2)
    assert len(res[0]["top"]) == 2 and res[0]["top"][0][0] in fresh.labels
    assert 0.0 <= res[0]["top"][0][1] <= 1.0


def test_linear_feature_cache_gives_the_same_training(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=8)
    opts = {**FAST, "strategy": "linear", "epochs": 3, "lr_head": 1e-2}
    cached = edgetl.finetune(str(data), str(tmp_path / "a"), feature_cache=True, **opts).manifest
    direct = edgetl.finetune(str(data), str(tmp_path / "b"), feature_cache=False, **opts).manifest
    assert cached["training"]["feature_cache_used"] and not direct["training"]["feature_cache_used"]
    for ha, hb in zip(cached["history"], direct["history"]):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4)
        assert ha["val"] == pytest.approx(hb["val"], rel=1e-6)
        assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=1e-4)
    assert not (tmp_path / "a" / "features.safetensors").exists()


def test_regression_run(regression_csv, tmp_path):
    b = edgetl.finetune(str(regression_csv), str(tmp_path / "r"), **{**FAST, "strategy": "full", "epochs": 2})
    assert b.task == "regression" and set(b.manifest["metrics"]["val"]) == {"mae", "rmse"}
    assert b.manifest["output"]["shape"] == [1, 1]
    state = edgetl.load_bundle(b.path).model.state_dict()
    targets = [float(l.split(",")[1]) for l in regression_csv.read_text().splitlines()[1:]]
    assert 0 < float(state["output.mean"]) < 10 and float(state["output.std"]) > 0
    res = edgetl.predict_files(b, [str(regression_csv.parent / "img0.png")])
    assert "value" in res[0] and np.isfinite(res[0]["value"])
    assert b.manifest["metrics"]["val"]["mae"] < np.std(targets) * 2


@pytest.mark.parametrize(
    "strategy_opts, groups",
    [
        ({"strategy": "partial", "unfreeze": 2}, [2, 2]),
        ({"strategy": "gradual", "gradual_every": 1}, [0, 1]),
    ],
)
def test_partial_and_gradual_runs(tmp_path, strategy_opts, groups):
    data = write_color_folder(tmp_path / "c", per_class=6)
    b = edgetl.finetune(str(data), str(tmp_path / "r"), **{**FAST, "layer_decay": 0.8, **strategy_opts})
    assert [h["trainable_groups"] for h in b.manifest["history"]] == groups
    top = {2: ["backbone.17", "backbone.18", "head"], 1: ["backbone.18", "head"], 0: ["head"]}  # 19 groups, top first
    assert [h["trainable"] for h in b.manifest["history"]] == [top[n] for n in groups]


def test_augmented_run_with_early_stopping(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=6)
    b = edgetl.finetune(
        str(data),
        str(tmp_path / "r"),
        **{**FAST, "strategy": "full", "augment": "crop-flip", "epochs": 8, "patience": 1, "lr_backbone": 1e-7, "lr_head": 1e-7},
    )
    hist = b.manifest["history"]
    assert len(hist) < 8, "early stopping never fired although nothing can improve at lr 1e-7"
    assert b.manifest["metrics"]["best_epoch"] == max(hist, key=lambda h: (h["val"]["accuracy"], -h["epoch"]))["epoch"]


# ---------------------------------------------------------------- CLI errors
def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def _assert_one_line_error(result, text):
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error:") and text in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "make_data, extra, text",
    [
        (lambda d: d / "nothing", [], "does not exist"),
        (lambda d: (d / "empty").mkdir() or d / "empty", [], "holds no images"),
        (lambda d: write_color_folder(d / "one", classes=("red",)), [], "single class"),
        (lambda d: write_color_folder(d / "c", per_class=3), ["--model", "resnet9000"], "unknown model"),
        (lambda d: write_color_folder(d / "c", per_class=3), ["--strategy", "magic"], "unknown strategy"),
        (lambda d: write_color_folder(d / "c", per_class=3), ["--model", "mobilenetv3_small_100"], "no pretrained weights"),
        (lambda d: write_color_folder(d / "c", per_class=3), ["--weights", "/nonexistent.pth"], "does not exist"),
        (lambda d: write_color_folder(d / "c", per_class=3), ["--labels", "red,blue"], "unknown label 'green'"),
    ],
)
def test_cli_bad_input_exits_2_and_leaves_no_run(tmp_path, make_data, extra, text):
    out = tmp_path / "run"
    result = _cli("finetune", make_data(tmp_path), "--out", out, "--image-size", 32, *extra)
    _assert_one_line_error(result, text)
    assert not out.exists()


def test_cli_guards_existing_runs(two_phase_bundle, tmp_path):
    data = two_phase_bundle.manifest["data"]["source"]
    _assert_one_line_error(_cli("finetune", data, "--out", two_phase_bundle.path), "already holds a finished bundle")
    unfinished = tmp_path / "u"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({"config": {}}))
    _assert_one_line_error(_cli("finetune", data, "--out", unfinished, "--image-size", 32), "holds an unfinished run")
    _assert_one_line_error(
        _cli("finetune", data, "--out", unfinished, "--image-size", 32, "--resume"), "started with other options"
    )
    _assert_one_line_error(_cli("info", tmp_path), "is not an edgetl bundle")
    _assert_one_line_error(_cli("predict", two_phase_bundle.path, tmp_path / "nope.png"), "does not exist")


def test_cli_info_and_predict(two_phase_bundle, tmp_path):
    r = _cli("info", two_phase_bundle.path)
    assert r.exit_code == 0 and "torchvision:mobilenet_v2" in r.output and "val metrics" in r.output
    r = _cli("info", two_phase_bundle.path, "--json")
    assert json.loads(r.output)["arch"] == "mobilenet_v2"
    img = write_color_folder(tmp_path / "p", per_class=1, seed=5) / "blue" / "blue_000.png"
    r = _cli("predict", two_phase_bundle.path, img, "--top-k", 3, "--json")
    assert r.exit_code == 0, r.output
    top = json.loads(r.output)[0]["top"]
    assert sorted(t[0] for t in top) == ["blue", "green", "red"]
    assert sum(t[1] for t in top) == pytest.approx(1.0, abs=1e-4)


def test_cli_finetune_happy_path(tmp_path):
    data = write_color_folder(tmp_path / "c", per_class=4)
    r = _cli(
        "finetune",
        data,
        "--out",
        tmp_path / "r",
        "--image-size",
        32,
        "--epochs",
        1,
        "--strategy",
        "linear",
        "--augment",
        "none",
        "--batch-size",
        8,
    )
    assert r.exit_code == 0, r.output + r.stderr
    assert "val: accuracy" in r.output and (tmp_path / "r" / "edgetl.json").exists()
