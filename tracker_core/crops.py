"""Square search-region crops and the exact mapping between image and crop coordinates.

Coordinates are continuous (pixel ``k`` covers ``[k, k+1)``, its centre is ``k + 0.5``), in the project's one box
convention.  A crop of side ``side`` image pixels centred on ``(cx, cy)`` is resampled to ``out_size`` pixels; the
:class:`CropTransform` maps points and boxes between the two spaces without rounding, so a box survives the round
trip exactly.

Large down-scales are anti-aliased by an integer area average before the bilinear resampling (the reference only
sub-samples, which aliases on high-resolution video).  Pixels outside the image replicate the border (as the
reference's ``replicate`` padding); the cost and memory of a crop are bounded by the image, not by the box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
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

    Down-scales by ``df = floor(side / out_size) >= 2`` first average ``df x df`` blocks of the image on a grid
    anchored at the crop (an area resize; pixels beyond the image replicate its border), then every output pixel is
    the bilinear interpolant of those blocks at its centre (beyond them, the outermost block).  Only the blocks the
    interpolation reaches are computed, and a wide replicated margin is counted, not built, so the work and the
    memory are bounded by the image whatever the box (a box many times the frame once asked for gigabytes).  On
    the CPU the two steps are OpenCV's area resize (or integral image) and affine warp on the frame's own memory
    (``cv2.warpAffine`` resolves positions to 1/32 pixel; a uint8 frame's regions are averaged in 1/64 grey levels,
    over a million pixels in whole grey levels); elsewhere they are the same steps in torch.

    Args:
        image: (1, 3, H, W) tensor, uint8 or float, RGB 0..255.
    Returns:
        patch: (1, 3, out_size, out_size) float32 tensor, RGB 0..255.
        transform: the image-to-crop mapping.
    """
    tf = CropTransform.around(cx, cy, side, out_size)
    _, _, height, width = image.shape
    df = max(int(math.floor(side / out_size)), 1) if antialias else 1
    plan_x = _axis_plan(tf.left, tf.scale, df, out_size, width)
    plan_y = _axis_plan(tf.top, tf.scale, df, out_size, height)
    if image.device.type == "cpu":
        patch = _sample_cv2(image, plan_x, plan_y, df, out_size)
    else:
        patch = _sample_torch(image, plan_x, plan_y, df, out_size)
    return patch, tf


@dataclass(frozen=True)
class _AxisPlan:
    """Along one image axis: the blocks ``first .. first + count - 1`` of ``df`` pixels to average (block ``j``
    starts at pixel ``origin + j df``), the pixels ``lo .. hi - 1`` of the image they cover, the replicated pixels
    before and after (blocks straddling the border), and the sampling ``position(u) = step * u + offset`` of output
    pixel ``u`` in block units, counted from the first block."""

    lo: int
    hi: int
    pad_before: int
    pad_after: int
    count: int
    step: float
    offset: float


def _axis_plan(start: float, scale: float, df: int, out_size: int, size: int) -> _AxisPlan:
    origin = int(math.floor(start)) - df
    # Output pixel u has its centre at u + 0.5 in crop coordinates, image coordinate start + (u + 0.5) / scale, and
    # block coordinate (that - origin) / df - 0.5 (block j's centre is at origin + (j + 0.5) df).
    step = 1.0 / (scale * df)
    offset = (start + 0.5 / scale - origin) / df - 0.5
    need_lo = math.floor(offset)
    need_hi = math.floor(offset + step * (out_size - 1)) + 1
    if df == 1:
        # Single pixels: those outside the image are the border pixel, which the warp's replication gives.
        img_lo, img_hi = -origin, size - 1 - origin
        first, last = max(need_lo, img_lo), min(need_hi, img_hi)
        if first > last:  # the crop misses the image on this axis: the nearest pixel, replicated
            first = last = img_lo if need_hi < img_lo else img_hi
    else:
        # Blocks: one beyond the image averages replicated border pixels of *its* rows, which is not the
        # neighbouring block's value, so every block the interpolation reaches is kept (at most out_size + 2).
        first, last = need_lo, need_hi
    a, b = origin + first * df, origin + (last + 1) * df
    # The clamped pixel indices a .. b - 1 are: pad_before copies of pixel lo, pixels lo .. hi - 1, pad_after
    # copies of pixel hi - 1 (at least one real pixel, even when the range lies wholly beyond the image).
    lo = min(max(a, 0), size - 1)
    hi = min(max(b, lo + 1), size)
    margin = (b - a) - (hi - lo)
    pad_before = min(max(lo - a, 0), margin)
    return _AxisPlan(lo, hi, pad_before, margin - pad_before, last - first + 1, step, offset - first)


# A region (with its replicated margins) is materialised for OpenCV's area resize up to this many pixels, in
# 1/64 grey levels (uint16; float32 for a float frame or no resize) up to _FLOAT_REGION_PIXELS (6 MB) and beyond
# that in the frame's uint8 (48 MB at most; the block means are then rounded to whole grey levels, which the
# averaging of df x df >= 16 pixels makes immaterial, and the conversion of millions of pixels to float is what a
# 4K crop spent its time on).  A larger region, reachable
# only by a crop far beyond the frame, is never built: its block means come from an integral image of the part
# inside the frame (on the CPU; from cumulative sums in torch elsewhere).
_MAX_MATERIALISED_PIXELS = 1 << 24
_FLOAT_REGION_PIXELS = 1 << 20
_FIXED_POINT_BITS = 6


def _region_pixels(px: _AxisPlan, py: _AxisPlan) -> int:
    return (px.hi - px.lo + px.pad_before + px.pad_after) * (py.hi - py.lo + py.pad_before + py.pad_after)


def _margin_too_wide(px: _AxisPlan, py: _AxisPlan) -> bool:
    if not (px.pad_before or px.pad_after or py.pad_before or py.pad_after):
        return False  # the region is part of the frame, bounded by it
    return _region_pixels(px, py) > _MAX_MATERIALISED_PIXELS


def _sample_cv2(image: torch.Tensor, px: _AxisPlan, py: _AxisPlan, df: int, out_size: int) -> torch.Tensor:
    frame = image[0].permute(1, 2, 0).numpy()  # (H, W, 3): the caller's array itself when it came from numpy
    region = frame[py.lo:py.hi, px.lo:px.hi]
    if _margin_too_wide(px, py):
        region = _block_means_integral(region, px, py, df).astype(np.float32)
    else:
        integer = df > 1 and region.dtype == np.uint8
        keep_uint8 = integer and _region_pixels(px, py) > _FLOAT_REGION_PIXELS
        # Pixels are replicated before any conversion (a quarter of the bytes of float32 to copy).  A uint8 region
        # stays a view of the frame: OpenCV reads its rows in place (copying a 4K crop's region first cost ~1 ms).
        wanted = np.uint8 if integer else np.float32
        region = region if region.dtype == wanted else region.astype(wanted)
        if px.pad_before or px.pad_after or py.pad_before or py.pad_after:
            region = cv2.copyMakeBorder(region, py.pad_before, py.pad_after, px.pad_before, px.pad_after,
                                        cv2.BORDER_REPLICATE)
        fixed_point = integer and not keep_uint8
        if fixed_point:
            # Grey levels x 64 in uint16: OpenCV's area resize rounds its block means to whole units, here 1/64 of
            # a grey level (exact for 2x2, 4x4 and 8x8 blocks), and moves half the bytes of float32.
            region = np.left_shift(region, _FIXED_POINT_BITS, dtype=np.uint16)
        if df > 1:  # an integer factor: OpenCV's area resize is then the exact block mean
            region = cv2.resize(region, (px.count, py.count), interpolation=cv2.INTER_AREA)
        region = region.astype(np.float32, copy=False)
        if fixed_point:
            region *= 1.0 / (1 << _FIXED_POINT_BITS)
    warp = np.array([[px.step, 0.0, px.offset], [0.0, py.step, py.offset]], dtype=np.float64)
    patch = cv2.warpAffine(np.ascontiguousarray(region), warp, (out_size, out_size),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(patch).permute(2, 0, 1).unsqueeze(0).contiguous()


def _block_counts(plan: _AxisPlan, df: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of a region of ``length`` pixels: each block's (first, end) pixel inside the region, and how
    many replicated copies of the first and of the last pixel it holds (its margins)."""
    t = np.arange(plan.count + 1, dtype=np.int64) * df - plan.pad_before  # block boundaries in region coordinates
    inner = np.clip(t, 0, length)
    before = np.clip(np.minimum(t[1:], 0) - t[:-1], 0, None).astype(np.float64)
    after = np.clip(t[1:] - np.maximum(t[:-1], length), 0, None).astype(np.float64)
    return inner, before, after


def _block_means_integral(region: np.ndarray, px: _AxisPlan, py: _AxisPlan, df: int) -> np.ndarray:
    """(h, w, 3) region -> (py.count, px.count, 3) means of the df x df blocks of the border-replicated region,
    from one integral image (OpenCV, one pass over the region): a block's sum is its part inside the region plus its
    margins counted as copies of the border rows, columns and corners.  Never builds the margins."""
    h, w = region.shape[:2]
    # int32 sums are exact while a whole region of uint8 pixels cannot overflow them (up to 4K), float64 beyond
    exact_int = region.dtype == np.uint8 and h * w * 255 < 2**31
    integral = cv2.integral(np.ascontiguousarray(region), sdepth=cv2.CV_32S if exact_int else cv2.CV_64F)
    ys, y_before, y_after = _block_counts(py, df, h)
    xs, x_before, x_after = _block_counts(px, df, w)
    corners = integral[np.ix_(ys, xs)].astype(np.float64)
    inside = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    # Border rows summed over each block's inside columns, border columns over each block's inside rows.
    rows, cols = integral[[0, 1, h - 1, h]][:, xs].astype(np.float64), integral[:, [0, 1, w - 1, w]][ys].astype(
        np.float64)
    first_row = np.diff(rows[1] - rows[0], axis=0)  # (cx, 3)
    last_row = np.diff(rows[3] - rows[2], axis=0)
    first_col = np.diff(cols[:, 1] - cols[:, 0], axis=0)  # (cy, 3)
    last_col = np.diff(cols[:, 3] - cols[:, 2], axis=0)
    px00, px01 = region[0, 0].astype(np.float64), region[0, w - 1].astype(np.float64)
    px10, px11 = region[h - 1, 0].astype(np.float64), region[h - 1, w - 1].astype(np.float64)
    yb, ya = y_before[:, None, None], y_after[:, None, None]
    xb, xa = x_before[None, :, None], x_after[None, :, None]
    total = (inside + yb * first_row[None] + ya * last_row[None] + xb * first_col[:, None] + xa * last_col[:, None]
             + yb * xb * px00 + yb * xa * px01 + ya * xb * px10 + ya * xa * px11)
    return total / (df * df)


def _block_means(region: torch.Tensor, px: _AxisPlan, py: _AxisPlan, df: int) -> torch.Tensor:
    """(..., h, w) image pixels -> (..., py.count, px.count) means of df x df blocks of the border-replicated
    region, from cumulative sums: the replicated margins are counted, never built."""
    return _axis_block_means(_axis_block_means(region, -1, px, df), -2, py, df)


def _axis_block_means(x: torch.Tensor, dim: int, plan: _AxisPlan, df: int) -> torch.Tensor:
    x = x.movedim(dim, -1).double()  # float64: a margin may count billions of copies of one pixel
    length = x.shape[-1]
    csum = torch.nn.functional.pad(torch.cumsum(x, -1), (1, 0))  # csum[..., t] = sum of the first t pixels
    # The padded sequence is pad_before copies of the first pixel, the pixels, then copies of the last; its
    # prefix sums at the block boundaries t = k df:
    t = torch.arange(plan.count + 1, dtype=torch.float64, device=x.device) * df
    inner = (t - plan.pad_before).clamp(0, length)
    prefix = (t.clamp(max=plan.pad_before) * x[..., :1] + csum.index_select(-1, inner.long())
              + (t - plan.pad_before - length).clamp(min=0) * x[..., -1:])
    return (prefix.diff(dim=-1) / df).float().movedim(-1, dim)


def _sample_torch(image: torch.Tensor, px: _AxisPlan, py: _AxisPlan, df: int, out_size: int) -> torch.Tensor:
    region = image[:, :, py.lo:py.hi, px.lo:px.hi].float()
    if _margin_too_wide(px, py):
        region = _block_means(region, px, py, df)
    else:
        region = F.pad(region, (px.pad_before, px.pad_after, py.pad_before, py.pad_after), mode="replicate")
        if df > 1:
            region = F.avg_pool2d(region, df)
    # grid_sample's normalised coordinates need two cells per axis; a one-cell region is its own replicate.
    region = F.pad(region, (0, int(px.count == 1), 0, int(py.count == 1)), mode="replicate")
    u = torch.arange(out_size, device=image.device, dtype=torch.float64)
    gx = (2.0 * (px.step * u + px.offset) / (region.shape[-1] - 1) - 1.0).float()
    gy = (2.0 * (py.step * u + py.offset) / (region.shape[-2] - 1) - 1.0).float()
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)
    return F.grid_sample(region, grid, mode="bilinear", padding_mode="border", align_corners=True)


def search_side(target_w: float, target_h: float, search_area_scale: float) -> float:
    """Side of the square search region in image pixels: ``sqrt(w * h) * scale``."""
    return math.sqrt(max(target_w, 1e-3) * max(target_h, 1e-3)) * search_area_scale
