"""Gauss-Newton + Conjugate Gradient by double backprop (the paper's Algorithm 1), and a gradient-descent baseline.

A problem is a residual function ``residual_fn(params: list[Tensor]) -> list[Tensor]``: the loss is
``L = 1/2 * sum_i ||r_i||^2`` over all residual blocks (regularisers are just more residual blocks).  Each
Gauss-Newton step linearises ``r(x + d) ~ r(x) + J d`` and runs CG on the normal equations ``J^T J d = -J^T r``.
No Jacobian is ever formed; products are obtained by backprop (paper section 3.2; pytracking's
``libs/optimization.py``):

* ``f0 = r(x)`` with graph, ``g = f0.detach()`` requiring grad;
* ``u = J^T g = grad(f0, x, grad_outputs=g, create_graph=True)``, so ``b = -u``;
* ``J p = grad(u, g, grad_outputs=p)`` (``u`` is linear in ``g``, so backprop through ``u`` transposes ``J^T``);
* ``J^T (J p) = grad(f0, x, grad_outputs=J p)``.

Every ``torch.autograd.grad`` call counts as one backprop call (``backprop_calls``), the unit of the paper's
Fig. S3: a Gauss-Newton step with ``n`` CG iterations costs ``1 + 2 n`` of them, a gradient-descent step one.

CG follows the reference (``pytracking/libs/optimization.py``): it starts from ``d = 0`` for each linearisation,
uses Fletcher-Reeves or Polak-Ribiere ``beta`` clamped at 0, an optional diagonal preconditioner, skips the
residual update on the last iteration, and optionally keeps its search direction across calls
(``direction_forget_factor``).  Inner products are global over all blocks (the reference's block-wise products
collapse to that for one feature, which is all this project has).  Deliberate difference: the non-standard step
length uses ``<p, r> / <p, A p>`` (the exact line search of the quadratic); the reference uses the preconditioned
residual there.  It is off by default in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

ResidualFn = Callable[[list[Tensor]], list[Tensor]]


class Linearization(NamedTuple):
    """A problem linearised at ``x`` by hand: ``residuals`` r(x) (detached blocks), ``jvp(p) = J p`` (one tensor per
    residual block) and ``vjp(v) = J^T v`` (one per parameter block)."""

    residuals: list[Tensor]
    jvp: Callable[[list[Tensor]], list[Tensor]]
    vjp: Callable[[list[Tensor]], list[Tensor]]


LinearizeFn = Callable[[list[Tensor]], Linearization]


def _ip(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Global inner product over all blocks (a 0-d tensor, so no device sync until it is read)."""
    return sum((x * y).sum() for x, y in zip(a, b))


def _half_sq_norm(blocks: Sequence[Tensor]) -> float:
    return 0.5 * float(sum((r.detach() ** 2).sum() for r in blocks))


def _as_leaves(params: Sequence[Tensor]) -> list[Tensor]:
    out = []
    for p in params:
        if not p.is_leaf:
            raise ValueError("optimiser parameters must be leaf tensors (they are updated in place)")
        out.append(p.requires_grad_(True))
    return out


class GaussNewtonCG:
    """Minimises ``1/2 ||r(x)||^2`` over ``params`` (leaf tensors, updated in place).

    Args:
        residual_fn: ``params -> list of residual blocks`` (any shapes), differentiable twice through autograd.
        params: the parameter blocks ``x``; they get ``requires_grad`` and are modified in place by :meth:`run`.
        preconditioner: optional diagonal preconditioner, one entry per parameter block: a float or a tensor
            broadcastable to the block; CG uses ``z = weight * r`` (the reference divides by the regularisation
            weight, i.e. passes ``1 / reg`` here).
        fletcher_reeves: ``beta`` rule; ``False`` gives Polak-Ribiere.  Either is clamped at 0.
        standard_alpha: ``alpha = rho / <p, A p>``; otherwise the exact line search ``<p, r> / <p, A p>``.
        direction_forget_factor: 0 resets the CG state at every linearisation; otherwise the previous search
            direction is kept and ``rho`` divided by this factor (the reference's ``CG_forgetting_rate`` option).
        linearize: optional ``params -> Linearization`` giving ``J p`` and ``J^T v`` directly instead of by double
            backprop (the same products, fewer and larger kernels); each product still counts as one backprop call.
    """

    def __init__(
        self,
        residual_fn: ResidualFn,
        params: Sequence[Tensor],
        preconditioner: Sequence[float | Tensor] | None = None,
        fletcher_reeves: bool = True,
        standard_alpha: bool = True,
        direction_forget_factor: float = 0.0,
        linearize: LinearizeFn | None = None,
    ) -> None:
        self.residual_fn = residual_fn
        self.linearize = linearize
        self.params = _as_leaves(params)
        if preconditioner is not None and len(preconditioner) != len(self.params):
            raise ValueError("preconditioner needs one entry per parameter block")
        self.preconditioner = None if preconditioner is None else list(preconditioner)
        self.fletcher_reeves = fletcher_reeves
        self.standard_alpha = standard_alpha
        self.direction_forget_factor = direction_forget_factor
        self.backprop_calls = 0
        self.loss_history: list[float] = []
        # CG state (kept across linearisations only when direction_forget_factor != 0)
        self._p: list[Tensor] | None = None
        self._rho: Tensor | float = 1.0
        self._r_prev: list[Tensor] | None = None

    # -- public -------------------------------------------------------------------------------------------------
    def run(self, num_cg_iter: int | Sequence[int], num_gn_iter: int = 1, report_losses: bool = True
            ) -> list[float]:
        """Runs Gauss-Newton steps; returns the losses ``1/2 ||r||^2`` at each linearisation point and at the end.

        ``num_cg_iter`` is the CG count per Gauss-Newton step, or a list of counts (one step per entry, and
        ``num_gn_iter`` is then ignored).  The returned list has ``steps + 1`` entries.  With ``report_losses``
        false it is empty: the final loss costs a whole forward pass (and each loss a device sync), which the
        tracker's per-frame updates never read.
        """
        counts = [num_cg_iter] * num_gn_iter if isinstance(num_cg_iter, int) else list(num_cg_iter)
        losses = []
        for n_cg in counts:
            loss = self.step(n_cg, report_loss=report_losses)
            if report_losses:
                losses.append(loss)
        if report_losses:
            losses.append(self.loss())
        self.loss_history.extend(losses)
        return losses

    def loss(self) -> float:
        """``1/2 ||r(x)||^2`` at the current parameters (a forward pass, no backprop)."""
        with torch.no_grad():
            return _half_sq_norm(self.residual_fn(self.params))

    def step(self, num_cg_iter: int, report_loss: bool = True) -> float:
        """One Gauss-Newton step: linearise, ``num_cg_iter`` CG iterations, ``x += d``.  Returns the loss before it
        (NaN with ``report_loss`` false)."""
        x = self.params
        if self.linearize is not None:
            return self._step_linearized(num_cg_iter, report_loss)
        f0 = list(self.residual_fn(x))
        loss = _half_sq_norm(f0) if report_loss else math.nan
        # Only blocks on the autograd graph take part in backprop; constant blocks contribute nothing to J.
        live_f = [i for i, r in enumerate(f0) if r.requires_grad]
        g = [f0[i].detach().requires_grad_(True) for i in live_f]
        u = self._grad([f0[i] for i in live_f], x, g, create_graph=True)
        live_u = [i for i, t in enumerate(u) if t.requires_grad]
        b = [-t.detach() for t in u]

        def apply_a(p: list[Tensor]) -> list[Tensor]:
            # J p: backprop through u = J^T g with respect to g (u is linear in g).
            jp = self._grad([u[i] for i in live_u], g, [p[i] for i in live_u])
            # J^T (J p): ordinary backprop of the residuals with J p as the output gradient.
            return self._grad([f0[i] for i in live_f], x, jp)

        delta = self._cg(apply_a, b, num_cg_iter)
        with torch.no_grad():
            for xi, di in zip(x, delta):
                xi.add_(di)
        return loss

    def _step_linearized(self, num_cg_iter: int, report_loss: bool) -> float:
        """:meth:`step` with the problem's own Jacobian products."""
        with torch.no_grad():
            lin = self.linearize(self.params)
            loss = _half_sq_norm(lin.residuals) if report_loss else math.nan
            self.backprop_calls += 1
            b = [-t for t in lin.vjp(lin.residuals)]

            def apply_a(p: list[Tensor]) -> list[Tensor]:
                self.backprop_calls += 2
                return lin.vjp(lin.jvp(p))

            delta = self._cg(apply_a, b, num_cg_iter)
            for xi, di in zip(self.params, delta):
                xi.add_(di)
        return loss

    # -- internals ----------------------------------------------------------------------------------------------
    def _grad(self, outputs: list[Tensor], inputs: list[Tensor], grad_outputs: list[Tensor],
              create_graph: bool = False) -> list[Tensor]:
        """``autograd.grad`` with unused inputs as zeros; counts one backprop call."""
        if not outputs:
            return [torch.zeros_like(t) for t in inputs]
        self.backprop_calls += 1
        grads = torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, retain_graph=True,
                                    create_graph=create_graph, allow_unused=True)
        return [torch.zeros_like(t) if gr is None else gr for gr, t in zip(grads, inputs)]

    def _precondition(self, r: list[Tensor]) -> list[Tensor]:
        if self.preconditioner is None:
            return r
        return [ri * w for ri, w in zip(r, self.preconditioner)]

    def _cg(self, apply_a: Callable[[list[Tensor]], list[Tensor]], b: list[Tensor], num_iter: int) -> list[Tensor]:
        """Solves ``A d = b`` approximately from ``d = 0`` (reference ``run_CG``)."""
        if self.direction_forget_factor == 0:
            self._p, self._rho, self._r_prev = None, 1.0, None
        elif self._p is not None:
            self._rho = self._rho / self.direction_forget_factor
        r = [t.clone() for t in b]
        delta = [torch.zeros_like(t) for t in b]
        for it in range(num_iter):
            z = self._precondition(r)
            rho_prev = self._rho
            rho = _ip(r, z)
            rho_val = float(rho)
            if rho_val == 0.0 or not math.isfinite(rho_val):
                break  # converged exactly (or broke down): nothing left to do
            self._rho = rho
            if self._p is None:
                self._p = [t.clone() for t in z]
            else:
                if self.fletcher_reeves or self._r_prev is None:
                    beta = rho / rho_prev
                else:
                    beta = (rho - _ip(self._r_prev, z)) / rho_prev
                beta = torch.clamp(torch.as_tensor(beta), min=0.0)
                self._p = [zi + pi * beta for zi, pi in zip(z, self._p)]
            q = apply_a(self._p)
            pq = _ip(self._p, q)
            if not float(pq) > 0.0:
                break  # A is not positive on p (numerically zero direction): stop rather than divide by it
            alpha = rho / pq if self.standard_alpha else _ip(self._p, r) / pq
            if not self.fletcher_reeves:
                self._r_prev = [t.clone() for t in r]
            delta = [di + pi * alpha for di, pi in zip(delta, self._p)]
            if it < num_iter - 1:  # the last residual update is never used
                r = [ri - qi * alpha for ri, qi in zip(r, q)]
        return delta


class GradientDescent:
    """Plain gradient descent with optional heavy-ball momentum on ``1/2 ||r(x)||^2`` (the paper's GD baseline).

    ``dir = grad + momentum * dir; x -= step_size * dir`` (the reference's ``GradientDescentL2``).  One backprop
    call per step.
    """

    def __init__(self, residual_fn: ResidualFn, params: Sequence[Tensor], step_size: float,
                 momentum: float = 0.0) -> None:
        self.residual_fn = residual_fn
        self.params = _as_leaves(params)
        self.step_size = step_size
        self.momentum = momentum
        self.backprop_calls = 0
        self._dir: list[Tensor] | None = None

    def loss(self) -> float:
        with torch.no_grad():
            return _half_sq_norm(self.residual_fn(self.params))

    def run(self, num_iter: int, divergence_factor: float = 1e6) -> list[float]:
        """``num_iter`` steps; returns the loss before each step and at the end (``num_iter + 1`` values).

        Stops early (padding the history with ``inf``) once the loss exceeds ``divergence_factor`` times the
        initial loss or stops being finite: a diverged step size needs no more compute.
        """
        losses: list[float] = []
        for _ in range(num_iter):
            res = self.residual_fn(self.params)
            loss = 0.5 * sum((r * r).sum() for r in res)
            loss_val = float(loss.detach())
            losses.append(loss_val)
            if not math.isfinite(loss_val) or loss_val > divergence_factor * losses[0]:
                return losses[:-1] + [math.inf] * (num_iter + 2 - len(losses))
            self.backprop_calls += 1
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
            grads = [torch.zeros_like(p) if gr is None else gr for gr, p in zip(grads, self.params)]
            if self._dir is None:
                self._dir = grads
            else:
                self._dir = [gr + self.momentum * d for gr, d in zip(grads, self._dir)]
            with torch.no_grad():
                for p, d in zip(self.params, self._dir):
                    p.sub_(self.step_size * d)
        final = self.loss()
        losses.append(final if math.isfinite(final) else math.inf)
        return losses


@dataclass
class GDTuning:
    """Result of :func:`tune_gradient_descent`: the best final loss, its settings and history, and all finals."""

    loss: float
    step_size: float
    momentum: float
    losses: list[float]
    all_final: dict[tuple[float, float], float] = field(default_factory=dict)


def tune_gradient_descent(residual_fn: ResidualFn, init_params: Sequence[Tensor], num_iter: int,
                          step_sizes: Sequence[float], momenta: Sequence[float] = (0.0,),
                          divergence_factor: float = 1e6) -> GDTuning:
    """Grid search of gradient descent from copies of ``init_params``; the best final loss after ``num_iter`` steps.

    A run whose loss exceeds ``divergence_factor`` times the initial loss is abandoned (final loss ``inf``).
    """
    best: GDTuning | None = None
    finals: dict[tuple[float, float], float] = {}
    for mom in momenta:
        for step in step_sizes:
            params = [p.detach().clone() for p in init_params]
            losses = GradientDescent(residual_fn, params, step, mom).run(num_iter, divergence_factor)
            finals[(step, mom)] = losses[-1]
            if best is None or losses[-1] < best.loss:
                best = GDTuning(losses[-1], step, mom, losses)
    if best is None:
        raise ValueError("empty grid")
    best.all_final = finals
    return best
