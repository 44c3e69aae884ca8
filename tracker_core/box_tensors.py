"""The project's box convention (``tracker_core.boxes``: float x, y, w, h, 0-based, top-left) on torch tensors.

Kept apart from ``boxes.py`` so that the Qt-free annotation layer, which needs only ``Box``, imports without torch.
"""

from __future__ import annotations

import torch


def iou_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xywh boxes (..., 4) with broadcasting, differentiable. Returns (...)."""
    tl = torch.maximum(a[..., :2], b[..., :2])
    br = torch.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = (br - tl).clamp(min=0).prod(-1)
    union = a[..., 2:].clamp(min=0).prod(-1) + b[..., 2:].clamp(min=0).prod(-1) - inter
    return inter / union.clamp(min=1e-12)


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) xywh to (..., 4) x1y1x2y2 (x2 = x + w)."""
    return torch.cat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=-1)
