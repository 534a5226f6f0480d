"""What a run shows: the pictures in the bundle, evaluation.json, `edgetl info`, `edgetl report` in a real
headless browser, and the overfitting check on a run built to overfit."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, REPO, write_color_folder, write_random_label_folder
from PIL import Image
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.train.diagnose import diagnose
from edgetl.train.figures import phase_changes

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def shown_run(tmp_path_factory):
    """A healthy two-phase run on the colour task with a test split: every classification picture applies."""
    root = tmp_path_factory.mktemp("fig")
    data = write_color_folder(root / "c", per_class=14)
    test = write_color_folder(root / "t", per_class=4, seed=5)
    for cls in test.iterdir():
        shutil.copytree(cls, data / "test" / cls.name)
        shutil.move(str(data / cls.name), str(data / "train" / cls.name))
    opts = {
        **FAST,
        "strategy": "two-phase",
        "epochs": 3,
        "head_epochs": 1,
        "lr_head": 3e-2,
        "batch_size": 4,
        "lr_backbone": 1e-5,
        "figures": True,
    }
    return edgetl.finetune(str(data), str(root / "run"), **opts)


def _png(path: Path) -> Image.Image:
    im = Image.open(path)
    assert im.format == "PNG" and im.width >= 400 and im.height >= 150, (path, im.size)
    return im


def test_the_bundle_holds_the_pictures_and_the_evaluation(shown_run):
    m = shown_run.manifest
    assert set(m["figures"]) == {"curves", "learning_rates", "confusion", "per_class", "worst"}
    for rel in m["figures"].values():
        im = _png(shown_run.path / rel).convert("L")
        assert len(np.unique(np.asarray(im))) > 20  # drawn, not blank
    ev = json.loads((shown_run.path / "evaluation.json").read_text())
    assert ev["split"] == "test" and ev["samples"] == 12 == int(np.sum(ev["confusion"]))
    assert ev["labels"] == m["labels"] and [r["support"] for r in ev["per_class"]] == [4, 4, 4]
    assert ev["accuracy"] == pytest.approx(m["metrics"]["test"]["accuracy"])
    wrong = 12 - int(np.trace(ev["confusion"]))
    assert len(ev["worst"]) == min(wrong, 12) and all(w["true"] != w["predicted"] for w in ev["worst"])
    confidences = [w["confidence"] for w in ev["worst"]]
    assert confidences == sorted(confidences, reverse=True)
    # per epoch: train metrics beside val ones, and which groups trained; the phase change is where the backbone thaws
    assert all(set(h["train"]) == {"accuracy", "macro_f1"} for h in m["history"])
    assert [h["trainable"][-1] for h in m["history"]] == ["head"] * 3 and len(m["history"][1]["trainable"]) == 20
    assert phase_changes(m["history"]) == [(2, "19/19 groups train")]


def test_a_regression_run_draws_predicted_against_true(regression_csv, tmp_path):
    b = edgetl.finetune(str(regression_csv), str(tmp_path / "r"), **{**FAST, "strategy": "linear", "epochs": 2, "figures": True})
    assert set(b.manifest["figures"]) == {"curves", "learning_rates", "predicted_vs_true"}
    _png(b.path / b.manifest["figures"]["predicted_vs_true"])
    ev = json.loads((b.path / "evaluation.json").read_text())
    assert ev["task"] == "regression" and len(ev["points"]["true"]) == ev["samples"] == b.manifest["data"]["splits"]["val"]
    assert ev["mae"] == pytest.approx(b.manifest["metrics"]["val"]["mae"], rel=1e-5)


def test_info_lists_the_pictures(shown_run):
    r = runner.invoke(app, ["info", str(shown_run.path)], terminal_width=200)
    assert r.exit_code == 0, r.output
    for name, rel in shown_run.manifest["figures"].items():
        assert f"figure {name}" in r.output and rel in r.output


def test_report_is_one_self_contained_page(shown_run, tmp_path):
    r = runner.invoke(app, ["report", str(shown_run.path)])
    assert r.exit_code == 0, r.output
    page = (shown_run.path / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) == len(shown_run.manifest["figures"]) - 1  # per_class is on the page as a table
    assert "<script" not in page and "http://" not in page and "https://" not in page  # nothing to fetch
    assert "No overfitting found" in page and ">blue<" in page  # the diagnosis and the per-class table
    # a file the user owns is never replaced
    own = tmp_path / "mine.html"
    own.write_text("<html>my notes</html>")
    r = runner.invoke(app, ["report", str(shown_run.path), "--out", str(own)])
    assert r.exit_code == 2 and "did not write it" in r.output and own.read_text() == "<html>my notes</html>"


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("EDGETL_REQUIRE_CHROMIUM"), reason="no chromium here")
def test_report_renders_its_pictures_in_a_headless_browser(shown_run, tmp_path):
    """Chromium loads the page offline and decodes every picture (naturalWidth > 0); a screenshot is taken."""
    assert CHROMIUM, "EDGETL_REQUIRE_CHROMIUM is set but chromium is not installed"
    page = tmp_path / "report.html"
    edgetl.write_report(shown_run.path, page)
    probe = tmp_path / "probe.html"  # the page plus a probe that writes what the browser decoded into the DOM
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load', () => { document.body.setAttribute('data-decoded', "
            "Array.from(document.images).map(i => i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'no').join(' ')); "
            "});</script></body>",
        )
    )
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    decoded = re.search(r'data-decoded="([^"]*)"', dom)
    assert decoded, dom[-500:]
    sizes = decoded.group(1).split()
    expected = [Image.open(shown_run.path / rel).size for n, rel in shown_run.manifest["figures"].items() if n != "per_class"]
    assert sorted(sizes) == sorted(f"{w}x{h}" for w, h in expected)  # each picture decoded at its own size
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    im = np.asarray(Image.open(shot).convert("RGB"))
    assert im.shape[:2] == (2400, 1280) and len(np.unique(im.reshape(-1, 3), axis=0)) > 200


def test_the_overfitting_check_fires_on_a_run_built_to_overfit(tmp_path):
    """Labels drawn at random: the head can only memorise the training images. With a high LR, no weight decay,
    no dropout and many cheap epochs on cached features, the training loss goes to ~0 while validation loss climbs."""
    noisy = write_random_label_folder(tmp_path, per_class=10)
    opts = {
        **FAST,
        "strategy": "linear",
        "epochs": 16,
        "lr_head": 0.05,
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "dropout": 0.0,
    }
    b = edgetl.finetune(str(noisy), str(tmp_path / "run"), **opts)
    found = {d["kind"]: d for d in b.manifest["training"]["diagnostics"]}
    assert "overfitting" in found, b.manifest["training"]["diagnostics"]
    assert found["overfitting"]["rising_epochs"] >= 3 and "--weight-decay" in found["overfitting"]["message"]
    hist = b.manifest["history"]
    assert hist[-1]["train_loss"] < 0.2 * hist[0]["train_loss"]  # it memorised the training set
    assert min(h["val_loss"] for h in hist) < hist[-1]["val_loss"]


def test_the_demo_run_is_quiet():
    """The real demo's per-epoch history (benchmarks/results/demo_history.jsonl: `make demo`, then
    `.venv/bin/python benchmarks/demo_history.py runs/demo`) gives no finding."""
    path = REPO / "benchmarks" / "results" / "demo_history.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    meta, history = rows[0], rows[1:]
    best = {"metric": meta["best_metric"], "epoch": meta["best_epoch"]}
    findings = diagnose(history, "classification", meta["strategy"], best, np.asarray(meta["train_targets"]),
                        np.asarray(meta["val_targets"]))  # fmt: skip
    assert findings == [] and len(history) == 5
