"""From frame groups to network inputs: crops, augmentation, proposals and targets (reference section 5.3).

* Reference crop: a square of side ``sqrt(w * h) * 5`` centred on the target, resampled to 288 x 288 with the
  tracker's own exact crop (:func:`tracker_core.crops.sample_patch`), so training sees what tracking sees.  The
  geometry (5x, 288 px) is the tracker's own :class:`tracker_core.config.SampleConfig`, and ``atom train`` stores
  it in the model file, so the tracker crops the way the IoU-Net was trained.
* Test crop: the same around a jittered box: ``size' = wh * exp(N(0, 1) * 0.5)`` per dimension and
  ``centre' = centre + sqrt(w' h') * 4.5 * U(-0.5, 0.5)`` per axis.
* Augmentation: horizontal flip and greyscale (p = 0.05), each decided once for the whole group (a target does
  not change handedness or colour between frames); brightness x U(0.8, 1.2) and a small per-channel colour gain per
  image.
* Boxes are mapped into crop pixels exactly (:class:`tracker_core.crops.CropTransform`); unlike the reference we
  neither round the crop nor the proposals.
* Proposals: 16 per test crop, each Gaussian noise on (cx, cy, w, h) with std ``sqrt(w h) * sigma``, sigma drawn
  from the reference's list; redrawn with sigma x 0.9 until IoU > 0.1 (``draw_proposals``).  Target ``2 IoU - 1``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from ..box_tensors import iou_torch
from ..config import SampleConfig
from ..crops import CropTransform, image_to_tensor, sample_patch, search_side
from .synthetic import FrameGroup

__all__ = [
    "MIN_IOU",
    "NUM_PROPOSALS",
    "ProcessedGroup",
    "ProcessingConfig",
    "PairProcessor",
    "SIGMA_FACTORS",
    "draw_proposals",
    "iou_targets",
    "jitter_box",
]

# The reference's proposals: 16 per test crop, sigma factors, and the least IoU with the target.
NUM_PROPOSALS = 16
SIGMA_FACTORS = (0.01, 0.05, 0.1, 0.2, 0.3)
MIN_IOU = 0.1


@dataclass(frozen=True)
class ProcessingConfig:
    # The crop geometry: the tracker's (search_area_scale, image_sample_size), one definition for both.
    sample: SampleConfig = field(default_factory=SampleConfig)
    center_jitter: float = 4.5
    scale_jitter: float = 0.5
    flip_prob: float = 0.5
    grey_prob: float = 0.05
    brightness_jitter: float = 0.2  # brightness x U(1 - b, 1 + b), per image
    colour_jitter: float = 0.05  # per-channel gain x U(1 - c, 1 + c), per image
    num_proposals: int = NUM_PROPOSALS
    sigma_factors: tuple[float, ...] = SIGMA_FACTORS
    min_iou: float = MIN_IOU

    def manifest(self) -> dict:
        """The settings as a feature pool's ``pool.json`` records them: the geometry under its names of pool
        format 1 (``output_size``, ``search_area_factor``) and in that order, so that pools built before the
        geometry became the tracker's :class:`SampleConfig` are recognised as the same."""
        plain = {"output_size": self.sample.image_sample_size, "search_area_factor": self.sample.search_area_scale}
        plain.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "sample")
        return json.loads(json.dumps(plain))


@dataclass
class ProcessedGroup:
    """Crops of one group.

    ref_crop: (3, S, S) float32 RGB 0..255; ref_box: (4,) xywh crop px.
    test_crops: (K, 3, S, S); test_boxes: (K, 4) xywh crop px.
    """

    ref_crop: torch.Tensor
    ref_box: torch.Tensor
    test_crops: torch.Tensor
    test_boxes: torch.Tensor


def jitter_box(box: np.ndarray, rng: np.random.Generator, center_jitter: float, scale_jitter: float) -> np.ndarray:
    """The reference's crop jitter of an xywh box: log-normal size per dimension, uniform centre shift scaled by the
    jittered size.  Returns (4,) xywh."""
    x, y, w, h = (float(v) for v in box)
    size = np.array([w, h]) * np.exp(rng.normal(size=2) * scale_jitter)
    max_offset = math.sqrt(size[0] * size[1]) * center_jitter
    centre = np.array([x + w / 2, y + h / 2]) + max_offset * (rng.random(2) - 0.5)
    return np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, size[0], size[1]])


def crop_box(image: torch.Tensor, box: np.ndarray, crop_on: np.ndarray, cfg: ProcessingConfig
             ) -> tuple[torch.Tensor, torch.Tensor, CropTransform]:
    """Crop of side ``sqrt(area(crop_on)) * factor`` around ``crop_on``'s centre.

    Args:
        image: (1, 3, H, W) uint8 or float RGB.  box: (4,) target xywh (image px).  crop_on: (4,) xywh.
    Returns:
        (patch (3, S, S) float32, box in the crop (4,) float32, transform).
    """
    cx, cy = crop_on[0] + crop_on[2] / 2, crop_on[1] + crop_on[3] / 2
    side = search_side(crop_on[2], crop_on[3], cfg.sample.search_area_scale)
    patch, tf = sample_patch(image, float(cx), float(cy), side, cfg.sample.image_sample_size)
    return patch[0], torch.tensor(tf.box_to_crop(box).as_tuple(), dtype=torch.float32), tf


class PairProcessor:
    """Turns a :class:`FrameGroup` into a :class:`ProcessedGroup` (see the module docstring)."""

    def __init__(self, config: ProcessingConfig | None = None):
        self.config = config or ProcessingConfig()

    def _colour(self, patch: torch.Tensor, rng: np.random.Generator, grey: bool) -> torch.Tensor:
        c = self.config
        gain = rng.uniform(1 - c.brightness_jitter, 1 + c.brightness_jitter) * rng.uniform(
            1 - c.colour_jitter, 1 + c.colour_jitter, 3)
        if grey:
            lum = (patch * patch.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
            patch = lum.expand(3, -1, -1)
            gain = np.full(3, gain.mean())
        return (patch * torch.tensor(gain, dtype=patch.dtype).view(3, 1, 1)).clamp_(0, 255)

    def __call__(self, group: FrameGroup, rng: np.random.Generator) -> ProcessedGroup:
        c = self.config
        flip = bool(rng.random() < c.flip_prob)
        grey = bool(rng.random() < c.grey_prob)

        ref_box_img = np.asarray(group.ref_box, dtype=np.float64)
        ref_patch, ref_box, _ = crop_box(image_to_tensor(group.ref_image), ref_box_img, ref_box_img, c)
        test_patches, test_boxes = [], []
        tensors: dict[int, torch.Tensor] = {}
        for image, box in zip(group.test_images, np.asarray(group.test_boxes, dtype=np.float64)):
            if id(image) not in tensors:  # frames repeated in a group are converted once
                tensors[id(image)] = image_to_tensor(image)
            crop_on = jitter_box(box, rng, c.center_jitter, c.scale_jitter)
            patch, tbox, _ = crop_box(tensors[id(image)], box, crop_on, c)
            test_patches.append(patch)
            test_boxes.append(tbox)
        patches = [ref_patch] + test_patches
        boxes = torch.stack([ref_box] + test_boxes)
        if flip:
            patches = [p.flip(-1) for p in patches]
            boxes[:, 0] = c.sample.image_sample_size - boxes[:, 0] - boxes[:, 2]
        patches = [self._colour(p, rng, grey) for p in patches]
        return ProcessedGroup(patches[0], boxes[0], torch.stack(patches[1:]), boxes[1:])


def _cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[..., :2] + boxes[..., 2:] / 2, boxes[..., 2:]], -1)


def _xywh(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., 2:]], -1)


def draw_proposals(boxes: torch.Tensor, num_proposals: int = NUM_PROPOSALS, sigma_factors=SIGMA_FACTORS,
                   min_iou: float = MIN_IOU, generator: torch.Generator | None = None, max_tries: int = 100
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian proposals around each box with IoU > ``min_iou`` (the reference's ``perturb_box``, vectorised).

    Each proposal picks a sigma factor at random; ``std = sqrt(w h) * sigma`` for cx, cy, w and h.  A size that
    comes out <= 1 px is replaced by ``size * U(0.15, 0.5)``.  Proposals with IoU <= ``min_iou`` are redrawn with
    the sigma multiplied by 0.9, up to ``max_tries`` times; any still failing become the box itself (the reference
    returns its last try instead, which can break the IoU bound).

    Args:
        boxes: (B, 4) xywh ground truth.
    Returns:
        proposals (B, P, 4) xywh, iou (B, P) with the ground truth, both float32 on ``boxes``' device.
    """
    boxes = boxes.float()
    B, P = boxes.shape[0], num_proposals
    dev = boxes.device
    sig = torch.tensor(sigma_factors, dtype=torch.float32)
    sigma = sig[torch.randint(len(sigma_factors), (B, P), generator=generator)].to(dev)  # (B, P)
    gt = boxes[:, None].expand(B, P, 4)
    centre_form = _cxcywh(gt)
    scale = gt[..., 2:].prod(-1).clamp(min=1e-6).sqrt()  # (B, P)
    proposals = gt.clone()
    pending = torch.ones(B, P, dtype=torch.bool, device=dev)
    for _ in range(max_tries):
        noise = torch.randn(B, P, 4, generator=generator).to(dev) * (scale * sigma)[..., None]
        cand = centre_form + noise
        small = cand[..., 2:] <= 1.0
        shrink = torch.rand(B, P, 2, generator=generator).to(dev) * 0.35 + 0.15
        cand[..., 2:] = torch.where(small, centre_form[..., 2:] * shrink, cand[..., 2:])
        cand = _xywh(cand)
        ok = iou_torch(cand, gt) > min_iou
        take = pending & ok
        proposals = torch.where(take[..., None], cand, proposals)
        pending = pending & ~ok
        if not bool(pending.any()):
            break
        sigma = torch.where(pending, sigma * 0.9, sigma)
    return proposals, iou_torch(proposals, gt)


def iou_targets(iou: torch.Tensor) -> torch.Tensor:
    """The regression target of the IoU-Net: ``2 * IoU - 1`` in [-1, 1]."""
    return 2.0 * iou - 1.0
