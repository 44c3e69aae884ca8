"""First-frame data augmentation (paper section 3.2; ``generate_init_samples`` in pytracking's ``atom.py``).

A crop twice the search region is taken around the target, transformed (flip, blur, rotation) about its centre,
and a search-region-sized window is cut from it, possibly shifted.  Each sample comes with the target's offset
from the window centre in feature cells, so the classifier's Gaussian label follows the shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import AugmentationConfig


@dataclass
class AugmentedSamples:
    """patches: (S, 3, out, out) float RGB 0..255; offsets: (S, 2) target centre minus window centre, (row, col)
    in crop pixels; names: what each sample is (for debugging)."""

    patches: torch.Tensor
    offsets: torch.Tensor
    names: list[str]


def gaussian_blur(x: torch.Tensor, sigma_y: float, sigma_x: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with replicate borders; kernel half-size ceil(2 sigma)."""
    return _separable_gaussian(x, sigma_y, sigma_x, pad=True)


def _separable_gaussian(x: torch.Tensor, sigma_y: float, sigma_x: float, pad: bool) -> torch.Tensor:
    """:func:`gaussian_blur`; without ``pad`` only the positions whose kernel fits in x ((H - 2 ry, W - 2 rx))."""
    out = x
    for sigma, dim in ((sigma_y, 2), (sigma_x, 3)):
        r = max(int(math.ceil(2 * sigma)), 1)
        t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = k / k.sum()
        C = out.shape[1]
        if dim == 2:
            src = F.pad(out, (0, 0, r, r), mode="replicate") if pad else out
            out = F.conv2d(src, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)
        else:
            src = F.pad(out, (r, r, 0, 0), mode="replicate") if pad else out
            out = F.conv2d(src, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return out


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate (N, C, H, W) about its centre (counter-clockwise for positive angles), replicate borders."""
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    theta = x.new_tensor([[cos, sin, 0.0], [-sin, cos, 0.0]]).unsqueeze(0).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _window_origin(x: torch.Tensor, out_size: int, shift_x: int, shift_y: int) -> tuple[int, int]:
    """Top-left (x0, y0) of :func:`_window`'s window in x (N, C, B, B), before any padding."""
    big = x.shape[-1]
    return (big - out_size) // 2 + shift_x, (big - out_size) // 2 + shift_y


def rotated_window(x: torch.Tensor, degrees: float, out_size: int, shift_x: int, shift_y: int) -> torch.Tensor:
    """``_window(rotate(x, degrees), out_size, shift_x, shift_y)`` bit for bit, for the window's pixels only (a
    quarter of the crop): their rows of ``F.affine_grid``'s sampling grid, built as ATen builds it (the base grid
    ``linspace(-1, 1, B) (B - 1) / B`` per axis and a 1, times theta^T), and every output pixel is sampled on its
    own (a test compares the two)."""
    x0, y0 = _window_origin(x, out_size, shift_x, shift_y)
    n, big = x.shape[0], x.shape[-1]
    if min(x0, y0) < 0 or max(x0, y0) + out_size > big or x.shape[-2] != big:
        return _window(rotate(x, degrees), out_size, shift_x, shift_y)
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    theta = x.new_tensor([[cos, sin, 0.0], [-sin, cos, 0.0]]).unsqueeze(0).expand(n, 2, 3)
    axis = torch.linspace(-1, 1, big, dtype=x.dtype, device=x.device) * (big - 1) / big
    base = x.new_empty(n, out_size, out_size, 3)
    base[..., 0].copy_(axis[x0:x0 + out_size])
    base[..., 1].copy_(axis[y0:y0 + out_size].unsqueeze(-1))
    base[..., 2].fill_(1)
    grid = base.view(n, out_size * out_size, 3).bmm(theta.transpose(1, 2)).view(n, out_size, out_size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def blurred_window(x: torch.Tensor, sigma_y: float, sigma_x: float, out_size: int, shift_x: int, shift_y: int
                   ) -> torch.Tensor:
    """``_window(gaussian_blur(x, sigma_y, sigma_x), out_size, shift_x, shift_y)`` bit for bit, blurring only the
    window and the kernel's reach around it (the replicated border is never reached then; a test compares the
    two)."""
    x0, y0 = _window_origin(x, out_size, shift_x, shift_y)
    big = x.shape[-1]
    ry, rx = (max(int(math.ceil(2 * s)), 1) for s in (sigma_y, sigma_x))
    if y0 < ry or x0 < rx or y0 + out_size + ry > big or x0 + out_size + rx > big:
        return _window(gaussian_blur(x, sigma_y, sigma_x), out_size, shift_x, shift_y)
    region = x[..., y0 - ry:y0 + out_size + ry, x0 - rx:x0 + out_size + rx]
    return _separable_gaussian(region, sigma_y, sigma_x, pad=False)


def _window(x: torch.Tensor, out_size: int, shift_x: int, shift_y: int) -> torch.Tensor:
    """Cut an out_size window centred at the middle of x plus (shift_x, shift_y), replicate-padded."""
    big = x.shape[-1]
    x0, y0 = _window_origin(x, out_size, shift_x, shift_y)
    pad = max(0, -x0, -y0, x0 + out_size - big, y0 + out_size - big)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        x0, y0 = x0 + pad, y0 + pad
    return x[..., y0:y0 + out_size, x0:x0 + out_size]


def augment(big_patch: torch.Tensor, out_size: int, cfg: AugmentationConfig,
            generator: torch.Generator) -> AugmentedSamples:
    """Make the augmented first-frame samples.

    Args:
        big_patch: (1, 3, B, B) crop around the target, B = out_size * cfg.expansion_factor, target at its centre.
    Returns:
        the identity window first, then translations, flip, blurs and rotations (the dropout copies are made on
        features by the caller).
    """
    patches, offsets, names = [], [], []

    def add(window: torch.Tensor, sx: int, sy: int, name: str) -> None:
        patches.append(window)
        # The window moved by (sx, sy): the target, fixed at the big patch's centre, moves the other way.
        offsets.append((-float(sy), -float(sx)))
        names.append(name)

    def random_shift() -> tuple[int, int]:
        r = cfg.random_shift_factor * out_size
        s = (torch.rand(2, generator=generator) - 0.5) * r
        return int(s[0]), int(s[1])

    add(_window(big_patch, out_size, 0, 0), 0, 0, "identity")
    if not cfg.enabled:
        return AugmentedSamples(torch.cat(patches), torch.tensor(offsets), names)
    for rx, ry in cfg.relative_shift:
        sx, sy = int(rx * out_size / 2), int(ry * out_size / 2)
        add(_window(big_patch, out_size, sx, sy), sx, sy, f"shift({rx},{ry})")
    if cfg.fliplr:
        sx, sy = random_shift()
        add(_window(big_patch.flip(-1), out_size, sx, sy), sx, sy, "fliplr")
    # Blur and rotation only where the window reads them (the results are the same, at about a quarter of the cost).
    for sig_y, sig_x in cfg.blur:
        sx, sy = random_shift()
        add(blurred_window(big_patch, sig_y, sig_x, out_size, sx, sy), sx, sy, f"blur({sig_y},{sig_x})")
    for angle in cfg.rotate:
        sx, sy = random_shift()
        add(rotated_window(big_patch, angle, out_size, sx, sy), sx, sy, f"rotate({angle})")
    return AugmentedSamples(torch.cat(patches), torch.tensor(offsets, dtype=torch.float32), names)


def dropout_copies(features: torch.Tensor, copies: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Channel dropout copies of (1, C, H, W) features, scaled by 1/(1-p) as dropout2d in training mode.

    Returns (copies, C, H, W)."""
    C = features.shape[1]
    keep = (torch.rand(copies, C, 1, 1, generator=generator) >= p).to(features.dtype).to(features.device)
    return features * keep / (1.0 - p)
