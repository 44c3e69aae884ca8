"""Precise RoI pooling against an independent brute-force integration of the bilinear interpolant."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Importable without an installed package or a conftest.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker_core.prroi_pool import PrRoIPool2D, prroi_pool2d, prroi_pool2d_batched

# ---- independent reference ---------------------------------------------------------------------------------


def bilinear_zero_outside(f: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Textbook bilinear lookup of f (C, H, W) at points (y, x) (any shape S) with f[i, j] at (y=i, x=j) and
    zeros outside the grid. Returns (C, *S). Written with floor/frac, not with the tri-kernel form."""
    c, h, w = f.shape
    pad = np.zeros((c, h + 4, w + 4))
    pad[:, 2:h + 2, 2:w + 2] = f  # two zero rows/cols on every side: lookups past the border read zeros
    y0, x0 = np.floor(y), np.floor(x)
    dy, dx = y - y0, x - x0
    yi = np.clip(y0.astype(np.int64) + 2, 0, h + 2)
    xi = np.clip(x0.astype(np.int64) + 2, 0, w + 2)
    return ((1 - dy) * (1 - dx) * pad[:, yi, xi] + (1 - dy) * dx * pad[:, yi, xi + 1]
            + dy * (1 - dx) * pad[:, yi + 1, xi] + dy * dx * pad[:, yi + 1, xi + 1])


def brute_force_pool(feat: np.ndarray, rois: np.ndarray, ph: int, pw: int, scale: float, n: int = 256
                     ) -> np.ndarray:
    """Midpoint rule with n x n samples per bin. feat (N, C, H, W), rois (K, 5). Returns (K, C, ph, pw)."""
    out = np.zeros((len(rois), feat.shape[1], ph, pw))
    u = (np.arange(n) + 0.5) / n
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        x1, y1, x2, y2 = x1 * scale, y1 * scale, x2 * scale, y2 * scale
        bw, bh = max(x2 - x1, 0.0) / pw, max(y2 - y1, 0.0) / ph
        if bw * bh == 0:
            continue
        for i in range(ph):
            for j in range(pw):
                ys = y1 + (i + u) * bh
                xs = x1 + (j + u) * bw
                yy, xx = np.meshgrid(ys, xs, indexing="ij")
                out[k, :, i, j] = bilinear_zero_outside(feat[int(b)], yy, xx).mean(axis=(1, 2))
    return out


def random_rois(gen: torch.Generator, n_img: int, k: int, lo: float, hi: float) -> torch.Tensor:
    b = torch.randint(0, n_img, (k, 1), generator=gen).double()
    p1 = lo + (hi - lo) * torch.rand(k, 2, generator=gen, dtype=torch.float64)
    size = 0.5 + (hi - lo) * 0.6 * torch.rand(k, 2, generator=gen, dtype=torch.float64)
    return torch.cat([b, p1, p1 + size], dim=1)


# ---- values -----------------------------------------------------------------------------------------------


def test_hand_computed_values():
    f = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    f[0, 0, 2, 3] = 1.0
    eps = 1e-3
    rois = torch.tensor([
        [0, 3 - eps, 2 - eps, 3 + eps, 2 + eps],  # tiny box on the cell centre (x=3, y=2): no half-px offset
        [0, 3.5 - eps, 2.5 - eps, 3.5 + eps, 2.5 + eps],  # half-way to the diagonal neighbours: 0.5 * 0.5
        [0, 2.0, 1.0, 4.0, 3.0],  # the whole support of the bump: integral 1 over area 4
    ], dtype=torch.float64)
    out = prroi_pool2d(f, rois, 1, 1, 1.0).flatten()
    peak = (1 - eps / 2) ** 2  # mean of the tent over [-eps, eps] per axis
    torch.testing.assert_close(out, torch.tensor([peak, 0.25, 0.25], dtype=torch.float64), atol=1e-9, rtol=0)

    ones = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    rois = torch.tensor([
        [0, 0.0, 0.0, 3.0, 3.0],  # inside: constant 1
        [0, -1.0, -1.0, 0.0, 0.0],  # corner decay zone: mean of (1+x)(1+y) on [-1,0]^2 = 1/4
        [0, 3.0, 0.0, 4.0, 3.0],  # right decay zone: mean of (4-x) on [3,4] = 1/2
        [0, 5.0, 5.0, 7.0, 9.0],  # fully outside, beyond the decay zone
        [0, 2.0, 2.0, 6.0, 6.0],  # spatial scale 0.5 maps it onto [1,3]^2
    ], dtype=torch.float64)
    out = prroi_pool2d(ones, rois, 1, 1, 1.0).flatten()
    torch.testing.assert_close(out[:4], torch.tensor([1.0, 0.25, 0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(prroi_pool2d(ones, rois[4:], 1, 1, 0.5).flatten(),
                               torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize("ph,pw,scale", [(3, 3, 1.0), (2, 4, 0.5), (1, 1, 0.25)])
def test_matches_brute_force_integration(ph, pw, scale):
    gen = torch.Generator().manual_seed(10 * ph + pw)
    n_img, c, h, w = 2, 3, 7, 9
    feat = torch.randn(n_img, c, h, w, generator=gen, dtype=torch.float64)
    s = 1.0 / scale  # box coordinates are in input pixels
    rois = torch.cat([
        random_rois(gen, n_img, 6, 0.0, (w - 2) * s),  # inside
        torch.tensor([
            [0, -2.3 * s, -1.7 * s, 3.4 * s, 2.2 * s],  # over the top-left border
            [1, (w - 3.2) * s, (h - 2.6) * s, (w + 1.9) * s, (h + 0.8) * s],  # over the bottom-right border
            [1, (w - 0.6) * s, 1.3 * s, (w + 0.7) * s, 4.1 * s],  # mostly in the decay zone
            [0, (w + 1.5) * s, 0.5 * s, (w + 4.0) * s, 3.0 * s],  # fully outside: 0
            [1, -6.0 * s, -5.0 * s, -1.2 * s, -1.1 * s],  # fully outside: 0
            [0, -1.5 * s, -2.5 * s, (w + 1.5) * s, (h + 2.5) * s],  # larger than the map
            [0, 2.0 * s, 1.0 * s, 2.0 * s, 4.0 * s],  # zero width
            [1, 1.0 * s, 3.0 * s, 4.0 * s, 3.0 * s],  # zero height
            [1, 4.0 * s, 3.0 * s, 1.0 * s, 5.0 * s],  # negative width
        ], dtype=torch.float64),
    ])
    got = prroi_pool2d(feat, rois, ph, pw, scale)
    assert got.shape == (len(rois), c, ph, pw)
    want = brute_force_pool(feat.numpy(), rois.numpy(), ph, pw, scale)
    np.testing.assert_allclose(got.numpy(), want, atol=2e-5, rtol=0)
    # the fully-outside and degenerate boxes are exactly zero
    for k in (9, 10, 12, 13, 14):
        assert torch.all(got[k] == 0), k
    # and the decay-zone box is not
    assert got[8].abs().max() > 1e-3


def test_a_few_clustered_boxes_on_a_large_map_match_brute_force():
    """On the CPU the map is cut down to the boxes' neighbourhood before pooling; that must change nothing, for a
    cluster in the middle, at each border, beyond it, and for a box alone."""
    gen = torch.Generator().manual_seed(21)
    c, h, w, s = 2, 20, 24, 8.0
    feat = torch.randn(1, c, h, w, generator=gen, dtype=torch.float64)
    clusters = [
        [[60.3, 50.1, 99.7, 97.2], [58.0, 55.5, 101.4, 90.9], [66.6, 47.3, 92.2, 99.9]],  # middle
        [[-12.0, -9.5, 30.3, 20.7], [-3.3, 2.2, 25.1, 41.0]],  # over the top-left border
        [[170.2, 140.9, 199.5, 171.3], [180.0, 150.0, 195.0, 166.6]],  # over the bottom-right border
        [[197.0, 40.0, 230.0, 70.0]],  # only the decay zone beyond the right border
        [[215.0, 10.0, 260.0, 30.0]],  # fully outside: 0
        [[33.3, 44.4, 77.7, 88.8]],  # a box alone
    ]
    for boxes in clusters:
        rois = torch.tensor([[0.0, *b] for b in boxes], dtype=torch.float64)
        got = prroi_pool2d(feat, rois, 3, 2, 1 / s)
        want = brute_force_pool(feat.numpy(), rois.numpy(), 3, 2, 1 / s)
        np.testing.assert_allclose(got.numpy(), want, atol=2e-5, rtol=0)
    # A NaN box (a diverged refinement) pools to 0 like a degenerate box, as it did before the cut, not an error.
    nan_box = torch.tensor([[[33.3, float("nan"), 77.7, 88.8]]], dtype=torch.float64)
    assert (prroi_pool2d_batched(feat, nan_box, 3, 2, 1 / s) == 0).all()
    # The same boxes through the feature and coordinate gradients of the cut-down path.
    feat.requires_grad_(True)
    coords = torch.tensor([[60.3, 50.1, 99.7, 97.2], [58.1, 55.5, 101.4, 90.9]], dtype=torch.float64,
                          requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, b: prroi_pool2d_batched(f, b[None], 2, 3, 1 / s), (feat, coords),
                                    eps=1e-6, atol=1e-6)


def test_batched_equals_rois_form():
    gen = torch.Generator().manual_seed(3)
    n_img, p, c, h, w = 3, 4, 5, 8, 10
    feat = torch.randn(n_img, c, h, w, generator=gen)
    xy = torch.rand(n_img, p, 2, generator=gen) * 60 - 5
    boxes = torch.cat([xy, xy + 4 + torch.rand(n_img, p, 2, generator=gen) * 40], dim=-1)
    batched = prroi_pool2d_batched(feat, boxes, 5, 3, 1 / 8)
    assert batched.shape == (n_img, p, c, 5, 3)

    idx = torch.arange(n_img, dtype=torch.float32).repeat_interleave(p)[:, None]
    rois = torch.cat([idx, boxes.reshape(-1, 4)], dim=1)
    perm = torch.randperm(len(rois), generator=gen)  # rois in arbitrary order, uneven counts per image
    perm = perm[: len(perm) - 2]
    got = prroi_pool2d(feat, rois[perm], 5, 3, 1 / 8)
    torch.testing.assert_close(got, batched.reshape(-1, c, 5, 3)[perm])
    torch.testing.assert_close(PrRoIPool2D(5, 3, 1 / 8)(feat, rois[perm]), got)
    # a single image with one box
    one = prroi_pool2d(feat, rois[perm[:1]], 5, 3, 1 / 8)
    torch.testing.assert_close(one, got[:1])
    assert prroi_pool2d(feat, rois[:0], 5, 3, 1 / 8).shape == (0, c, 5, 3)


def test_bad_batch_index_raises():
    feat = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError):
        prroi_pool2d(feat, torch.tensor([[2.0, 0, 0, 1, 1]]), 1, 1, 1.0)


# ---- gradients --------------------------------------------------------------------------------------------


def _off_integer_rois(gen: torch.Generator, n_img: int, k: int, ph: int, pw: int, scale: float
                      ) -> torch.Tensor:
    """Random rois whose bin edges (in feature cells) stay away from integers, where the derivative kinks."""
    while True:
        rois = random_rois(gen, n_img, k, -1.5 / scale, 5.0 / scale)
        x1, y1, x2, y2 = (rois[:, 1:] * scale).unbind(1)
        ex = x1[:, None] + (x2 - x1)[:, None] * torch.arange(pw + 1) / pw
        ey = y1[:, None] + (y2 - y1)[:, None] * torch.arange(ph + 1) / ph
        edges = torch.cat([ex.flatten(), ey.flatten()])
        if ((edges - edges.round()).abs().min() > 1e-3) and torch.all(x2 > x1) and torch.all(y2 > y1):
            return rois


def test_gradcheck_features_and_coordinates():
    gen = torch.Generator().manual_seed(7)
    ph, pw, scale = 2, 3, 0.7
    feat = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    rois = _off_integer_rois(gen, 2, 4, ph, pw, scale)
    idx, coords = rois[:, :1], rois[:, 1:].clone().requires_grad_(True)

    def fn(f, c):
        return prroi_pool2d(f, torch.cat([idx, c], dim=1), ph, pw, scale)

    assert torch.autograd.gradcheck(fn, (feat, coords), eps=1e-6, atol=1e-6)


def test_gradcheck_batched_coordinates():
    gen = torch.Generator().manual_seed(11)
    feat = torch.randn(2, 2, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    boxes = _off_integer_rois(gen, 1, 4, 2, 3, 0.5)[:, 1:].reshape(2, 2, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, b: prroi_pool2d_batched(f, b, 2, 3, 0.5), (feat, boxes),
                                    eps=1e-6, atol=1e-6)


def test_coordinate_gradient_is_edge_integral():
    """d(mean)/d(x2) for a 1x1 bin = (mean of F along the right edge - mean over the box) / width."""
    gen = torch.Generator().manual_seed(5)
    feat = torch.randn(1, 1, 6, 7, generator=gen, dtype=torch.float64)
    coords = torch.tensor([[0.3, 0.6, 4.7, 3.8]], dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d(feat, torch.cat([torch.zeros(1, 1, dtype=torch.float64), coords], 1), 1, 1, 1.0)
    out.sum().backward()
    ys = 0.6 + (np.arange(4000) + 0.5) / 4000 * 3.2
    edge = bilinear_zero_outside(feat[0].numpy(), ys, np.full_like(ys, 4.7)).mean()
    want = (edge - out.item()) / 4.4
    assert coords.grad[0, 2].item() == pytest.approx(want, abs=1e-6)


def test_degenerate_boxes_have_zero_finite_gradients():
    feat = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    coords = torch.tensor([[1.2, 1.1, 1.2, 3.3],  # zero width
                           [0.5, 2.5, 3.5, 2.5],  # zero height
                           [3.0, 3.0, 1.0, 1.0],  # inverted
                           [2.0, 2.0, 2.0, 2.0]],  # a point
                          dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d_batched(feat, coords[None], 3, 3, 1.0)
    assert torch.all(out == 0)
    out.sum().backward()
    assert torch.all(torch.isfinite(coords.grad)) and torch.all(coords.grad == 0)
    assert torch.all(feat.grad == 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(2)
    feat = torch.randn(2, 4, 9, 9, generator=gen)
    rois = random_rois(gen, 2, 8, -8.0, 60.0).float()
    cpu_f = feat.clone().requires_grad_(True)
    cpu_r = rois.clone().requires_grad_(True)
    out_cpu = prroi_pool2d(cpu_f, cpu_r, 3, 3, 1 / 8)
    out_cpu.square().sum().backward()
    gpu_f = feat.cuda().requires_grad_(True)
    gpu_r = rois.cuda().requires_grad_(True)
    out_gpu = prroi_pool2d(gpu_f, gpu_r, 3, 3, 1 / 8)
    out_gpu.square().sum().backward()
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu_f.grad.cpu(), cpu_f.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu_r.grad.cpu(), cpu_r.grad, atol=1e-4, rtol=1e-4)
