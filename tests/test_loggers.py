"""The optional experiment loggers, through the real libraries, read back with their own readers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgetl.errors import EdgetlError
from edgetl.train.loggers import LOGGERS, RunLoggers, check_loggers

PARAMS = {"model": "mobilenet_v2", "epochs": 3, "lr_head": 0.003, "augment": None, "classes": ["red", "blue"], "note": "x" * 9000}


def entry(epoch: int, loss: float) -> dict:
    return {
        "epoch": epoch,
        "train_loss": loss,
        "val_loss": float("nan") if epoch == 2 else loss + 0.1,
        "val": {"accuracy": 0.5 + epoch / 10, "macro_f1": 0.4 + epoch / 10, "note": "n/a"},
        "lr": {"head": 0.003 / epoch, "backbone.0": 1e-05},
        "trainable_groups": 2,
        "total_groups": 19,
        "trainable": ["head", "backbone.17"],
        "train_samples": 36,
        "seconds": 1.2,
        "best": True,
    }


def fake_bundle(root: Path) -> tuple[Path, list[Path]]:
    """A bundle folder (also the run folder, so the MLflow store lies inside it) with a few small real files."""
    (root / "figures").mkdir(parents=True, exist_ok=True)
    (root / "edgetl.json").write_text(json.dumps({"format": 1}))
    (root / "model.safetensors").write_bytes(b"\0" * 64)
    (root / "figures" / "curves.png").write_bytes(b"\x89PNG")
    return root, [root / "edgetl.json", Path("model.safetensors"), root / "figures"]


def tb_read(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run_dir / "tensorboard")).Reload()


def tb_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = tb_read(run_dir)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_both_loggers_read_back(tmp_path, capfd):
    run_dir = tmp_path / "run"
    logs = RunLoggers.open(["tensorboard", "mlflow"], run_dir, PARAMS, None, 0)
    for epoch in (1, 2, 3):
        logs.epoch(entry(epoch, 1.0 / epoch))
    bundle, files = fake_bundle(run_dir)
    final = {"val": {"accuracy": 0.9}, "test": {"accuracy": 0.85}, "best_epoch": 3, "epochs_run": 3, "tag": "x"}
    logs.finish(bundle, {**final, "wall_time_s": 12.3, "peak_rss_mb": float("inf")}, files)
    logs.close()
    logs.close()  # idempotent
    state = logs.state()
    assert json.loads(json.dumps(state)) == state
    out, err = capfd.readouterr()
    assert out == err == "", (out, err)  # no library chatter on the terminal

    tb = tb_scalars(run_dir)
    assert tb["train/loss"] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert [s for s, _ in tb["val/loss"]] == [1, 3]  # nan skipped
    assert tb["val/accuracy"] == [(1, pytest.approx(0.6)), (2, pytest.approx(0.7)), (3, pytest.approx(0.8))]
    assert tb["lr/backbone.0"] == [(1, pytest.approx(1e-5)), (2, pytest.approx(1e-5)), (3, pytest.approx(1e-5))]
    assert tb["samples_per_s"][0] == (1, pytest.approx(30.0))
    assert [v for _, v in tb["trainable_groups"]] == [2, 2, 2]
    assert tb["final/val/accuracy"] == [(3, pytest.approx(0.9))]
    assert {"final/test/accuracy", "final/best_epoch", "final/wall_time_s", "seconds"} <= set(tb)
    assert not {"val/note", "final/tag", "final/peak_rss_mb", "best", "total_groups"} & set(tb)
    acc = tb_read(run_dir)
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))
    assert "config/text_summary" in acc.Tags()["tensors"]

    assert state["mlflow"]["tracking_uri"] == (run_dir / "mlruns").resolve().as_uri()
    client = mlflow_client(state["mlflow"]["tracking_uri"])
    run = client.get_run(state["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "mobilenet_v2" and run.data.params["epochs"] == "3"
    assert json.loads(run.data.params["classes"]) == ["red", "blue"]
    assert 500 <= len(run.data.params["note"]) < 9000  # cut to MLflow's limit
    assert history(client, run.info.run_id, "train/loss") == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert [s for s, _ in history(client, run.info.run_id, "val/loss")] == [1, 3]
    assert history(client, run.info.run_id, "lr/head") == [(1, 0.003), (2, 0.0015), (3, 0.001)]
    assert run.data.metrics["final/val/accuracy"] == 0.9 and "final/peak_rss_mb" not in run.data.metrics
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert arts == {"bundle/edgetl.json", "bundle/model.safetensors", "bundle/figures"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "bundle/figures")] == ["bundle/figures/curves.png"]


def test_resume_continues_with_one_value_per_epoch(tmp_path):
    run_dir = tmp_path / "run"
    first = RunLoggers.open(["tensorboard", "mlflow"], run_dir, PARAMS, None, 0)
    try:
        for epoch in (1, 2, 3):
            first.epoch(entry(epoch, 1.0 / epoch))
        raise KeyboardInterrupt  # Ctrl-C after epoch 3 was logged but before it was saved
    except KeyboardInterrupt:
        first.close(failed=True)
    state = json.loads(json.dumps(first.state()))  # as the recipe stores it in its run file
    client = mlflow_client(state["mlflow"]["tracking_uri"])
    assert client.get_run(state["mlflow"]["run_id"]).info.status == "KILLED"

    second = RunLoggers.open(["tensorboard", "mlflow"], run_dir, {**PARAMS, "epochs": 4, "resumed": True}, state, 2)
    second.epoch(entry(3, 0.25))
    second.epoch(entry(4, 0.2))
    second.finish(run_dir, {"val": {"accuracy": 0.95}}, [])
    second.close()
    assert second.state()["mlflow"] == state["mlflow"]  # the same run

    tb = tb_scalars(run_dir)
    assert tb["train/loss"] == [(1, 1.0), (2, 0.5), (3, 0.25), (4, pytest.approx(0.2))]  # epoch 3 of the first try dropped
    run = client.get_run(state["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert [s for s, _ in history(client, run.info.run_id, "train/loss")] == [1, 2, 3, 4]  # MLflow keeps the first epoch 3
    assert run.data.params["epochs"] == "3" and run.data.params["resumed"] == "True"  # params are immutable; new ones added
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_mlflow_tracking_uri_from_the_environment(tmp_path, monkeypatch):
    uri = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    logs = RunLoggers.open(["mlflow"], tmp_path / "run", {"epochs": 1}, None, 0)
    logs.epoch(entry(1, 0.7))
    logs.close()
    assert logs.state()["mlflow"]["tracking_uri"] == uri
    assert not (tmp_path / "run" / "mlruns").exists()
    assert history(mlflow_client(uri), logs.state()["mlflow"]["run_id"], "train/loss") == [(1, 0.7)]


def test_a_broken_logger_warns_once_and_the_run_goes_on(tmp_path, capfd):
    run_dir = tmp_path / "run"
    logs = RunLoggers.open(["mlflow", "tensorboard"], run_dir, {}, None, 0)
    logs.epoch(entry(1, 1.0))
    shutil.rmtree(run_dir / "mlruns")  # the store vanishes mid-run
    logs.epoch(entry(2, 0.5))
    logs.epoch(entry(3, 0.4))
    logs.finish(run_dir, {}, [])
    logs.close(failed=True)
    err = capfd.readouterr().err
    assert err.count("warning: the mlflow logger failed") == 1 and len(err.strip().splitlines()) == 1, err
    assert [s for s, _ in tb_scalars(run_dir)["train/loss"]] == [1, 2, 3]


def test_check_loggers():
    check_loggers(LOGGERS)
    check_loggers([])
    with pytest.raises(EdgetlError, match="unknown logger 'wandb': choose from tensorboard, mlflow"):
        check_loggers(["tensorboard", "wandb"])
    with pytest.raises(EdgetlError, match="choose from"):
        RunLoggers.open(["wandb"], Path("unused"), {}, None, 0)


def test_lazy_import_no_op_and_no_telemetry(tmp_path):
    """In a fresh Python outside pytest (MLflow skips telemetry under pytest and CI by itself)."""
    code = textwrap.dedent(f"""
        import json, socket, sys
        from pathlib import Path
        attempts = []
        def record(*args, **kwargs):
            attempts.append(repr(args[:2])); raise OSError("blocked")
        socket.socket.connect = record; socket.getaddrinfo = record; socket.create_connection = record
        import edgetl.train.loggers as L
        lazy = [m for m in ("tensorboard", "mlflow", "torch.utils.tensorboard") if m in sys.modules]
        run = Path({str(tmp_path / "run")!r})
        empty = L.RunLoggers.open([], run, {{}}, None, 0)
        empty.epoch({{"epoch": 1, "train_loss": 1.0}}); empty.finish(run, {{}}, []); empty.close()
        lazy += [m for m in ("tensorboard", "mlflow") if m in sys.modules] + [str(p) for p in [run] if p.exists()]
        logs = L.RunLoggers.open(["mlflow"], run, {{"epochs": 1}}, None, 0)
        logs.epoch({{"epoch": 1, "train_loss": 1.0}}); logs.finish(run, {{}}, []); logs.close()
        import mlflow.telemetry.client as t
        print(json.dumps({{"lazy": lazy, "empty": empty.state(), "telemetry": repr(t.get_telemetry_client()), "attempts": attempts}}))
    """)
    hidden = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"lazy": [], "empty": {}, "telemetry": "None", "attempts": []}, got
    assert not (tmp_path / "config" / "mlflow").exists()  # no installation id written either
    assert r.stderr == "", r.stderr


def test_a_real_run_logs_to_both(tmp_path):
    """`edgetl finetune --log tensorboard --log mlflow` on the colour task: every epoch, the options and the bundle
    read back with TensorBoard's and MLflow's own readers."""
    from conftest import FAST, write_color_folder
    from typer.testing import CliRunner

    from edgetl.cli import app

    data = write_color_folder(tmp_path / "c", per_class=6)
    run = tmp_path / "run"
    argv = ["finetune", str(data), "--out", str(run), "--model", FAST["model"], "--image-size", "32", "--batch-size", "8",
            "--strategy", "linear", "--epochs", "3", "--augment", "none", "--patience", "0", "--warmup-epochs", "0",
            "--log", "tensorboard", "--log", "mlflow"]  # fmt: skip
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 0, r.output
    m = json.loads((run / "edgetl.json").read_text())
    assert m["training"]["log"] == ["tensorboard", "mlflow"]
    val = tb_scalars(run)["val/accuracy"]
    assert [step for step, _ in val] == [1, 2, 3]
    assert [v for _, v in val] == pytest.approx([h["val"]["accuracy"] for h in m["history"]])
    state = json.loads((run / "run.json").read_text())["loggers"]["mlflow"]
    client = mlflow_client(state["tracking_uri"])
    got = client.get_run(state["run_id"])
    assert got.info.status == "FINISHED" and got.data.params["strategy"] == "linear"
    logged = history(client, state["run_id"], "val/loss")
    assert [step for step, _ in logged] == [1, 2, 3]
    assert [v for _, v in logged] == pytest.approx([h["val_loss"] for h in m["history"]])
    arts = {a.path for a in client.list_artifacts(state["run_id"], "bundle")}
    assert {"bundle/edgetl.json", "bundle/model.safetensors", "bundle/figures"} <= arts
    r = CliRunner().invoke(app, ["finetune", str(data), "--out", str(tmp_path / "x"), "--log", "wandb"])
    assert r.exit_code == 2 and "unknown logger 'wandb'" in r.output and not (tmp_path / "x").exists()
