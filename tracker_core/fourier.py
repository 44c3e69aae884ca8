"""Fourier-series interpolation of the classifier's score map (the reference used the removed torch.rfft)."""

from __future__ import annotations

import torch


def _pad_spectrum(spec: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    """Zero-pad a full FFT spectrum of length n along ``dim`` to ``n_out`` (> n), splitting an even Nyquist term."""
    n = spec.shape[dim]
    if n_out == n:
        return spec
    shape = list(spec.shape)
    shape[dim] = n_out
    out = spec.new_zeros(shape)
    half = (n + 1) // 2  # non-negative frequencies 0..half-1 (excluding an even-length Nyquist term)
    neg = n - half  # negative frequencies incl. Nyquist for even n
    out.narrow(dim, 0, half).copy_(spec.narrow(dim, 0, half))
    if n % 2 == 0:
        # The Nyquist coefficient of an even-length signal belongs to +n/2 and -n/2 equally; splitting it keeps
        # the interpolant real and passing exactly through the original samples.
        nyq = spec.narrow(dim, n // 2, 1) / 2
        out.narrow(dim, n // 2, 1).copy_(nyq)
        out.narrow(dim, n_out - n // 2, 1).add_(nyq)
        if neg > 1:
            out.narrow(dim, n_out - neg + 1, neg - 1).copy_(spec.narrow(dim, n // 2 + 1, neg - 1))
    else:
        out.narrow(dim, n_out - neg, neg).copy_(spec.narrow(dim, half, neg))
    return out


def fourier_upsample(x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """Band-limited (periodic) interpolation of (..., H, W) real maps to (..., Ho, Wo).

    Sample ``i`` of the input lands on output index ``i * Ho / H`` exactly, so with an integer factor the output
    passes through the input samples.
    """
    H, W = x.shape[-2:]
    Ho, Wo = out_size
    spec = torch.fft.fft2(x.float())
    spec = _pad_spectrum(_pad_spectrum(spec, Ho, -2), Wo, -1)
    return torch.fft.ifft2(spec).real * (Ho * Wo / (H * W))
