"""Square search-region crops and the exact mapping between image and crop coordinates.

Coordinates are continuous (pixel ``k`` covers ``[k, k+1)``, its centre is ``k + 0.5``), in the project's one box
convention.  A crop of side ``side`` image pixels centred on ``(cx, cy)`` is resampled to ``out_size`` pixels; the
:class:`CropTransform` maps points and boxes between the two spaces without rounding, so a box survives the round
trip exactly.

Large down-scales are anti-aliased by an integer area average before the bilinear resampling (the reference only
sub-samples, which aliases on high-resolution video).  Pixels outside the image replicate the border (as the
reference's ``replicate`` padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .boxes import Box


@dataclass(frozen=True)
class CropTransform:
    """Maps image coordinates to crop coordinates: ``crop = (image - (left, top)) * scale``.

    ``scale`` is crop pixels per image pixel (``out_size / side``).
    """

    left: float
    top: float
    scale: float
    out_size: int

    @classmethod
    def around(cls, cx: float, cy: float, side: float, out_size: int) -> CropTransform:
        return cls(cx - side / 2.0, cy - side / 2.0, out_size / side, out_size)

    @property
    def side(self) -> float:
        """Side of the crop in image pixels."""
        return self.out_size / self.scale

    @property
    def image_rect(self) -> Box:
        """The crop's square in image coordinates."""
        return Box(self.left, self.top, self.side, self.side)

    def point_to_crop(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.left) * self.scale, (y - self.top) * self.scale)

    def point_to_image(self, u: float, v: float) -> tuple[float, float]:
        return (u / self.scale + self.left, v / self.scale + self.top)

    def box_to_crop(self, box) -> Box:
        x, y, w, h = box
        return Box((x - self.left) * self.scale, (y - self.top) * self.scale, w * self.scale, h * self.scale)

    def box_to_image(self, box) -> Box:
        x, y, w, h = box
        return Box(x / self.scale + self.left, y / self.scale + self.top, w / self.scale, h / self.scale)

    def boxes_to_crop(self, boxes: torch.Tensor) -> torch.Tensor:
        """(..., 4) xywh image boxes to crop boxes."""
        off = boxes.new_tensor([self.left, self.top, 0.0, 0.0])
        return (boxes - off) * self.scale

    def boxes_to_image(self, boxes: torch.Tensor) -> torch.Tensor:
        off = boxes.new_tensor([self.left, self.top, 0.0, 0.0])
        return boxes / self.scale + off


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 RGB array to a (1, 3, H, W) uint8 tensor on ``device`` (no copy on CPU)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    return t.to(device)


def sample_patch(image: torch.Tensor, cx: float, cy: float, side: float, out_size: int,
                 antialias: bool = True) -> tuple[torch.Tensor, CropTransform]:
    """Resample the square of side ``side`` centred on ``(cx, cy)`` to ``out_size`` x ``out_size``.

    Args:
        image: (1, 3, H, W) tensor, uint8 or float, RGB 0..255.
    Returns:
        patch: (1, 3, out_size, out_size) float32 tensor, RGB 0..255.
        transform: the image-to-crop mapping.
    """
    tf = CropTransform.around(cx, cy, side, out_size)
    _, _, H, W = image.shape
    # Integer anti-aliasing factor: average df x df blocks first when down-scaling by 2 or more.
    df = max(int(math.floor(side / out_size)), 1) if antialias else 1
    # Integer region that covers the crop, with a margin of one (pooled) pixel for bilinear interpolation.
    x0 = int(math.floor(tf.left)) - df
    y0 = int(math.floor(tf.top)) - df
    n = int(math.ceil((side + 2 * df + 1) / df)) * df
    cols = torch.arange(x0, x0 + n, device=image.device).clamp_(0, W - 1)
    rows = torch.arange(y0, y0 + n, device=image.device).clamp_(0, H - 1)
    region = image.index_select(2, rows).index_select(3, cols).float()
    if df > 1:
        region = F.avg_pool2d(region, df)
    m = region.shape[-1]
    # Output pixel u has its centre at u + 0.5 in crop coordinates; map it to an index of ``region`` whose
    # element j has its centre at x0 + (j + 0.5) * df in image coordinates.
    u = torch.arange(out_size, device=image.device, dtype=torch.float32) + 0.5
    xs = (tf.left + u / tf.scale - x0) / df - 0.5
    ys = (tf.top + u / tf.scale - y0) / df - 0.5
    gx = 2.0 * xs / (m - 1) - 1.0
    gy = 2.0 * ys / (m - 1) - 1.0
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)
    patch = F.grid_sample(region, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return patch, tf


def search_side(target_w: float, target_h: float, search_area_scale: float) -> float:
    """Side of the square search region in image pixels: ``sqrt(w * h) * scale``."""
    return math.sqrt(max(target_w, 1e-3) * max(target_h, 1e-3)) * search_area_scale
