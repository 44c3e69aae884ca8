"""Precise RoI Pooling (Jiang et al., "Acquisition of Localization Confidence", ECCV 2018) in pure PyTorch.

Works on CPU and CUDA without a compiled extension and follows the convention of the CUDA kernel used by the
reference tracker (``ltr/external/PreciseRoIPooling`` in pytracking):

* the feature value ``f[i, j]`` sits at the continuous point ``(y=i, x=j)``, with no half-pixel offset;
* the continuous map is the bilinear interpolant ``F(y, x) = sum_ij f[i, j] tri(y - i) tri(x - j)`` with
  ``tri(t) = max(0, 1 - |t|)``, so cells outside ``[0, H-1] x [0, W-1]`` count as zero and ``F`` decays
  linearly to 0 over one cell beyond the border;
* a box ``[x1, y1, x2, y2]`` (input pixels, multiplied by ``spatial_scale``) is split into ``PH x PW`` bins
  of size ``bw = max(x2 - x1, 0) / PW``, ``bh = max(y2 - y1, 0) / PH``; each output is the exact integral of
  ``F`` over its bin divided by the bin area, and 0 for a bin of zero area.

Because ``F`` is separable, the integral over a bin ``[xs, xe] x [ys, ye]`` is
``sum_ij f[i, j] Hy(i) Hx(j)`` with ``Hx(j) = T(xe - j) - T(xs - j)``, ``T`` the antiderivative of ``tri``.
All boxes of an image are therefore pooled by two small matrix products (``Hy @ f @ Hx^T``) instead of a
per-box loop, and autograd yields the exact gradients w.r.t. the features and the box coordinates
(``dHx(j)/dxe = tri(xe - j)``), the same ones the CUDA kernel computes analytically.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PrRoIPool2D", "pooled_with_box_vjp", "prroi_pool2d", "prroi_pool2d_batched"]


def _tri_antiderivative(t: torch.Tensor) -> torch.Tensor:
    """``T(t) = integral_{-inf}^{t} max(0, 1 - |s|) ds``, elementwise.

    On ``[-1, 1]`` both branches, ``(1 + t)^2 / 2`` for ``t <= 0`` and ``1 - (1 - t)^2 / 2`` for ``t >= 0``, equal
    ``1/2 + t - t |t| / 2``; clamping first makes T constant (0 or 1) outside with zero gradient there. One
    polynomial instead of two branches and a select: this runs at every step of the box refinement.
    """
    tc = t.clamp(-1.0, 1.0)
    return 0.5 + tc - 0.5 * tc * tc.abs()


def _bin_weights(start: torch.Tensor, end: torch.Tensor, num_bins: int, size: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integral weights of the bins of a 1-D interval over the feature cells.

    Args:
        start, end: (...,) interval ends in feature cells.
        num_bins: number of equal bins the interval is split into.
        size: number of feature cells along this axis.

    Returns:
        weights (..., num_bins, size): ``w[..., b, j]`` = integral of ``tri(t - j)`` over bin ``b``.
        bin_size (...,): the bin length, ``max(end - start, 0) / num_bins``.
    """
    bin_size = (end - start).clamp(min=0) / num_bins
    # The num_bins + 1 bin edges; bin b spans edges b and b + 1, so T is evaluated once per edge.
    k = torch.arange(num_bins + 1, dtype=start.dtype, device=start.device)
    edges = start[..., None] + k * bin_size[..., None]  # (..., num_bins + 1)
    cells = torch.arange(size, dtype=start.dtype, device=start.device)
    t = _tri_antiderivative(edges[..., None] - cells)  # (..., num_bins + 1, size)
    weights = t[..., 1:, :] - t[..., :-1, :]
    return weights, bin_size


def _crop_to_boxes(features: torch.Tensor, scaled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The part of (N, C, H, W) ``features`` that any box (N, P, 4) in feature cells can weigh, and the boxes in
    its coordinates.

    Cell ``j`` weighs in a bin ``[s, e]`` only for ``s - 1 < j < e + 1`` (the interpolant's support), so the
    cells from ``floor(min x1) - 1`` to ``ceil(max x2) + 1`` hold every non-zero weight and the result is exact.
    Refinement pools ten boxes around one target, typically a third of the map's side: the dense products then
    shrink several-fold.  Only on the CPU, where those products are the cost; on a GPU the host sync that the
    bounds need would cost more than it saves.
    """
    height, width = features.shape[-2:]
    flat = scaled.detach().reshape(-1, 4)
    (lo_x, lo_y, _, _), (_, _, hi_x, hi_y) = flat.amin(0).tolist(), flat.amax(0).tolist()  # one host copy each
    if not all(map(math.isfinite, (lo_x, lo_y, hi_x, hi_y))):  # NaN / inf: no bounds to cut to
        return features, scaled
    (x0, x1), (y0, y1) = _support(lo_x, hi_x, width), _support(lo_y, hi_y, height)
    if x0 == 0 and y0 == 0 and x1 == width and y1 == height:
        return features, scaled
    shift = scaled.new_tensor([x0, y0, x0, y0])
    return features[:, :, y0:y1, x0:x1], scaled - shift


def _support(lo: float, hi: float, size: int) -> tuple[int, int]:
    """The cells ``start .. stop - 1`` of an axis of ``size`` cells that bins spanning ``[lo, hi]`` can weigh
    (cell ``j`` weighs in ``[s, e]`` only for ``s - 1 < j < e + 1``), at least one even when every box lies
    outside the map, so that shapes stay valid."""
    start = min(max(math.floor(lo) - 1, 0), size - 1)
    return start, max(min(math.ceil(hi) + 2, size), start + 1)


def prroi_pool2d_batched(features: torch.Tensor, boxes: torch.Tensor, pooled_height: int, pooled_width: int,
                         spatial_scale: float) -> torch.Tensor:
    """Precise RoI pooling of P boxes per image.

    Args:
        features: (N, C, H, W) feature maps.
        boxes: (N, P, 4) boxes ``[x1, y1, x2, y2]`` in input pixels; box ``p`` of row ``n`` pools image ``n``.
        pooled_height, pooled_width: output bins PH, PW per box.
        spatial_scale: factor from input pixels to feature cells (e.g. 1/8 for stride-8 features).

    Returns:
        (N, P, C, PH, PW): the average of the bilinear interpolant over each bin; 0 for zero-area boxes.

    Never gathers per-box copies of the feature map: the cost is O(N P C H W min(PH, PW)) multiply-adds and
    the largest intermediate is (N, P, C, H or W, min(PH, PW)).
    """
    if features.dim() != 4:
        raise ValueError(f"features must be (N, C, H, W), got shape {tuple(features.shape)}")
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
        raise ValueError(
            f"boxes must be (N, P, 4) with N = {features.shape[0]}, got shape {tuple(boxes.shape)}")
    scaled = boxes.to(features.dtype) * spatial_scale
    if not features.is_cuda and scaled.numel():
        features, scaled = _crop_to_boxes(features, scaled)
    height, width = features.shape[-2:]
    x1, y1, x2, y2 = scaled.unbind(-1)
    wx, bin_w = _bin_weights(x1, x2, pooled_width, width)  # (N, P, PW, W), (N, P)
    wy, bin_h = _bin_weights(y1, y2, pooled_height, height)  # (N, P, PH, H), (N, P)

    # Two plain matrix products (einsum's broadcasting over P copied the feature map once per box), laid out so
    # that every intermediate reshape is a view and only the small output is permuted:
    # 1) every box's column bins against every (channel, row): (P*PW, W) @ (W, C*H), per image;
    # 2) every box's row bins: (PW*C, H) @ (H, PH), batched over the N*P boxes.
    n, c = features.shape[:2]
    p = boxes.shape[1]
    feats_t = features.permute(0, 3, 1, 2).reshape(n, width, c * height)  # (N, W, C*H)
    cols = torch.matmul(wx.reshape(n, p * pooled_width, width), feats_t)  # (N, P*PW, C*H)
    cols = cols.reshape(n * p, pooled_width * c, height)
    integral = torch.bmm(cols, wy.reshape(n * p, pooled_height, height).transpose(1, 2))  # (N*P, PW*C, PH)
    integral = integral.reshape(n, p, pooled_width, c, pooled_height).permute(0, 1, 3, 4, 2)  # (N, P, C, PH, PW)

    area = bin_w * bin_h
    valid = area > 0
    # Dividing by a safe area and masking afterwards keeps the value and every gradient finite (exactly 0) for
    # degenerate boxes, where the kernel outputs 0.
    safe_area = torch.where(valid, area, torch.ones_like(area))
    out = integral / safe_area[..., None, None, None]
    return torch.where(valid[..., None, None, None], out, torch.zeros_like(out))


class WindowCache:
    """The last windows :func:`pooled_with_box_vjp` cut from one set of maps, to reuse while the boxes' window stays
    where it was: box refinement pools the same maps six times a frame and the boxes move by fractions of a cell
    (on Singer1 the window moved at one or two of the five later passes)."""

    __slots__ = ("features", "placement", "feats_t")

    def __init__(self) -> None:
        self.features: tuple[torch.Tensor, ...] = ()
        self.placement: tuple | None = None
        self.feats_t: torch.Tensor | None = None

    def get(self, features: Sequence[torch.Tensor], placement: tuple) -> torch.Tensor | None:
        same = (len(features) == len(self.features) and all(a is b for a, b in zip(features, self.features))
                and placement == self.placement)
        return self.feats_t if same else None

    def put(self, features: Sequence[torch.Tensor], placement: tuple, feats_t: torch.Tensor) -> None:
        self.features, self.placement, self.feats_t = tuple(features), placement, feats_t


def _window_placement(features: Sequence[torch.Tensor], scaled: torch.Tensor) -> tuple[list[tuple[int, int]], int]:
    """Where :func:`_square_windows` cuts: each level's top-left cell (x0, y0) and the common side S, the smallest
    square that holds every box's support on every level (the whole map where the boxes are unknown or on a GPU)."""
    num_levels = len(features)
    sizes = [f.shape[-2:] for f in features]
    corners = [(0, 0)] * num_levels
    extent = [max(h, w) for h, w in sizes]
    if not features[0].is_cuda and scaled.numel():  # on a GPU the host sync would cost more than it saves
        flat = scaled.reshape(num_levels, -1, 4)
        lows, highs = flat.amin(1).tolist(), flat.amax(1).tolist()  # one host copy each
        for i, ((height, width), (lo_x, lo_y, _, _), (_, _, hi_x, hi_y)) in enumerate(zip(sizes, lows, highs)):
            if all(map(math.isfinite, (lo_x, lo_y, hi_x, hi_y))):
                (x0, x1), (y0, y1) = _support(lo_x, hi_x, width), _support(lo_y, hi_y, height)
                corners[i] = (x0, y0)
                extent[i] = max(x1 - x0, y1 - y0)
    return corners, max(extent)


def _square_windows(features: Sequence[torch.Tensor], corners: Sequence[tuple[int, int]], side: int
                    ) -> torch.Tensor:
    """Every level's map cut to the square window of side S at its corner and zero-padded to it and to the widest
    level's channels (cells and channels outside a map weigh zero in PrRoIPool, so this is exact), so that all
    levels and both axes are pooled by the same few operations.

    Args:
        features: L maps (N, C_l, H_l, W_l); corners and side: from :func:`_window_placement`.
    Returns:
        windows (L, N, C, S, S).
    """
    channels = max(f.shape[1] for f in features)
    windows = []
    for f, (x0, y0) in zip(features, corners):
        w = f[:, :, y0:y0 + side, x0:x0 + side]
        pad = (0, side - w.shape[-1], 0, side - w.shape[-2], 0, channels - w.shape[1])
        windows.append(F.pad(w, pad) if any(pad) else w)
    return windows[0].unsqueeze(0) if len(windows) == 1 else torch.stack(windows)


def pooled_with_box_vjp(features: Sequence[torch.Tensor], boxes: torch.Tensor, pooled_sizes: Sequence[int],
                        spatial_scales: Sequence[float], offsets: Sequence[float] | None = None,
                        cache: WindowCache | None = None):
    """Square precise RoI pooling of the same boxes on L feature levels at once, without autograd, in its natural
    layout, and the exact vector-Jacobian product w.r.t. the boxes: the inner loop of box refinement (the same
    values as :func:`prroi_pool2d_batched` and its autograd gradient, laid out differently).

    With ``I = Wy F Wx^T`` per box and channel (``Wx[b, j] = T(e_{b+1} - j) - T(e_b - j)`` over the bin edges
    ``e``), ``dI/dWx`` and ``dI/dWy`` are two more products of the forward's size, ``dT(e - j)/de = tri(e - j)``, the
    edges are affine in ``x1, x2``, and the bin area ``(x2 - x1)(y2 - y1) / B^2`` enters through the division.  The
    cost here is the number of operations, not arithmetic, so every level and both axes share one tensor: the maps
    are cut to one square window (:func:`_square_windows`, reused from ``cache``) and a level with fewer bins than
    the most, B, gets empty bins at the end (edges repeated at the box's end: zero weight, zero output, zero
    gradient).

    Args:
        features: L maps (N, C_l, H_l, W_l); boxes: (N, P, 4) ``[x1, y1, x2, y2]`` in input pixels, pooled at level
            l as ``(boxes - offsets[l]) * spatial_scales[l]`` with ``pooled_sizes[l]`` bins per side.
        cache: windows of earlier calls on the same ``features`` to reuse when the boxes' window is the same.

    Returns:
        pooled (L, N*P, B*C*B), C the most channels, box ``p`` of image ``n`` in row ``n P + p``, laid out (bin
        column, channel, bin row), zero where a level has no such bin or channel; and ``vjp(grad (L, N*P,
        B*C*B)) -> (N, P, 4)``, the gradient of ``sum(grad * pooled)`` w.r.t. the boxes (0 for zero-area boxes, as
        autograd gives through the mask).
    """
    num_levels = len(features)
    offsets = (0.0,) * num_levels if offsets is None else tuple(offsets)
    with torch.no_grad():
        scale, shift, frac = _level_constants(tuple(pooled_sizes), tuple(spatial_scales), offsets,
                                              features[0].dtype, features[0].device)
        scaled = boxes.to(scale.dtype).unsqueeze(0) * scale + shift
        corners, side = _window_placement(features, scaled)
        if any(x or y for x, y in corners):
            scaled = scaled - scaled.new_tensor([[x, y, x, y] for x, y in corners]).view(num_levels, 1, 1, 4)
        placement = (tuple(corners), side)
        feats_t = None if cache is None else cache.get(features, placement)
        if feats_t is None:
            windows = _square_windows(features, corners, side)  # (L, N, C, S, S)
            ln, c = num_levels * windows.shape[1], windows.shape[2]
            feats_t = windows.permute(0, 1, 4, 2, 3).reshape(ln, side, c * side)  # (L*N, S_x, C*S_y)
            if cache is not None:
                cache.put(features, placement, feats_t)
        saved = _pool_forward(feats_t, scaled, frac)

    def vjp(grad: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (_pool_vjp(grad, saved, frac) * scale).sum(0)

    return saved[0], vjp


@functools.lru_cache(maxsize=16)
def _level_constants(pooled_sizes: tuple[int, ...], spatial_scales: tuple[float, ...], offsets: tuple[float, ...],
                     dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`pooled_with_box_vjp` needs of the levels, made once (refinement calls it six times a frame with
    the same levels): scale (L, 1, 1, 1) and shift (L, 1, 1, 1) that take input pixels to each level's cells,
    ``x * scale + shift``, and the bin-edge fractions (L, B + 1), edge k at ``start + frac[l, k] (end - start)``
    (repeated at 1 past a level's own bins)."""
    num_levels, nb = len(pooled_sizes), max(pooled_sizes)
    scale = torch.tensor(spatial_scales, dtype=dtype, device=device).view(num_levels, 1, 1, 1)
    shift = torch.tensor([-o * s for o, s in zip(offsets, spatial_scales)], dtype=dtype,
                         device=device).view(num_levels, 1, 1, 1)
    bins_per_level = torch.tensor(pooled_sizes, dtype=dtype, device=device).view(num_levels, 1)
    k = torch.arange(nb + 1, dtype=dtype, device=device).expand(num_levels, nb + 1).minimum(bins_per_level)
    return scale, shift, k / bins_per_level


def _pool_forward(feats_t: torch.Tensor, scaled: torch.Tensor, frac: torch.Tensor) -> list[torch.Tensor]:
    """The forward half of :func:`pooled_with_box_vjp`: windows (L*N, S_x, C*S_y) (column-major per channel), boxes
    (L, N, P, 4) in their window's cells, edge fractions (L, B + 1).  Returns pooled (L, N*P, B*C*B) and what the
    vjp needs."""
    num_levels, n, p = scaled.shape[:3]
    side = feats_t.shape[1]
    c, nb = feats_t.shape[2] // side, frac.shape[1] - 1
    ln, lnp = num_levels * n, num_levels * n * p
    start, end = scaled[..., :2], scaled[..., 2:]  # (L, N, P, 2): x then y
    length = (end - start).clamp(min=0)
    edges = start.unsqueeze(-1) + length.unsqueeze(-1) * frac.view(num_levels, 1, 1, 1, nb + 1)  # (L, N, P, 2, B+1)
    cells = torch.arange(side, dtype=scaled.dtype, device=scaled.device)
    tc = (edges.unsqueeze(-1) - cells).clamp_(-1.0, 1.0)
    abs_tc = tc.abs()
    big_t = torch.addcmul(tc, tc, abs_tc, value=-0.5).add_(0.5)  # T(t), see _tri_antiderivative
    weights = big_t[..., 1:, :] - big_t[..., :-1, :]  # (L, N, P, 2, B, S)
    wx, wy = weights[..., 0, :, :], weights[..., 1, :, :]
    cols = torch.matmul(wx.reshape(ln, p * nb, side), feats_t).view(lnp, nb * c, side)
    wy_boxes = wy.reshape(lnp, nb, side)
    integral = torch.bmm(cols, wy_boxes.transpose(1, 2))  # (L*N*P, B*C, B)
    # The bin area of level l: length_x length_y / B_l^2, B_l = 1 / frac[l, 1].
    area = (length[..., 0] * length[..., 1] * frac[:, 1].square().view(num_levels, 1, 1)).view(lnp, 1, 1)
    inv_area = torch.where(area > 0, area.reciprocal(), torch.zeros_like(area))
    pooled = (integral * inv_area).view(num_levels, n * p, nb * c * nb)
    return [pooled, integral, inv_area, cols, wy_boxes, feats_t, abs_tc, length, area]


def _pool_vjp(grad: torch.Tensor, saved: list[torch.Tensor], frac: torch.Tensor) -> torch.Tensor:
    """The backward half: d sum(grad * pooled) / d boxes in each level's cells (L, N, P, 4)."""
    _, integral, inv_area, cols, wy_boxes, feats_t, abs_tc, length, area = saved
    num_levels, n, p = length.shape[:3]
    nb, side = frac.shape[1] - 1, feats_t.shape[1]
    c = feats_t.shape[2] // side
    g_int = grad.reshape(-1, nb * c, nb) * inv_area
    g_area = (g_int * integral).sum((1, 2)).mul_(inv_area.view(-1)).neg_()  # d/d area
    g_wy = torch.bmm(g_int.transpose(1, 2), cols)  # (L*N*P, B, S)
    kk = torch.bmm(g_int, wy_boxes).view(num_levels * n, p * nb, c * side)
    g_wx = torch.matmul(kk, feats_t.transpose(1, 2))  # (L*N, P*B, S)
    g_w = torch.stack((g_wx.view(num_levels, n, p, nb, side), g_wy.view(num_levels, n, p, nb, side)), 3)
    # Edge k enters bin k - 1 with +T and bin k with -T, and T' = tri = 1 - |t| on [-1, 1] (0 outside, where t was
    # clamped); edge k sits at start + frac_k (end - start).
    tri = 1.0 - abs_tc  # (L, N, P, 2, B + 1, S)
    upper = (g_w * tri[..., 1:, :]).sum(-1)  # (L, N, P, 2, B): edges 1..B, as the end of bins 0..B-1
    lower = (g_w * tri[..., :-1, :]).sum(-1)  # edges 0..B-1, as the start of bins 0..B-1
    f_hi = frac[:, 1:].reshape(num_levels, 1, 1, 1, nb)
    f_lo = frac[:, :-1].reshape(num_levels, 1, 1, 1, nb)
    g_end = (upper * f_hi).sum(-1) - (lower * f_lo).sum(-1)  # (L, N, P, 2)
    g_start = (upper - lower).sum(-1) - g_end
    # area = length_x length_y / B^2: d/d end_x = length_y / B^2 = -d/d start_x (and the same for y).
    d_area = g_area.view(num_levels, n, p, 1) * length.flip(-1) * frac[:, 1].square().view(num_levels, 1, 1, 1)
    out = torch.cat((g_start - d_area, g_end + d_area), -1)  # (L, N, P, 4) as x1, y1, x2, y2
    return out * (area.view(num_levels, n, p, 1) > 0)


def prroi_pool2d(features: torch.Tensor, rois: torch.Tensor, pooled_height: int, pooled_width: int,
                 spatial_scale: float) -> torch.Tensor:
    """Precise RoI pooling of boxes that each name their image.

    Args:
        features: (N, C, H, W) feature maps.
        rois: (K, 5) rows ``[batch_index, x1, y1, x2, y2]``, coordinates in input pixels.
        pooled_height, pooled_width: output bins PH, PW per box.
        spatial_scale: factor from input pixels to feature cells.

    Returns:
        (K, C, PH, PW). Differentiable w.r.t. ``features`` and the coordinates (the batch index gets 0).

    The boxes are grouped per image into a padded (N, P_max, 4) tensor (padding = empty boxes) and pooled with
    :func:`prroi_pool2d_batched`, so there is no loop over boxes or images.
    """
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be (K, 5) [batch_index, x1, y1, x2, y2], got shape {tuple(rois.shape)}")
    num_images, channels = features.shape[:2]
    num_rois = rois.shape[0]
    if num_rois == 0:
        return features.new_zeros(0, channels, pooled_height, pooled_width)
    batch_idx = rois[:, 0].detach().round().long()
    lo, hi = batch_idx.aminmax()
    if int(lo) < 0 or int(hi) >= num_images:
        raise ValueError(f"roi batch indices must lie in [0, {num_images - 1}], got [{int(lo)}, {int(hi)}]")

    # Position of each roi inside its image's group, preserving the input order within an image.
    counts = torch.bincount(batch_idx, minlength=num_images)
    order = torch.argsort(batch_idx, stable=True)
    group_start = torch.cumsum(counts, 0) - counts
    pos = torch.empty_like(batch_idx)
    pos[order] = torch.arange(num_rois, device=rois.device) - group_start[batch_idx[order]]
    max_per_image = int(counts.max())

    coords = rois[:, 1:].to(features.dtype)
    boxes = coords.new_zeros(num_images, max_per_image, 4).index_put((batch_idx, pos), coords)
    pooled = prroi_pool2d_batched(features, boxes, pooled_height, pooled_width, spatial_scale)
    return pooled[batch_idx, pos]


class PrRoIPool2D(nn.Module):
    """Module form of :func:`prroi_pool2d`: ``forward(features (N,C,H,W), rois (K,5)) -> (K,C,PH,PW)``."""

    def __init__(self, pooled_height: int, pooled_width: int, spatial_scale: float):
        super().__init__()
        self.pooled_height = int(pooled_height)
        self.pooled_width = int(pooled_width)
        self.spatial_scale = float(spatial_scale)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return prroi_pool2d(features, rois, self.pooled_height, self.pooled_width, self.spatial_scale)

    def forward_batched(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W), (N, P, 4) x1y1x2y2 -> (N, P, C, PH, PW); see :func:`prroi_pool2d_batched`."""
        return prroi_pool2d_batched(features, boxes, self.pooled_height, self.pooled_width,
                                    self.spatial_scale)

    def extra_repr(self) -> str:
        return f"pooled=({self.pooled_height}, {self.pooled_width}), spatial_scale={self.spatial_scale}"
