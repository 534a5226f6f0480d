import numpy as np
import pytest
from conftest import write_color_folder
from PIL import Image

from edgetl.data.augment import augment_image
from edgetl.data.builtin import resolve_builtin
from edgetl.data.preprocess import resolve_preprocess
from edgetl.data.sources import scan_images, split_train_val
from edgetl.errors import EdgetlError
from edgetl_runtime.image import preprocess_image


def test_class_folder_scan(color_folder):
    src = scan_images(color_folder)
    assert src.task == "classification"
    assert src.labels == ["blue", "green", "red"]
    assert len(src.splits["train"]) == 36 and set(src.splits) == {"train"}


def test_split_folders(tmp_path):
    write_color_folder(tmp_path / "d" / "train", per_class=6)
    write_color_folder(tmp_path / "d" / "validation", per_class=2, seed=1)
    write_color_folder(tmp_path / "d" / "test", per_class=2, seed=2)
    src = scan_images(tmp_path / "d")
    assert {k: len(v) for k, v in src.splits.items()} == {"train": 18, "val": 6, "test": 6}


def test_stratified_split_is_seeded_and_stratified(color_folder):
    samples = scan_images(color_folder).splits["train"]
    tr1, va1 = split_train_val(samples, 0.25, seed=3, stratify=True)
    tr2, va2 = split_train_val(samples, 0.25, seed=3, stratify=True)
    assert [s.path for s in va1] == [s.path for s in va2]
    assert sorted(s.label for s in va1) == ["blue"] * 3 + ["green"] * 3 + ["red"] * 3
    assert not {s.path for s in tr1} & {s.path for s in va1}
    _, va3 = split_train_val(samples, 0.25, seed=4, stratify=True)
    assert [s.path for s in va3] != [s.path for s in va1]


def test_csv_classification_with_split_column(tmp_path, color_folder):
    rows = ["path,label,split"]
    for i, p in enumerate(sorted(color_folder.rglob("*.png"))):
        rows.append(f"{p.relative_to(tmp_path)},{p.parent.name},{'val' if i % 4 == 0 else ''}")
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    src = scan_images(csv)
    assert src.labels == ["blue", "green", "red"]
    assert len(src.splits["val"]) == 9 and len(src.splits["train"]) == 27


def test_csv_regression(regression_csv):
    src = scan_images(regression_csv)
    assert src.task == "regression" and not src.labels
    assert all(isinstance(s.target, float) for s in src.splits["train"])


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no images"),
        (lambda d: write_color_folder(d / "one", classes=("red",)), "single class"),
        (lambda d: (d / "x.txt").write_text("hi") and d / "x.txt", "neither a folder nor a .csv"),
        (
            lambda d: (d / "h.csv").write_text("file,cls\na.png,x\n") and d / "h.csv",
            "expected path,label (classification) or path,target",
        ),
        (lambda d: (d / "t.csv").write_text("path,target\na.png,abc\n") and d / "t.csv", "t.csv:2: target 'abc' is not a number"),
        (lambda d: (d / "e.csv").write_text("path,label\na.png,\n") and d / "e.csv", "e.csv:2: empty label"),
    ],
)
def test_bad_sources_give_one_line_errors(tmp_path, setup, message):
    with pytest.raises(EdgetlError) as info:
        scan_images(setup(tmp_path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_labels(tmp_path, color_folder):
    with pytest.raises(EdgetlError, match="unknown label 'red'"):
        scan_images(color_folder, labels=["blue", "green"])
    csv = tmp_path / "u.csv"
    csv.write_text(
        "path,label,split\ncolors/red/red_000.png,red,\ncolors/blue/blue_000.png,blue,\ncolors/green/green_000.png,green,val\n"
    )
    with pytest.raises(EdgetlError, match="unknown label 'green' in val"):
        scan_images(csv)


def test_corrupt_images_are_skipped_and_counted(color_folder):
    (color_folder / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (color_folder / "blue" / "text.jpg").write_text("hello")
    src = scan_images(color_folder)
    assert len(src.skipped) == 2 and len(src.splits["train"]) == 36


def test_too_many_corrupt_images_stop(color_folder):
    for i in range(10):
        (color_folder / "red" / f"broken{i}.png").write_bytes(b"junk")
    with pytest.raises(EdgetlError, match="10 of 46 images are unreadable"):
        scan_images(color_folder, max_bad_fraction=0.1)
    assert len(scan_images(color_folder, max_bad_fraction=0.5).skipped) == 10


def test_builtin_digits_is_the_real_dataset():
    root = resolve_builtin("builtin:digits")
    train = list((root / "train").rglob("*.png"))
    test = list((root / "test").rglob("*.png"))
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(i) for i in range(10)]
    assert Image.open(test[0]).size == (8, 8)
    with pytest.raises(EdgetlError, match="unknown built-in dataset"):
        resolve_builtin("builtin:nope")


def test_resolve_preprocess_precedence():
    pre = {"input_size": (3, 224, 224), "interpolation": "bicubic", "crop_pct": 0.875, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    spec = resolve_preprocess(pre, {"image_size": 96})
    assert spec["input_size"] == [3, 96, 96] and spec["interpolation"] == "bicubic"
    assert spec["mean"] == [0.5] * 3 and spec["resize"] == 109
    assert resolve_preprocess(None)["input_size"] == [3, 224, 224]


def test_preprocess_image_shape_and_normalisation():
    spec = resolve_preprocess({"mean": (0.5,) * 3, "std": (0.25,) * 3}, {"image_size": 20})
    img = Image.fromarray(np.full((40, 60, 3), 255, np.uint8))
    arr = preprocess_image(img, spec)
    assert arr.shape == (3, 20, 20) and arr.dtype == np.float32
    assert np.allclose(arr, (1.0 - 0.5) / 0.25)


def test_augmentation_is_deterministic_per_seed():
    spec = resolve_preprocess(None, {"image_size": 24})
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    a = augment_image(img, spec, "strong", np.random.default_rng([0, 1, 2]))
    b = augment_image(img, spec, "strong", np.random.default_rng([0, 1, 2]))
    c = augment_image(img, spec, "strong", np.random.default_rng([0, 2, 2]))
    assert a.shape == (3, 24, 24) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_evenly_spaced_covers_the_whole_list():
    from edgetl.data.sources import evenly_spaced

    rows = [f"class{i // 10}" for i in range(100)]  # sorted by label, as splits.json is
    picked = evenly_spaced(rows, 20)
    assert len(picked) == 20 and len(set(picked)) == 10
    assert evenly_spaced(rows, None) == rows and evenly_spaced(rows, 500) == rows
