"""Speech recognition data: metadata.csv folders and path,text CSVs, skipped clips and transcripts, the text
normalisation behind WER/CER, the espeak-ng sentence generator, and the built-in tiny.en transcribing it."""

import json
import os

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from edgetl.cli import app
from edgetl.data.keywords import MISSING, espeak_binary
from edgetl.data.transcripts import error_rates, looks_like_transcripts, normalise, scan_transcripts
from edgetl.errors import EdgetlError

runner = CliRunner()


def _clip(path, seconds=0.5, sr=22050, channels=2, seed=0):
    """A stereo 22.05 kHz noise burst: any rate and channel count must do."""
    x = np.random.default_rng(seed).normal(0, 0.1, size=(int(seconds * sr), channels)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, x, sr)


def _folder(root, rows, header="file_name,transcription,split"):
    root.mkdir(parents=True, exist_ok=True)
    for r in rows:
        if r[0] and not r[0].startswith("missing"):
            _clip(root / r[0])
    (root / "metadata.csv").write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return root


def test_an_audiofolder_with_metadata_and_splits(tmp_path):
    rows = [(f"a/{i}.wav", f"say number {i}", s) for i, s in enumerate(["train"] * 6 + ["validation", "test"])]
    rows += [("a/empty.wav", "", "train")]  # an empty transcription: skipped and counted
    src = scan_transcripts(_folder(tmp_path / "d", rows), max_bad_fraction=0.2)
    assert {k: len(v) for k, v in src.splits.items()} == {"train": 6, "val": 1, "test": 1}
    assert src.splits["val"][0].text == "say number 6" and src.splits["train"][0].path == str(tmp_path / "d" / "a" / "0.wav")
    first = src.waveforms[src.splits["train"][0].path]
    assert first.dtype == np.float32 and first.ndim == 1 and len(first) == 8000  # 16 kHz mono
    assert src.skipped == [(str(tmp_path / "d" / "a" / "empty.wav"), "empty transcription")]
    assert looks_like_transcripts(tmp_path / "d") and not looks_like_transcripts(tmp_path / "d" / "a")


def test_a_path_text_csv_without_splits(tmp_path):
    for i in range(3):
        _clip(tmp_path / "clips" / f"{i}.flac", seed=i)
    csv = tmp_path / "t.csv"
    csv.write_text("path,text\n" + "".join(f"clips/{i}.flac,  hello   world {i} \n" for i in range(3)))
    src = scan_transcripts(csv)
    assert [t.text for t in src.splits["train"]] == ["hello world 0", "hello world 1", "hello world 2"]
    assert src.splits["val"] == [] and looks_like_transcripts(csv)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("missing.wav", "hi", "train"), ("missing2.wav", "ho", "train")], "2 of 2 rows have no usable clip"),
        ([("a.wav", "hi", "holdout")], "split 'holdout' is not one of train, val, test"),
        ([("a.wav", "hi", "test")], "no readable training clip"),
    ],
)
def test_bad_transcription_data_is_one_line(tmp_path, rows, message):
    with pytest.raises(EdgetlError, match=message) as exc:
        scan_transcripts(_folder(tmp_path / "d", rows))
    assert "\n" not in str(exc.value) and str(tmp_path / "d" / "metadata.csv") in str(exc.value)


def test_a_folder_without_transcripts_says_what_it_needs(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(EdgetlError, match="file_name,transcription"):
        scan_transcripts(tmp_path / "d")


def test_normalisation_and_error_rates():
    assert normalise("Set the Quelner mount to 40%.") == "set the quelner mount to 40%"
    assert normalise("set the quellmar valve to forty percent") == "set the quellmar valve to 40%"
    assert normalise("Hmm, don't stop!") == "do not stop"
    rates = error_rates(["set the quellmar valve to forty percent", "stop"], ["Set the quelner mount to 40%.", "Stop."])
    assert rates["wer"] == pytest.approx(2 / 7)  # 2 substitutions in 7 normalised reference words
    assert 0 < rates["cer"] < rates["wer"]
    assert error_rates(["a b"], [""])["wer"] == 1.0


def _espeak_or_skip():
    try:
        espeak_binary()
    except EdgetlError as exc:
        if str(exc) != MISSING or os.environ.get("EDGETL_REQUIRE_ESPEAK"):
            raise
        pytest.skip("espeak-ng is not installed")


def test_sentences_generator_and_the_builtin_recogniser(tmp_path):
    """`edgetl data sentences` speaks every sentence with each voice, split by voice, in the audiofolder layout;
    the built-in tiny.en (the full encoder-decoder) transcribes a plain sentence of it word for word."""
    _espeak_or_skip()
    text = tmp_path / "s.txt"
    text.write_text("# plant vocabulary\nplease turn on the kitchen lights\nopen the quellmar valve on line four\n")
    out = tmp_path / "ds"
    r = runner.invoke(app, ["data", "sentences", str(text), "--out", str(out), "--voices", "3"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "voices.json").read_text())
    voices = meta["splits"]
    assert [len(voices[s]) for s in ("train", "val", "test")] == [1, 1, 1] and meta["clips"] == {"train": 2, "val": 2, "test": 2}
    src = scan_transcripts(out)
    assert {k: len(v) for k, v in src.splits.items()} == {"train": 2, "val": 2, "test": 2} and not src.skipped
    again = tmp_path / "again"
    assert runner.invoke(app, ["data", "sentences", str(text), "--out", str(again), "--voices", "3"]).exit_code == 0
    assert (out / "metadata.csv").read_bytes() == (again / "metadata.csv").read_bytes()
    first = sorted((out / "test").glob("*.wav"))[0]
    assert first.read_bytes() == (again / "test" / first.name).read_bytes()  # same seed, same bytes
    r = runner.invoke(app, ["data", "sentences", str(text), "--out", str(out), "--voices", "3"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    held = tmp_path / "held"  # half the sentences only for the val and test voices
    r = runner.invoke(app, ["data", "sentences", str(text), "--out", str(held), "--voices", "3", "--held-out-sentences", "0.5"])
    assert r.exit_code == 0, r.output
    meta = json.loads((held / "voices.json").read_text())
    assert len(meta["held_out_sentences"]) == 1 and meta["clips"] == {"train": 1, "val": 2, "test": 2}
    rows = (held / "metadata.csv").read_text().splitlines()
    assert rows[0] == "file_name,transcription,split,voice,sentence"
    assert not any(r.startswith("train/") and r.endswith("held-out") for r in rows)
    assert sum(r.endswith(",held-out") for r in rows) == 2

    from edgetl.family.speech_asr import load_recognizer

    rec = load_recognizer("whisper-tiny.en")
    plain = [t for t in src.splits["train"] + src.splits["test"] if t.text.startswith("please")]
    heard = rec.transcribe([src.waveforms[t.path] for t in plain])
    assert error_rates([t.text for t in plain], heard)["wer"] <= 0.2, heard

    # a 36 s recording: one sentence at the start, one after 33 s of quiet room noise -> two windows, both heard
    from edgetl_runtime.audio import SAMPLE_RATE, write_wav

    a = src.waveforms[plain[0].path]
    b = next(src.waveforms[t.path] for t in src.splits["test"] if "quellmar" in t.text)
    quiet = np.random.default_rng(0).normal(0, 1e-3, 36 * SAMPLE_RATE)
    quiet[: len(a)] += a
    quiet[33 * SAMPLE_RATE : 33 * SAMPLE_RATE + len(b)] += b[: 3 * SAMPLE_RATE]
    write_wav(tmp_path / "long.wav", quiet)
    r = runner.invoke(app, ["transcribe", str(tmp_path / "long.wav"), "--json"])
    assert r.exit_code == 0, r.output
    [got] = json.loads(r.output)
    assert got["seconds"] == 36.0 and "kitchen lights" in normalise(got["text"]), got
    assert "valve" in normalise(got["text"]) or "line" in normalise(got["text"]), got


def test_long_clips_are_cut_at_quiet_moments():
    from edgetl_runtime.audio import SAMPLE_RATE, split_windows

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, 70 * SAMPLE_RATE).astype(np.float32)
    for gap in (27.0, 54.0):  # 100 ms pauses inside the last 5 s of each window
        x[int(gap * SAMPLE_RATE) : int((gap + 0.1) * SAMPLE_RATE)] = 0.0
    pieces = split_windows(x, 30.0)
    assert len(pieces) == 3 and all(len(p) <= 30 * SAMPLE_RATE for p in pieces)
    assert np.array_equal(np.concatenate(pieces), x)
    cuts = np.cumsum([len(p) for p in pieces])[:-1] / SAMPLE_RATE
    assert 27.0 <= cuts[0] <= 27.1 and 54.0 <= cuts[1] <= 54.1
    assert [len(p) for p in split_windows(x[: 10 * SAMPLE_RATE])] == [10 * SAMPLE_RATE]


def test_a_transcription_csv_without_val_is_split(tmp_path):
    """No split column: the recipe holds out a seeded validation fraction of the clips."""
    from edgetl.train.config import FinetuneConfig
    from edgetl.train.transcribe import TranscribeRecipe

    for i in range(5):
        _clip(tmp_path / "c" / f"{i}.wav", seed=i)
    csv = tmp_path / "t.csv"
    csv.write_text("path,text\n" + "".join(f"c/{i}.wav,clip {i}\n" for i in range(5)))
    one = tmp_path / "one.csv"
    one.write_text("path,text\nc/0.wav,clip 0\n")
    with pytest.raises(EdgetlError, match="one training clip"):
        TranscribeRecipe(FinetuneConfig(data=str(one), out=str(tmp_path / "r1"), strategy="full")).setup()
    assert not (tmp_path / "r1").exists()
    recipe = TranscribeRecipe(FinetuneConfig(data=str(csv), out=str(tmp_path / "r5"), strategy="full", val_fraction=0.2))
    recipe.setup()
    assert [len(recipe.splits[s]) for s in ("train", "val")] == [4, 1] and "test" not in recipe.splits
    assert recipe.labels["val"][0][0] == recipe.rec.tokenizer.token_to_id("<|notimestamps|>")  # tiny.en: no language token
    assert recipe.labels["val"][0][-1] == 50256  # <|endoftext|>
