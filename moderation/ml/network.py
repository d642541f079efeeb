"""The fine-tuned harmful-vs-safe network: a backbone split at the frozen/trainable boundary, and a head.

``trunk`` holds the frozen stages (its output can be cached, see :mod:`moderation.ml.features`),
``tail`` the stages being fine-tuned (empty when only the head is trained), then global average
pooling, dropout and a linear head: one logit, ``sigmoid(logit)`` = P(harmful), or with
``outputs`` > 1 one logit per learned category (multi-label: ``sigmoid`` of each is P(that
category); the checkpoint names them in order).
"""

from __future__ import annotations

import torch
from torch import nn

from moderation.ml.backbones import backbone_spec, backbone_stages, freeze_batchnorm


class GlobalPool(nn.Module):
    """Global pooling of the feature map: ``avg`` (ImageNet style) or ``avgmax``, average and max
    side by side. Averaging dilutes a small object (a pistol in a wide CCTV frame) over the whole
    map; the max keeps its strongest response."""

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        if kind not in ("avg", "avgmax"):
            raise ValueError(f"pool must be 'avg' or 'avgmax', not {kind!r}")
        self.kind = kind
        self.width = 2 if kind == "avgmax" else 1

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        average = maps.mean(dim=(2, 3))
        if self.kind == "avg":
            return average
        return torch.cat([average, maps.amax(dim=(2, 3))], dim=1)


class HarmfulNet(nn.Module):
    def __init__(
        self,
        stages: list[nn.Module],
        *,
        feature_dim: int,
        unfreeze: int = 0,
        dropout: float = 0.2,
        pool: str = "avg",
        outputs: int = 1,
    ) -> None:
        super().__init__()
        if not 0 <= unfreeze <= len(stages):
            raise ValueError(f"unfreeze must be between 0 and {len(stages)} stages, not {unfreeze}")
        split = len(stages) - unfreeze
        self.trunk = nn.Sequential(*stages[:split])
        self.tail = nn.Sequential(*stages[split:])
        self.pool = GlobalPool(pool)
        self.dropout = nn.Dropout(dropout)
        self.outputs = outputs
        self.head = nn.Linear(feature_dim * self.pool.width, outputs)
        for parameter in self.trunk.parameters():
            parameter.requires_grad_(False)

    @classmethod
    def build(
        cls,
        backbone: str,
        *,
        unfreeze: int = 0,
        dropout: float = 0.2,
        pool: str = "avg",
        pretrained: bool = True,
        weights_path=None,
        outputs: int = 1,
    ) -> HarmfulNet:
        spec = backbone_spec(backbone)
        stages = backbone_stages(backbone, pretrained=pretrained, weights_path=weights_path)
        return cls(stages, feature_dim=spec.feature_dim, unfreeze=unfreeze, dropout=dropout, pool=pool, outputs=outputs)

    def train(self, mode: bool = True) -> HarmfulNet:
        """Training mode everywhere except the frozen trunk and every BatchNorm's statistics."""
        super().train(mode)
        if mode:
            self.trunk.eval()
            freeze_batchnorm(self.tail)
        return self

    def frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        """What the frozen part computes: pooled vectors when nothing but the head trains, else a map."""
        maps = self.trunk(images)
        return self.pool(maps) if len(self.tail) == 0 else maps

    def forward_cached(self, frozen: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`frozen_features`' output (possibly cached): shape (batch,) with one
        output, (batch, outputs) with several."""
        features = self.pool(self.tail(frozen)) if frozen.dim() == 4 else frozen
        logits = self.head(self.dropout(features))
        return logits.squeeze(1) if self.outputs == 1 else logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(self.frozen_features(images))


class ServingNet(nn.Module):
    """What serving runs (torch and the ONNX export alike): the network's logit, averaged with the
    logit of the horizontally mirrored image when ``flip`` is on (test-time augmentation), divided
    by the calibration ``temperature``, so ``sigmoid(output)`` is the calibrated P(harmful)."""

    def __init__(self, net: HarmfulNet, *, temperature: float = 1.0, flip: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
        self.net = net
        self.temperature = float(temperature)
        self.flip = bool(flip)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.net(images)
        if self.flip:
            logits = (logits + self.net(images.flip(-1))) / 2
        return logits / self.temperature
