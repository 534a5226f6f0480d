import pytest
import torch

from edgetl.errors import EdgetlError
from edgetl.model import ModelSpec, build_model
from edgetl.train import strategy
from edgetl.train.config import FinetuneConfig


def cfg(**kw):
    return FinetuneConfig(data="x", out="y", **kw).for_task("classification")


def test_trainable_groups_per_strategy():
    n = 10
    assert [strategy.trainable_groups(cfg(strategy="linear"), e, n) for e in range(3)] == [0, 0, 0]
    assert strategy.trainable_groups(cfg(strategy="full"), 0, n) == 10
    assert strategy.trainable_groups(cfg(strategy="partial", unfreeze=3), 5, n) == 3
    assert [strategy.trainable_groups(cfg(strategy="gradual", gradual_every=2), e, n) for e in range(6)] == [0, 0, 1, 1, 2, 2]
    tp = cfg(strategy="two-phase", epochs=6)
    assert tp.phase1_epochs == 2
    assert [strategy.trainable_groups(tp, e, n) for e in range(4)] == [0, 0, 10, 10]
    assert strategy.head_lr_scale(tp, 1) == 1.0 and strategy.head_lr_scale(tp, 2) == 0.1


def test_lr_schedule_warms_up_and_restarts_per_phase():
    c = cfg(strategy="two-phase", epochs=4, head_epochs=2, warmup_epochs=1.0)
    f = [strategy.lr_factor(c, e, s, 10) for e in range(4) for s in range(10)]
    assert f[0] < f[5] < f[9] < f[10]
    assert f[10] == pytest.approx(1.0, abs=0.01)  # end of warm-up
    assert f[19] < 0.1  # cosine near its floor at the end of phase 1
    assert f[20] < f[25]  # phase 2 warms up again
    assert min(f) >= 0.01 - 1e-9


def test_config_validation():
    for kw, msg in [
        (dict(strategy="nope"), "unknown strategy"),
        (dict(augment="nope"), "unknown augmentation"),
        (dict(epochs=0), "--epochs"),
        (dict(strategy="two-phase", epochs=1), "two-phase needs"),
        (dict(weights="w.pth", pretrained=False), "contradict"),
    ]:
        with pytest.raises(EdgetlError, match=msg):
            cfg(**kw).validate()


@pytest.fixture(scope="module")
def model_and_groups():
    model, bb = build_model(ModelSpec("timm", "mobilenetv3_small_050", "classification", 3, 0.0), pretrained=False)
    return model, bb.groups


def _step(model, groups, c, n_trainable):
    strategy.apply_freezing(model, groups, n_trainable)
    opt = torch.optim.AdamW(strategy.param_groups(model, groups, c))
    x = torch.randn(4, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def test_linear_freezes_backbone_including_batchnorm(model_and_groups):
    model, groups = model_and_groups
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head[1].weight.clone()
    _step(model, groups, cfg(strategy="linear"), 0)
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "backbone (incl. BN running stats) changed"
    assert not torch.equal(head_before, model.head[1].weight)


def test_partial_trains_only_top_groups(model_and_groups):
    model, groups = model_and_groups
    before = {n: p.clone() for n, p in model.backbone.named_parameters()}
    _step(model, groups, cfg(strategy="partial", unfreeze=2), 2)
    top = {f"{m}.{p}" for g in groups[-2:] for m in g for p, _ in model.backbone.get_submodule(m).named_parameters()}
    for n, p in model.backbone.named_parameters():
        assert torch.equal(before[n], p) != (n in top), n


def test_discriminative_lrs_and_layer_decay(model_and_groups):
    model, groups = model_and_groups
    c = cfg(lr_head=1e-2, lr_backbone=1e-4, layer_decay=0.5, weight_decay=0.05)
    pg = {g["name"]: g for g in strategy.param_groups(model, groups, c)}
    n = len(groups)
    assert pg["head.decay"]["lr"] == 1e-2
    assert pg[f"backbone.{n - 1}.decay"]["lr"] == pytest.approx(1e-4)
    assert pg[f"backbone.{n - 3}.decay"]["lr"] == pytest.approx(1e-4 * 0.25)
    assert pg["head.no_decay"]["weight_decay"] == 0.0 and pg["head.decay"]["weight_decay"] == 0.05
    covered = sum(len(g["params"]) for g in pg.values())
    assert covered == len(list(model.backbone.parameters())) + len(list(model.head.parameters()))
