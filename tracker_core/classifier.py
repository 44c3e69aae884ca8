"""The online target classifier of ATOM (paper section 3.2): a 1x1 projection and a 4x4 filter trained online.

``score = w2 * (P x)``: ``x`` are the normalised stride-16 backbone features (N, C, H, W), ``P`` (D, C, 1, 1) is
a random projection to ``D = compressed_dim`` channels, ``w2`` (1, D, k, k) the filter.  Training minimises

    sum_j w_j ||mlu(w2 * (P x_j)) - y_j||^2 + filter_reg ||w2||^2 (+ projection_reg ||P||^2 on the first frame)

with Gauss-Newton + CG (:mod:`.optim`).  On the first frame ``P`` and ``w2`` are trained jointly on the augmented
samples, after which ``P`` is frozen and the samples are kept projected in a weighted memory; later frames add
one sample each and re-optimise only the filter (as ``initialize`` and ``track`` do in pytracking's
``tracker/atom/atom.py``).

Score map convention (docs/ARCHITECTURE.md): index ``(H//2, W//2)`` is zero displacement.  :func:`gaussian_label`
peaks at ``(H//2 + dy, W//2 + dx)`` for an offset ``(dy, dx)`` in cells, and :func:`conv_same` is translation
equivariant with output size ``(H, W)`` for odd and even kernels, so a filter trained on labels with this
convention scores a target displaced by ``s`` cells at ``H//2 + s``.  (The reference reaches the same indexing with
a label grid running from ``-(sz-1)/2`` and a ``+0.5`` shift for even kernels.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ClassifierConfig
from .optim import GaussNewtonCG, Linearization, LinearizeFn, ResidualFn


def mlu(x: Tensor, alpha: float) -> Tensor:
    """Output activation: ``x`` for ``x >= 0``, ``alpha * (exp(x / alpha) - 1)`` below; identity for ``alpha == 0``.

    Built as ``elu(leaky_relu(x, 1/alpha), alpha)`` (as the reference), which autograd differentiates twice.
    """
    if alpha == 0:
        return x
    return F.elu(F.leaky_relu(x, 1.0 / alpha), alpha)


def normalize_features(x: Tensor, power: float = 2.0) -> Tensor:
    """Per-sample normalisation ``x / (mean over C*H*W of |x|^power + 1e-10)^(1/power)``.  x: (N, C, H, W)."""
    n = x.shape[1] * x.shape[2] * x.shape[3]
    if power == 2:
        norm = torch.sqrt(x.pow(2).flatten(1).sum(1) / n + 1e-10)
    else:
        norm = (x.abs().pow(power).flatten(1).sum(1) / n + 1e-10).pow(1.0 / power)
    return x / norm.view(-1, 1, 1, 1)


def _pad_same(z: Tensor, kh: int, kw: int) -> Tensor:
    """Zero padding for a 'same' correlation: ``k // 2`` before and ``k - 1 - k // 2`` after, per spatial axis."""
    return F.pad(z, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2))


def _tap_sum(y: Tensor) -> Tensor:
    """y (O, kh, kw, N, Hp, Wp), the response of each kernel tap -> (N, O, Hp-kh+1, Wp-kw+1) correlation output.

    The output is the sum over taps of ``y[o, a, b, n, i + a, j + b]``.  Under autograd (the first frame's joint
    problem) it is read as one strided view of ``y``: one op, whose backward and double backward stay cheap, unlike
    16 slices.  Without it, slices added in place are faster (with torch 2.13 on this CPU, bit for bit the same sums).
    """
    o, kh, kw, n, hp, wp = y.shape
    h, w = hp - kh + 1, wp - kw + 1
    if not (y.requires_grad and torch.is_grad_enabled()):
        # Without autograd (every Gauss-Newton product of the tracking loop) in-place adds of the shifted taps, a row
        # of taps at a time and then the rows, run about four times faster than the strided reduction below; the
        # tracked boxes came out bit-identical (docs/RESULTS.md, issue 12 fourth session).
        total = None
        for a in range(kh):
            row = y[:, a, 0, :, a:a + h, 0:w].clone()
            for b in range(1, kw):
                row += y[:, a, b, :, a:a + h, b:b + w]
            total = row if total is None else total.add_(row)
        return total.transpose(0, 1)
    y = y.contiguous()
    s = y.stride()
    taps = y.as_strided((o, kh, kw, n, hp - kh + 1, wp - kw + 1),
                        (s[0], s[1] + s[4], s[2] + s[5], s[3], s[4], s[5]))
    return taps.sum((1, 2)).transpose(0, 1)


def _filter_matrix(f: Tensor) -> Tensor:
    """f (O, D, kh, kw) -> (O*kh*kw, D): one row per output channel and kernel tap."""
    o, d, kh, kw = f.shape
    return f.permute(0, 2, 3, 1).reshape(o * kh * kw, d)


def _corr_padded_cf(zp: Tensor, fm: Tensor, kernel: tuple[int, int, int]) -> Tensor:
    """Correlation of padded channel-first features zp (D, N, Hp, Wp) with a filter matrix fm (O*kh*kw, D)
    (:func:`_filter_matrix`), ``kernel = (O, kh, kw)`` -> (N, O, Hp-kh+1, Wp-kw+1).

    One matrix product gives every tap's response, :func:`_tap_sum` adds them up.  On CPU this and its double
    backward are several times faster than ``F.conv2d`` with one output channel, which is where the Gauss-Newton
    products spend their time.
    """
    d, n, hp, wp = zp.shape
    o, kh, kw = kernel
    return _tap_sum((fm @ zp.reshape(d, n * hp * wp)).view(o, kh, kw, n, hp, wp))


def conv_same(x: Tensor, f: Tensor) -> Tensor:
    """'Same' correlation (as ``F.conv2d``, no kernel flip): x (N, D, H, W), f (O, D, k, k) -> (N, O, H, W).

    Equivalent to ``F.conv2d(x, f, padding=k // 2)`` with, for an even kernel, the last row and column dropped
    (the reference's choice): output ``i`` sees inputs ``i - k//2 .. i + k - 1 - k//2``.
    """
    o, _, kh, kw = f.shape
    return _corr_padded_cf(_pad_same(x.transpose(0, 1), kh, kw), _filter_matrix(f), (o, kh, kw))


def project(x: Tensor, projection: Tensor) -> Tensor:
    """1x1 projection: x (N, C, H, W), projection (D, C, 1, 1) -> (N, D, H, W), no activation."""
    n, c, h, w = x.shape
    d = projection.shape[0]
    z = projection.reshape(d, c) @ x.transpose(0, 1).reshape(c, n * h * w)
    return z.view(d, n, h, w).transpose(0, 1).contiguous()


def joint_problem(features: Tensor, labels: Tensor, config: ClassifierConfig,
                  sample_weights: Tensor | None = None) -> tuple[ResidualFn, list[float]]:
    """The first-frame problem over ``[filter (1, D, k, k), projection (D, C, 1, 1)]``.

    Residuals ``sqrt(w_j) (mlu(conv_same(P x_j, f)) - y_j)``, ``sqrt(filter_reg) f``, ``sqrt(projection_reg) P``.

    Args:
        features: (S, C, H, W) normalised features; labels: (S, 1, H, W); sample_weights: (S,) (1/S each if None).
    Returns:
        ``(residual_fn, preconditioner)``, the latter the reference's diagonal ``[1/filter_reg, 1/projection_reg]``.
    """
    s, c, h, w = features.shape
    if sample_weights is None:
        sample_weights = torch.full((s,), 1.0 / s, device=features.device, dtype=features.dtype)
    sqrt_w = sample_weights.sqrt().view(-1, 1, 1, 1)
    k = config.kernel_size
    # Constant, padded, channel-first features.  The score is computed as conv(x, f o P): the projection is
    # folded into the filter (16 taps x C), which is the same function as conv(P x, f) at a quarter of the cost
    # of projecting all samples, both forward and in every Jacobian product.
    xp = _pad_same(features.transpose(0, 1), k, k).contiguous()
    xp2 = xp.reshape(c, -1)
    hp, wp = xp.shape[-2:]
    alpha, reg_f, reg_p = config.mlu_alpha, math.sqrt(config.filter_reg), math.sqrt(config.projection_reg)

    def residuals(params: list[Tensor]) -> list[Tensor]:
        f, p = params
        o, d, kh, kw = f.shape
        fm = _filter_matrix(f) @ p.reshape(d, c)  # (O*kh*kw, C)
        score = _tap_sum((fm @ xp2).view(o, kh, kw, s, hp, wp))
        return [sqrt_w * (mlu(score, alpha) - labels), reg_f * f, reg_p * p]

    # The preconditioner balances the very different scales of filter and projection, so CG does not spend its
    # iterations on one of them (reference FactorizedConvProblem.M1).
    return residuals, [1.0 / config.filter_reg, 1.0 / config.projection_reg]


def filter_problem(samples: Tensor, labels: Tensor, weights: Tensor, config: ClassifierConfig) -> ResidualFn:
    """The filter-only problem over ``[filter (1, D, k, k)]``; samples (n, D, H, W) projected, labels (n, 1, H, W),
    weights (n,).  Residuals ``sqrt(w_j) (mlu(conv_same(x_j, f)) - y_j)`` and ``sqrt(filter_reg) f``."""
    k = config.kernel_size
    zp = _pad_same(samples.transpose(0, 1), k, k).contiguous()  # constant: padded once per optimisation
    sqrt_w = weights.clamp(min=0).sqrt().view(-1, 1, 1, 1)
    alpha, reg_f = config.mlu_alpha, math.sqrt(config.filter_reg)

    def residuals(params: list[Tensor]) -> list[Tensor]:
        (f,) = params
        score = _corr_padded_cf(zp, _filter_matrix(f), (f.shape[0], k, k))
        return [sqrt_w * (mlu(score, alpha) - labels), reg_f * f]

    return residuals


def _corr_padded_cf_adjoint(zp: Tensor, grad: Tensor, kernel_size: int, spread: Tensor | None = None) -> Tensor:
    """The adjoint of :func:`_corr_padded_cf` in the filter, for one output channel: ``grad`` (N, 1, H, W) ->
    (1, D, k, k), ``sum(grad * corr(zp, f)) = sum(adjoint * f)``.  The gradient is scattered to every tap's shifted
    position of the padded grid (one strided copy), then one matrix product with the features.  ``spread``: a
    (k, k, N, Hp, Wp) buffer, zero outside those positions, to reuse (every call writes the same positions)."""
    d, n, hp, wp = zp.shape
    k = kernel_size
    h, w = grad.shape[-2:]
    if spread is None:
        spread = grad.new_zeros(k, k, n, hp, wp)
    s = spread.stride()
    spread.as_strided((k, k, n, h, w), (s[0] + s[3], s[1] + s[4], s[2], s[3], s[4])).copy_(
        grad[:, 0].expand(k, k, n, h, w))
    return (spread.view(k * k, -1) @ zp.reshape(d, -1).t()).view(1, k, k, d).permute(0, 3, 1, 2)


def filter_linearization(samples: Tensor, labels: Tensor, weights: Tensor, config: ClassifierConfig
                         ) -> LinearizeFn:
    """:func:`filter_problem`'s residuals with their Jacobian products written out, for :class:`GaussNewtonCG`:
    ``J p = [sqrt(w) mlu'(s) corr(x, p), sqrt(filter_reg) p]`` and ``J^T [v, u] = corr^T(x, sqrt(w) mlu'(s) v) +
    sqrt(filter_reg) u``, with ``s = corr(x, f)`` and ``mlu'(s) = 1`` for ``s >= 0``, ``exp(s / alpha)`` below.
    Two matrix products per CG iteration instead of double backprop's graph of a graph (tests compare the two)."""
    k = config.kernel_size
    zp = _pad_same(samples.transpose(0, 1), k, k).contiguous()
    sqrt_w = weights.clamp(min=0).sqrt().view(-1, 1, 1, 1)
    alpha, reg_f = config.mlu_alpha, math.sqrt(config.filter_reg)
    spread = zp.new_zeros(k, k, *zp.shape[1:])  # the adjoint's scatter buffer, zeroed once for all CG iterations

    def linearize(params: list[Tensor]) -> Linearization:
        (f,) = params
        score = _corr_padded_cf(zp, _filter_matrix(f), (1, k, k))
        slope = sqrt_w if alpha == 0 else torch.where(score >= 0, 1.0, torch.exp(score / alpha)) * sqrt_w
        residuals = [sqrt_w * (mlu(score, alpha) - labels), reg_f * f]

        def jvp(p: list[Tensor]) -> list[Tensor]:
            return [slope * _corr_padded_cf(zp, _filter_matrix(p[0]), (1, k, k)), reg_f * p[0]]

        def vjp(v: list[Tensor]) -> list[Tensor]:
            return [_corr_padded_cf_adjoint(zp, slope * v[0], k, spread) + reg_f * v[1]]

        return Linearization(residuals, jvp, vjp)

    return linearize


def gaussian_label(size: Sequence[int], sigma: float | Sequence[float], offsets: Tensor | Sequence,
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Gaussian labels (N, 1, H, W), peak value 1 at ``(H//2 + offset_row, W//2 + offset_col)``.

    Args:
        size: ``(H, W)`` of the score map.
        sigma: standard deviation in cells (a float or ``(sigma_row, sigma_col)``).
        offsets: (N, 2) or (2,) target offsets ``(row, col)`` in cells, sub-cell values allowed.
    """
    h, w = int(size[0]), int(size[1])
    if isinstance(offsets, Tensor):
        device = offsets.device if device is None else device
        off = offsets.to(device=device, dtype=dtype)
    else:
        off = torch.as_tensor(offsets, dtype=dtype, device=device)
    off = off.reshape(-1, 2)
    s_r, s_c = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else map(float, sigma)
    rows = torch.arange(h, dtype=dtype, device=off.device) - h // 2  # displacement of each row, in cells
    cols = torch.arange(w, dtype=dtype, device=off.device) - w // 2
    g_r = torch.exp(-0.5 * ((rows[None, :] - off[:, 0:1]) / s_r) ** 2)  # (N, H)
    g_c = torch.exp(-0.5 * ((cols[None, :] - off[:, 1:2]) / s_c) ** 2)  # (N, W)
    return (g_r[:, :, None] * g_c[:, None, :]).unsqueeze(1)


class OnlineClassifier:
    """Projection + filter, sample memory and their online optimisation.

    Args:
        config: :class:`ClassifierConfig`.
        in_channels: ``C`` of the backbone features (256 for ResNet-18 layer3).
        feature_size: ``(H, W)`` of the feature grid and score map (18x18 for a 288 crop at stride 16).
        sigma: label standard deviation in cells (the tracker's ``output_sigma_factor`` times the target size in
            cells; 0.9 for the default crop).
        device: where every tensor lives.
        generator: the source of the random initial projection and filter (determinism per generator).
    """

    def __init__(self, config: ClassifierConfig, in_channels: int, feature_size: Sequence[int], sigma: float,
                 device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> None:
        self.config = config
        self.in_channels = int(in_channels)
        self.feature_size = (int(feature_size[0]), int(feature_size[1]))
        self.sigma = sigma
        self.device = torch.device(device)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.dtype = torch.float32
        d, k, m = config.compressed_dim, config.kernel_size, config.sample_memory_size
        h, w = self.feature_size
        self.projection: Tensor | None = None  # (D, C, 1, 1), frozen after initialize
        self.filter: Tensor | None = None  # (1, D, k, k)
        self.samples = torch.zeros(m, d, h, w, device=self.device, dtype=self.dtype)  # projected memory
        self.labels = torch.zeros(m, 1, h, w, device=self.device, dtype=self.dtype)
        self.weights = torch.zeros(m, device=self.device, dtype=self.dtype)
        self.num_init_samples = 0
        self.num_stored_samples = 0  # samples ever stored (the reference's counter; may exceed the memory size)
        self.previous_replace_index: int | None = None
        self.kernel_size = k

    # -- helpers ------------------------------------------------------------------------------------------------
    def _randn(self, *shape: int) -> Tensor:
        gen_device = self.generator.device
        return torch.randn(*shape, generator=self.generator, device=gen_device, dtype=self.dtype).to(self.device)

    def draw_initial_parameters(self) -> tuple[Tensor, Tensor]:
        """Random ``(filter (1, D, k, k), projection (D, C, 1, 1))`` from the generator, as the reference:
        ``f ~ N(0, 1) / numel(f)``, ``P ~ N(0, 1) / sqrt(C) * projection_init_std_scale``."""
        cfg = self.config
        d, k, c = cfg.compressed_dim, cfg.kernel_size, self.in_channels
        projection = self._randn(d, c, 1, 1) * (cfg.projection_init_std_scale / math.sqrt(c))
        filt = self._randn(1, d, k, k) / (d * k * k)
        return filt, projection

    @property
    def initialized(self) -> bool:
        return self.filter is not None

    @property
    def num_filled(self) -> int:
        """Memory slots holding a sample; they are always the first ``num_filled`` (empty slots fill in order)."""
        return min(self.num_stored_samples, self.config.sample_memory_size)

    def labels_for(self, offsets: Tensor | Sequence) -> Tensor:
        """Labels (N, 1, H, W) for offsets (N, 2) in cells, with this classifier's sigma and grid."""
        return gaussian_label(self.feature_size, self.sigma, offsets, device=self.device, dtype=self.dtype)

    # -- first frame --------------------------------------------------------------------------------------------
    def initialize(self, features: Tensor, offsets: Tensor | Sequence) -> dict:
        """Joint Gauss-Newton/CG training of projection and filter on the first-frame samples; fills the memory.

        Args:
            features: (S, C, H, W) normalised backbone features of the (augmented) first-frame crops.
            offsets: (S, 2) target offset ``(row, col)`` in cells for each sample.
        Returns:
            ``{"losses": [1/2 ||r||^2 at each GN linearisation and at the end], "backprop_calls": int}``.
        """
        cfg = self.config
        x = features.to(device=self.device, dtype=self.dtype)
        s, c = x.shape[:2]
        if c != self.in_channels or tuple(x.shape[-2:]) != self.feature_size:
            raise ValueError(f"features {tuple(x.shape)} do not match C={self.in_channels}, {self.feature_size}")
        if s > cfg.sample_memory_size:
            raise ValueError(f"{s} init samples do not fit a memory of {cfg.sample_memory_size}")
        y = self.labels_for(offsets)
        if y.shape[0] != s:
            raise ValueError(f"{y.shape[0]} offsets for {s} samples")
        filt, projection = self.draw_initial_parameters()
        residuals, precond = joint_problem(x, y, cfg)
        opt = GaussNewtonCG(residuals, [filt, projection], preconditioner=precond, fletcher_reeves=True)
        losses: list[float] = []
        if cfg.init_gn_iter > 0:
            losses = opt.run(cfg.init_cg_iter // cfg.init_gn_iter, cfg.init_gn_iter)
        self.filter = filt.detach()
        self.projection = projection.detach()

        # Memory: the init samples, projected with the final (now frozen) projection, weight 1/S each.
        self.samples.zero_()
        self.labels.zero_()
        self.weights.zero_()
        with torch.no_grad():
            self.samples[:s] = project(x, self.projection)
        self.labels[:s] = y
        self.weights[:s] = 1.0 / s
        self.num_init_samples = s
        self.num_stored_samples = s
        self.previous_replace_index = None
        return {"losses": losses, "backprop_calls": opt.backprop_calls}

    # -- tracking -----------------------------------------------------------------------------------------------
    def project(self, features: Tensor) -> Tensor:
        """features (N, C, H, W) normalised -> (N, D, H, W) with the frozen projection (no activation)."""
        self._check_initialized()
        with torch.no_grad():
            return project(features.to(device=self.device, dtype=self.dtype), self.projection)

    def scores(self, projected: Tensor) -> Tensor:
        """Raw filter response (N, 1, H, W) of projected features (N, D, H, W); no MLU at test time."""
        self._check_initialized()
        with torch.no_grad():
            return conv_same(projected.to(device=self.device, dtype=self.dtype), self.filter)

    def update(self, projected: Tensor, offset: Tensor | Sequence[float], learning_rate: float | None = None,
               optimize: bool = False, cg_iter: int | None = None) -> list[float]:
        """Adds one sample to the memory, then optionally re-optimises the filter.

        Args:
            projected: (1, D, H, W) projected features of the frame's crop.
            offset: (2,) target offset ``(row, col)`` in cells in that crop (the label centre).
            learning_rate: the new sample's weight rate (``config.learning_rate`` when None).
            optimize: run :meth:`optimize_filter` afterwards.
            cg_iter: CG iterations for it (``config.update_cg_iter`` when None).
        Returns:
            the losses of the optimisation (empty without one).
        """
        self._check_initialized()
        lr = self.config.learning_rate if learning_rate is None else learning_rate
        idx = self._update_weights(lr)
        self.previous_replace_index = idx
        self.samples[idx] = projected.reshape(self.samples.shape[1:]).to(device=self.device, dtype=self.dtype)
        self.labels[idx] = self.labels_for(offset)[0]
        self.num_stored_samples += 1
        if optimize:
            return self.optimize_filter(cg_iter)
        return []

    def _update_weights(self, lr: float) -> int:
        """Reference ``update_sample_weights`` (3.4 item 7), in place on ``self.weights``; returns the slot to fill.

        The new sample replaces the lowest-weight slot after the init samples (empty slots have weight 0, so they
        fill first, in order).  First update: all weights are divided by ``1 - lr`` and the new slot gets ``lr``;
        later ones: the new slot gets the previous new slot's weight ``/ (1 - lr)``.  Then normalise to sum 1, and
        if the init samples hold less than ``init_samples_minimum_weight`` in total, rescale the others by
        ``1 / (floor + their sum)`` and give each init sample ``floor / num_init``.  Kept exactly, quirk included:
        after that rescaling the total is slightly above 1.
        """
        sw = self.weights
        floor = self.config.init_samples_minimum_weight
        floor = None if not floor else floor
        num_init = self.num_init_samples
        start = 0 if floor is None else num_init
        if self.num_stored_samples == 0 or lr == 1:
            sw.zero_()
            sw[0] = 1.0
            r_ind = 0
        else:
            if start >= sw.numel():
                raise ValueError("no replaceable memory slot: the init samples fill the memory")
            r_ind = int(torch.argmin(sw[start:])) + start  # argmin returns the first minimum: fill in order
            if self.previous_replace_index is None:
                sw /= 1 - lr
                sw[r_ind] = lr
            else:
                sw[r_ind] = sw[self.previous_replace_index] / (1 - lr)
        sw /= sw.sum()
        if floor is not None and float(sw[:num_init].sum()) < floor:
            sw /= floor + sw[num_init:].sum()
            sw[:num_init] = floor / num_init
        return r_ind

    def optimize_filter(self, cg_iter: int | None = None, report_losses: bool = True) -> list[float]:
        """One Gauss-Newton linearisation of the filter-only problem over the memory, ``cg_iter`` CG iterations.

        Polak-Ribiere, no preconditioner (reference ConvProblem), Jacobian products written out
        (:func:`filter_linearization`).  Empty slots have weight 0 and contribute nothing, so only the filled slots
        are evaluated.  Returns the losses (before, after), or nothing with
        ``report_losses`` false (the tracking loop: the loss after costs one more forward pass over the memory).
        """
        self._check_initialized()
        cfg = self.config
        n_cg = cfg.update_cg_iter if cg_iter is None else cg_iter
        n = self.num_filled
        linearize = filter_linearization(self.samples[:n], self.labels[:n], self.weights[:n], cfg)
        filt = self.filter.clone()
        # The residuals (read only for reported losses) come from the same linearisation: the memory is padded once.
        opt = GaussNewtonCG(lambda params: linearize(params).residuals, [filt], fletcher_reeves=False,
                            linearize=linearize)
        losses = opt.run(n_cg, 1, report_losses=report_losses)
        self.filter = filt.detach()
        return losses

    # -- state --------------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """A copy of the whole model state (projection, filter, memory) for :meth:`restore`."""
        n = self.num_filled
        return {
            "projection": None if self.projection is None else self.projection.clone(),
            "filter": None if self.filter is None else self.filter.clone(),
            "samples": self.samples[:n].clone(),
            "labels": self.labels[:n].clone(),
            "weights": self.weights.clone(),
            "num_init_samples": self.num_init_samples,
            "num_stored_samples": self.num_stored_samples,
            "previous_replace_index": self.previous_replace_index,
        }

    def restore(self, state: dict) -> None:
        """Returns to a :meth:`snapshot` (of a classifier with the same configuration)."""
        self.projection = None if state["projection"] is None else state["projection"].clone()
        self.filter = None if state["filter"] is None else state["filter"].clone()
        n = state["samples"].shape[0]
        self.samples.zero_()
        self.labels.zero_()
        self.samples[:n] = state["samples"]
        self.labels[:n] = state["labels"]
        self.weights.copy_(state["weights"])
        self.num_init_samples = state["num_init_samples"]
        self.num_stored_samples = state["num_stored_samples"]
        self.previous_replace_index = state["previous_replace_index"]

    def _check_initialized(self) -> None:
        if self.filter is None or self.projection is None:
            raise RuntimeError("OnlineClassifier.initialize() must run first")
