"""The after-training diagnosis: overfitting and never beating a trivial baseline."""

from __future__ import annotations

import numpy as np

from edgetl.train.diagnose import baseline, diagnose, overfitting, underfitting


def _history(train: list[float], val: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(zip(train, val))]


def test_overfitting_fires_on_rising_val_and_falling_train_loss():
    h = _history([1.0, 0.6, 0.4, 0.3, 0.2, 0.1], [0.9, 0.7, 0.75, 0.8, 0.9, 1.0])
    found = overfitting(h, "full", best_epoch=2)
    assert found is not None and found["rising_epochs"] == 4 and found["val_loss_best_epoch"] == 2
    assert "keeps epoch 2" in found["message"] and "--augment strong" in found["message"]
    assert "--weight-decay" in overfitting(h, "linear", 2)["message"]


def test_overfitting_fires_on_a_drift_above_the_best():
    h = _history([1.0, 0.6, 0.5, 0.45, 0.3], [0.9, 0.6, 0.8, 0.7, 0.85])  # never 3 in a row, but 42% above its best
    found = overfitting(h, "two-phase", best_epoch=2)
    assert found is not None and "above its best (epoch 2)" in found["message"]


def test_a_healthy_run_is_quiet():
    h = _history([1.0, 0.7, 0.5, 0.4, 0.35], [0.9, 0.7, 0.6, 0.58, 0.59])
    assert overfitting(h, "full", 4) is None
    train, val = np.array([0, 1, 2] * 10), np.array([0, 1, 2] * 3)
    assert diagnose(h, "classification", "full", {"metric": 0.9, "epoch": 4}, train, val) == []


def test_underfitting_against_the_majority_class_and_the_mean():
    train, val = np.array([0] * 8 + [1] * 2), np.array([0] * 7 + [1] * 3)
    assert baseline("classification", train, val) == ("accuracy", 0.7)
    found = underfitting("classification", 0.7, train, val, "linear")
    assert found["kind"] == "underfitting" and "majority class" in found["message"] and "--strategy partial" in found["message"]
    assert underfitting("classification", 0.8, train, val, "linear") is None
    metric, mae = baseline("regression", np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert metric == "mae" and mae == 1.0
    assert underfitting("regression", 1.2, np.array([1.0, 3.0]), np.array([2.0, 4.0]), "full")["baseline"] == {"mae": 1.0}
    assert underfitting("regression", 0.5, np.array([1.0, 3.0]), np.array([2.0, 4.0]), "full") is None
