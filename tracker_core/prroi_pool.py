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

import math

import torch
from torch import nn

__all__ = ["PrRoIPool2D", "prroi_pool2d", "prroi_pool2d_batched", "prroi_pool2d_batched_with_box_vjp"]


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
    x0 = min(max(math.floor(lo_x) - 1, 0), width)
    y0 = min(max(math.floor(lo_y) - 1, 0), height)
    x1 = max(min(math.ceil(hi_x) + 2, width), x0)
    y1 = max(min(math.ceil(hi_y) + 2, height), y0)
    if x0 == 0 and y0 == 0 and x1 == width and y1 == height:
        return features, scaled
    if x1 == x0 or y1 == y0:  # every box lies outside the map: keep one cell so the shapes stay valid
        x0, y0 = min(x0, width - 1), min(y0, height - 1)
        x1, y1 = x0 + 1, y0 + 1
    shift = scaled.new_tensor([x0, y0, x0, y0])
    return features[:, :, y0:y1, x0:x1], scaled - shift


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


def prroi_pool2d_batched_with_box_vjp(features: torch.Tensor, boxes: torch.Tensor, pooled_height: int,
                                      pooled_width: int, spatial_scale: float):
    """:func:`prroi_pool2d_batched` without autograd, and the exact vector-Jacobian product w.r.t. the boxes.

    Box refinement needs only ``d score / d box``; autograd records and replays a hundred small operations for
    it.  Here the derivative is written out: with ``I = Wy F Wx^T`` per box and channel (``Wx[b, j] =
    T(e_{b+1} - j) - T(e_b - j)`` over the bin edges ``e``), ``dI/dWx`` and ``dI/dWy`` are two more products of the
    same size as the forward, ``dT(e - j)/de = tri(e - j)``, the edges are affine in ``x1, x2``, and the bin area
    ``(x2 - x1)(y2 - y1) / (PW PH)`` contributes through the division.  Checked against autograd in the tests.

    Args:
        features: (N, C, H, W); boxes: (N, P, 4) ``[x1, y1, x2, y2]`` in input pixels.

    Returns:
        pooled (N, P, C, PH, PW), and ``vjp(grad (N, P, C, PH, PW)) -> (N, P, 4)``, the gradient of
        ``sum(grad * pooled)`` w.r.t. the boxes (0 for zero-area boxes, as autograd gives through the mask).
    """
    with torch.no_grad():
        scaled = boxes.to(features.dtype) * spatial_scale
        if not features.is_cuda and scaled.numel():
            features, scaled = _crop_to_boxes(features, scaled)
        n, c, height, width = features.shape
        p = boxes.shape[1]
        ph, pw = pooled_height, pooled_width
        x1, y1, x2, y2 = scaled.unbind(-1)
        bin_w = (x2 - x1).clamp(min=0) / pw
        bin_h = (y2 - y1).clamp(min=0) / ph
        kx = torch.arange(pw + 1, dtype=scaled.dtype, device=scaled.device)
        ky = torch.arange(ph + 1, dtype=scaled.dtype, device=scaled.device)
        ex = x1[..., None] + kx * bin_w[..., None]  # (N, P, PW + 1) bin edges
        ey = y1[..., None] + ky * bin_h[..., None]
        tx = ex[..., None] - torch.arange(width, dtype=scaled.dtype, device=scaled.device)  # (N, P, PW + 1, W)
        ty = ey[..., None] - torch.arange(height, dtype=scaled.dtype, device=scaled.device)
        big_tx, big_ty = _tri_antiderivative(tx), _tri_antiderivative(ty)
        wx = big_tx[..., 1:, :] - big_tx[..., :-1, :]  # (N, P, PW, W)
        wy = big_ty[..., 1:, :] - big_ty[..., :-1, :]  # (N, P, PH, H)

        feats_t = features.permute(0, 3, 1, 2).reshape(n, width, c * height)  # (N, W, C*H)
        cols = torch.matmul(wx.reshape(n, p * pw, width), feats_t).reshape(n * p, pw * c, height)
        wy_t = wy.reshape(n * p, ph, height).transpose(1, 2)  # (N*P, H, PH)
        integral = torch.bmm(cols, wy_t)  # (N*P, PW*C, PH)
        area = (bin_w * bin_h).reshape(n * p)
        valid = area > 0
        inv_area = torch.where(valid, 1.0 / torch.where(valid, area, torch.ones_like(area)), torch.zeros_like(area))
        pooled = (integral * inv_area[:, None, None]).reshape(n, p, pw, c, ph).permute(0, 1, 3, 4, 2)

    def vjp(grad: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            # grad (N, P, C, PH, PW) -> d/d integral in its (N*P, PW*C, PH) layout, and d/d area.
            g_out = grad.permute(0, 1, 4, 2, 3).reshape(n * p, pw * c, ph)
            g_int = g_out * inv_area[:, None, None]
            g_area = -(g_int * integral).sum((1, 2)) * inv_area  # d/d area of sum(grad * integral / area)
            # d/d wy[b, i] = sum over (PW, C) of g_int * cols;  d/d wx[b, j] = sum over (C, H) of K * features,
            # with K = g_int contracted with wy over PH.
            g_wy = torch.bmm(g_int.transpose(1, 2), cols)  # (N*P, PH, H)
            k = torch.bmm(g_int, wy.reshape(n * p, ph, height))  # (N*P, PW*C, H)
            g_wx = torch.matmul(k.reshape(n, p * pw, c * height), feats_t.transpose(1, 2))  # (N, P*PW, W)
            g_x1, g_x2 = _edge_grads(g_wx.reshape(n, p, pw, width), tx)
            g_y1, g_y2 = _edge_grads(g_wy.reshape(n, p, ph, height), ty)
            g_area = g_area.reshape(n, p)
            da_dx = g_area * bin_h / pw  # d area / d x2 = (y2 - y1) / (PW PH) = bin_h / PW
            da_dy = g_area * bin_w / ph
            out = torch.stack((g_x1 - da_dx, g_y1 - da_dy, g_x2 + da_dx, g_y2 + da_dy), -1)
            return torch.where(valid.reshape(n, p, 1), out, torch.zeros_like(out)) * spatial_scale

    return pooled, vjp


def _edge_grads(g_w: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From d/d bin weights (..., B, S) to d/d (start, end) of the interval; ``t`` (..., B + 1, S) holds
    ``edge - cell``.  Edge ``k`` enters bin ``k - 1`` with ``+T`` and bin ``k`` with ``-T``; ``T' = tri``; the
    edges are ``start + k (end - start) / B``."""
    num_bins = g_w.shape[-2]
    zero = torch.zeros_like(g_w[..., :1, :])
    g_t = torch.cat((zero, g_w), -2) - torch.cat((g_w, zero), -2)  # (..., B + 1, S)
    g_edge = (g_t * (1.0 - t.abs()).clamp(min=0)).sum(-1)  # (..., B + 1)
    frac = torch.arange(num_bins + 1, dtype=g_w.dtype, device=g_w.device) / num_bins
    return (g_edge * (1.0 - frac)).sum(-1), (g_edge * frac).sum(-1)


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
