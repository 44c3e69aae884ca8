"""ResNet-18 cut after layer3, with torchvision's exact parameter names (torchvision itself is not a dependency).

The module tree (``conv1, bn1, layer1..layer4`` of ``BasicBlock`` with ``downsample.0/.1``, ``fc``) mirrors
torchvision's ``resnet18`` so that a torchvision state dict, or the ``feature_extractor.*`` part of an ATOM
checkpoint, loads with ``strict=True``.  ``layer4`` and ``fc`` exist only for that strict loading and for
:meth:`ResNet18Backbone.classify`; :meth:`forward` never runs them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import Backbone


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: ``(N, inplanes, H, W) -> (N, planes, H/stride, W/stride)``."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _make_layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1))


class ResNet18Backbone(Backbone):
    """Frozen ResNet-18; features = layer2 (128 ch, stride 8) and layer3 (256 ch, stride 16).

    ``pretrained_state_dict``: optional torchvision-style state dict (keys ``conv1.weight``, ..., ``fc.bias``), loaded
    with ``strict=True``.  Without it the weights are randomly initialised (torchvision's init scheme); real weights
    come from the user's model file later through :meth:`load_state_dict`.

    Every conv is symmetric-padded, so feature cell ``i`` at stride ``s`` is centred at pixel ``s * i`` (continuous
    coordinate ``s * i + 0.5``) for both strides.
    """

    name = "resnet18"
    out_channels = (128, 256)
    cell_centre = (0.5, 0.5)

    def __init__(self, pretrained_state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _make_layer(64, 64, 1)
        self.layer2 = _make_layer(64, 128, 2)
        self.layer3 = _make_layer(128, 256, 2)
        self.layer4 = _make_layer(256, 512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)
        self._init_weights()
        if pretrained_state_dict is not None:
            self.load_state_dict(pretrained_state_dict, strict=True)
        self.freeze()

    def _init_weights(self) -> None:
        # Same scheme as torchvision, so a randomly initialised backbone has sane activation magnitudes.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, H, W)`` -> ``(N, 64, H/4, W/4)`` (conv1, bn1, relu, maxpool)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(N, 3, H, W)`` -> ``(layer2 (N, 128, H/8, W/8), layer3 (N, 256, H/16, W/16))``."""
        s8 = self.layer2(self.layer1(self.stem(x)))
        s16 = self.layer3(s8)
        return s8, s16

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, 3, H, W)`` RGB 0..255 -> ImageNet logits ``(N, 1000)`` (runs the full network)."""
        _, s16 = self.extract(self.normalize(images))
        return self.fc(torch.flatten(self.avgpool(self.layer4(s16)), 1))
