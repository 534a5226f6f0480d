import os
from pathlib import Path

import pytest
import torch

from edgetl.data.preprocess import resolve_preprocess
from edgetl.errors import EdgetlError
from edgetl.family import get_family, resolve_model
from edgetl.family.vision import TIMM_CHECKED, TORCHVISION_CHECKED
from edgetl.family.weights import TORCHVISION_MOBILENET_V2, read_state_dict
from edgetl_runtime.image import preprocess_image


def test_resolve_model_names():
    assert resolve_model("mobilenet_v2") == ("torchvision", "mobilenet_v2")
    assert resolve_model("mobilenetv3_small_100") == ("timm", "mobilenetv3_small_100")
    assert resolve_model("tv:mobilenet_v3_small") == ("torchvision", "mobilenet_v3_small")
    assert resolve_model("timm:mobilenetv2_100") == ("timm", "mobilenetv2_100")
    with pytest.raises(EdgetlError, match="unknown model 'resnet9000'"):
        resolve_model("resnet9000")
    with pytest.raises(EdgetlError, match="not a torchvision architecture"):
        resolve_model("tv:mobilenetv2_100")


@pytest.mark.parametrize("name", [f"timm:{a}" for a in TIMM_CHECKED] + [f"tv:{a}" for a in TORCHVISION_CHECKED])
def test_every_checked_arch_builds_headless_with_complete_groups(name):
    family, arch = resolve_model(name)
    bb = get_family(family).build(arch, weights=None, pretrained=False)
    out = bb.module.eval()(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, bb.num_features)
    owner = {}
    for gi, group in enumerate(bb.groups):
        for mod in group:
            for pname, _ in bb.module.get_submodule(mod).named_parameters():
                key = f"{mod}.{pname}"
                assert key not in owner, f"{key} in two groups"
                owner[key] = gi
    assert set(owner) == {n for n, _ in bb.module.named_parameters()}
    assert len(bb.groups) >= 10
    assert list(bb.preprocess["input_size"][1:]) == [224, 224]


def _imagenet_logits(backbone_module, x):
    sd = read_state_dict(TORCHVISION_MOBILENET_V2.locate())
    with torch.no_grad():
        feats = backbone_module.eval()(x)
    return feats @ sd["classifier.1.weight"].T + sd["classifier.1.bias"]


def test_builtin_weights_are_real_imagenet_mobilenet_v2():
    """The shipped weights, loaded through the family and our numpy preprocessing, see a cat."""
    from PIL import Image
    from skimage import data as skdata

    bb = get_family("torchvision").build("mobilenet_v2", weights=None, pretrained=True)
    assert bb.weights.kind == "builtin" and bb.weights.sha256 == TORCHVISION_MOBILENET_V2.sha256
    spec = resolve_preprocess(bb.preprocess)
    x = torch.from_numpy(preprocess_image(Image.fromarray(skdata.chelsea()), spec))[None]
    probs = torch.softmax(_imagenet_logits(bb.module, x), 1)[0]
    assert int(probs.argmax()) in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    assert float(probs.max()) > 0.5


def test_builtin_weights_map_onto_timm_mobilenetv2_100():
    tv = get_family("torchvision").build("mobilenet_v2", None, True)
    tm = get_family("timm").build("mobilenetv2_100", None, True)
    assert tm.weights.kind == "builtin"
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = tv.module.eval()(x), tm.module.eval()(x)
    assert torch.allclose(a, b, atol=1e-4)


def test_no_weights_offline_is_a_clear_error():
    with pytest.raises(EdgetlError) as info:
        get_family("timm").build("mobilenetv3_small_100", None, True)
    msg = str(info.value)
    assert "no pretrained weights for timm:mobilenetv3_small_100 found offline" in msg
    assert "--weights FILE" in msg and "--no-pretrained" in msg


def test_torch_hub_cache_is_used():
    import torchvision

    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = torchvision.models.mobilenet_v3_small()
    torch.save(ref.state_dict(), path)
    try:
        bb = get_family("torchvision").build("mobilenet_v3_small", None, True)
        assert bb.weights.kind == "cache" and bb.weights.path == str(path)
        assert torch.equal(bb.module.features[0][0].weight, ref.features[0][0].weight)
    finally:
        path.unlink()


def test_hf_hub_cache_is_used_for_timm():
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    ref = timm.create_model("mobilenetv3_small_050")
    repo = Path(constants.HF_HUB_CACHE) / "models--timm--mobilenetv3_small_050.lamb_in1k"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(snap / "model.safetensors"))
    bb = get_family("timm").build("mobilenetv3_small_050", None, True)
    assert bb.weights.kind == "cache" and bb.weights.path.endswith("model.safetensors")
    assert torch.equal(bb.module.conv_stem.weight, ref.conv_stem.weight)


def test_weights_file_safetensors_and_pth(tmp_path):
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("mobilenetv3_small_050", num_classes=7)  # another head size: dropped, not an error
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": ref.state_dict()}, tmp_path / "w.pth")
    for f in ("w.safetensors", "w.pth"):
        bb = get_family("timm").build("mobilenetv3_small_050", str(tmp_path / f), True)
        assert bb.weights.kind == "file" and len(bb.weights.sha256) == 64
        assert torch.equal(bb.module.conv_stem.weight, ref.conv_stem.weight)


def test_bad_weights_files(tmp_path):
    import timm
    from safetensors.torch import save_file

    other = timm.create_model("mobilenetv3_small_100")
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "other.safetensors"))
    with pytest.raises(EdgetlError, match="do not fit this architecture"):
        get_family("timm").build("mobilenetv3_small_050", str(tmp_path / "other.safetensors"), True)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgetlError, match="cannot read weights file"):
        get_family("timm").build("mobilenetv3_small_050", str(tmp_path / "junk.pth"), True)
    with pytest.raises(EdgetlError, match="does not exist"):
        get_family("torchvision").build("mobilenet_v2", str(tmp_path / "nope.pth"), True)


def test_pickled_code_is_refused(tmp_path):
    """weights_only=True: a checkpoint that would run code on load is rejected, not executed."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(EdgetlError, match="cannot read weights file"):
        get_family("torchvision").build("mobilenet_v2", str(tmp_path / "evil.pth"), True)
    assert not marker.exists()
