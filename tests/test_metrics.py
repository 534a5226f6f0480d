import numpy as np
from sklearn.metrics import f1_score

from edgetl_runtime.metrics import classification_metrics, is_better, regression_metrics


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5))
    logits[np.arange(200), labels] += rng.normal(1.0, 1.0, 200)
    m = classification_metrics(logits, labels, 5)
    pred = logits.argmax(1)
    assert m["accuracy"] == np.mean(pred == labels)
    assert np.isclose(m["macro_f1"], f1_score(labels, pred, average="macro"))


def test_regression_metrics():
    m = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]))
    assert np.isclose(m["mae"], 1.0)
    assert np.isclose(m["rmse"], np.sqrt(5 / 3))


def test_is_better_direction():
    assert is_better("classification", 0.9, 0.8) and not is_better("classification", 0.7, 0.8)
    assert is_better("regression", 0.1, 0.2) and not is_better("regression", 0.3, 0.2)
    assert is_better("regression", 5.0, None)
