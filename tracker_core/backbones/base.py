"""The frozen-backbone contract shared by every feature extractor of the tracker.

A backbone maps an RGB image batch ``(N, 3, H, W)`` (float, 0..255) to two feature maps, one at stride 8 and one at
stride 16, and nothing deeper: the tracker (IoU-Net and online classifier) never needs later stages, so they are
never computed.  The backbone is always frozen: its parameters never get gradients and it always runs in eval mode,
so BatchNorm uses its running statistics even while a surrounding module is in training mode.
"""

from __future__ import annotations

import torch
from torch import nn

# ImageNet statistics on the 0..1 scale (what torchvision's ResNet weights were trained with).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """Base of the frozen two-scale backbones.

    Attributes:
        name: registry name (``"resnet18"``, ``"efficientnet_lite0"``).
        out_channels: ``(c8, c16)``, the channel counts of the stride-8 and stride-16 features.
        strides: always ``(8, 16)``.
        pixel_mean, pixel_std: per-channel statistics on the 0..255 scale subtracted / divided inside
            :meth:`forward` (ImageNet ones by default; a subclass sets those its weights were trained with).
        cell_centre: ``(o8, o16)``, the continuous pixel coordinate (pixel k covers ``[k, k+1)``) of the centre of the
            receptive field of feature cell 0 for each stride, along x and y; cell ``i`` of stride ``s`` is centred at
            ``o + s * i``.  Valid for input sides divisible by 16.  Architecture-dependent (padding convention), so
            code that maps cells to pixels should read it instead of assuming ``s * i + s / 2``.

    Subclasses implement :meth:`extract` on normalised images and call :meth:`freeze` at the end of ``__init__``.
    """

    name: str = "backbone"
    out_channels: tuple[int, int] = (0, 0)
    strides: tuple[int, int] = (8, 16)
    cell_centre: tuple[float, float] = (0.5, 0.5)
    PIXEL_MEAN: tuple[float, float, float] = tuple(255.0 * m for m in IMAGENET_MEAN)
    PIXEL_STD: tuple[float, float, float] = tuple(255.0 * s for s in IMAGENET_STD)

    @property
    def pooling_offset(self) -> tuple[int, int]:
        """``(o8, o16)`` whole pixels by which the cells sit right of / below where Precise RoI Pooling places
        them (cell ``i`` at pixel ``s * i``, the centre of pixel ``s * i`` being ``s * i + 0.5``): the IoU-Net's
        ``box_offset``.  (0, 0) for ResNet-18, the reference's layout; (7, 15) for TF-padded Lite0."""
        return tuple(int(round(c - 0.5)) for c in self.cell_centre)

    def __init__(self) -> None:
        super().__init__()
        # Non-persistent buffers: they follow .to(device) but stay out of the state dict, so checkpoints of the
        # original networks still load with strict=True.
        self.register_buffer("pixel_mean", torch.tensor(self.PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(self.PIXEL_STD).view(1, 3, 1, 1), persistent=False)

    def freeze(self) -> Backbone:
        """Turn off gradients for every parameter and switch to eval mode for good."""
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> Backbone:
        """Ignore ``mode``: the backbone stays in eval mode, so BN keeps using its running statistics.

        (The reference implementation left its backbone BN in train mode during IoU-Net training, which changed the
        running statistics of frozen weights; we deliberately do not reproduce that.)
        """
        return super().train(False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB 0..255 -> ``(N, 3, H, W)`` ``(x - pixel_mean) / pixel_std``, in the buffers' dtype."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
        images = images.to(self.pixel_mean.dtype)
        return (images - self.pixel_mean) / self.pixel_std

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(N, 3, H, W)`` -> ``(feat_s8 (N, c8, H/8, W/8), feat_s16 (N, c16, H/16, W/16))``."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images (N, 3, H, W)`` float RGB 0..255 -> ``(feat_s8 (N, c8, H/8, W/8), feat_s16 (N, c16, H/16, W/16))``.

        Stops after the stride-16 features; deeper stages are never run.
        """
        return self.extract(self.normalize(images))
