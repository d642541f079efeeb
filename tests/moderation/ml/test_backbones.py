import pytest
import torch

from moderation.ml.backbones import (
    BACKBONES,
    UnknownBackbone,
    WeightsUnavailable,
    backbone_spec,
    backbone_stages,
)
from moderation.ml.network import HarmfulNet


@pytest.fixture
def empty_torch_cache(tmp_path, monkeypatch):
    """No torchvision weights anywhere: an empty TORCH_HOME and no VIGIL_WEIGHTS_* variables."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for name in BACKBONES:
        monkeypatch.delenv(f"VIGIL_WEIGHTS_{name.upper()}", raising=False)
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_torchvision_backbone_without_weights_says_how_to_provide_them(name, empty_torch_cache):
    with pytest.raises(WeightsUnavailable) as error:
        backbone_stages(name)
    message = str(error.value)
    assert str(empty_torch_cache) in message
    assert f"VIGIL_WEIGHTS_{name.upper()}" in message
    assert ".pth" in message


def test_torchvision_weights_are_read_from_torchvisions_cache(empty_torch_cache):
    import torchvision

    reference = torchvision.models.mobilenet_v2(weights=None)
    empty_torch_cache.mkdir(parents=True)
    torch.save(reference.state_dict(), empty_torch_cache / "mobilenet_v2-7ebf99e0.pth")
    stages = backbone_stages("mobilenet_v2")
    assert torch.equal(stages[0][0].weight, reference.features[0][0].weight)


def test_torchvision_weights_from_an_explicit_file(tmp_path, empty_torch_cache, monkeypatch):
    import torchvision

    reference = torchvision.models.resnet50(weights=None)
    path = tmp_path / "my-resnet50.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setenv("VIGIL_WEIGHTS_RESNET50", str(path))
    stages = backbone_stages("resnet50")
    assert torch.equal(stages[0][0].weight, reference.conv1.weight)
    monkeypatch.setenv("VIGIL_WEIGHTS_RESNET50", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        backbone_stages("resnet50")


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(UnknownBackbone, match="efficientnet_lite0, efficientnet_lite2, mobilenet_v2, resnet50"):
        backbone_spec("vgg16")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_stages_end_in_the_declared_feature_width(name):
    net = HarmfulNet.build(name, pretrained=False, unfreeze=1).eval()
    with torch.inference_mode():
        features = net.pool(net.tail(net.trunk(torch.zeros(1, 3, 96, 96))))
    assert features.shape == (1, backbone_spec(name).feature_dim)


def test_unfreeze_trains_only_the_top_stages_and_the_head():
    net = HarmfulNet.build("efficientnet_lite0", pretrained=False, unfreeze=2)
    trainable = {name.split(".")[0] for name, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"tail", "head"}
    assert len(net.tail) == 2
    net.train()
    assert not net.trunk.training
    assert all(not m.training for m in net.tail.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match="unfreeze"):
        HarmfulNet.build("efficientnet_lite0", pretrained=False, unfreeze=99)


def test_avgmax_pooling_keeps_a_small_strong_response_that_averaging_dilutes():
    from moderation.ml.network import GlobalPool

    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 0, 3, 3] = 64.0  # one small object in one channel
    assert GlobalPool("avg")(maps).tolist() == [[1.0, 0.0]]
    assert GlobalPool("avgmax")(maps).tolist() == [[1.0, 0.0, 64.0, 0.0]]
    net = HarmfulNet.build("efficientnet_lite0", pretrained=False, unfreeze=1, pool="avgmax")
    assert net.head.in_features == 2 * 1280
    with pytest.raises(ValueError, match="pool"):
        GlobalPool("median")
