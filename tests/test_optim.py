"""Gauss-Newton + CG by double backprop (tracker_core.optim) on problems with known solutions."""

import numpy as np
import pytest
import torch

from tracker_core.optim import GaussNewtonCG, GradientDescent, tune_gradient_descent

LAMBDA = 0.1


@pytest.fixture
def lsq():
    """Linear least squares ``A x - b`` plus a Tikhonov residual, ``x`` split into two blocks (5,) and (3,)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 8))
    b = rng.standard_normal(30)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)

    def residuals(params):
        x = torch.cat([params[0], params[1]])
        return [at @ x - bt, np.sqrt(LAMBDA) * x]

    # closed form: (A^T A + lambda I) x = A^T b, the same as lstsq on the stacked system
    stacked = np.vstack([a, np.sqrt(LAMBDA) * np.eye(8)])
    x_star = np.linalg.lstsq(stacked, np.concatenate([b, np.zeros(8)]), rcond=None)[0]
    np.testing.assert_allclose(x_star, np.linalg.solve(a.T @ a + LAMBDA * np.eye(8), a.T @ b), atol=1e-12)
    loss_star = 0.5 * np.sum((stacked @ x_star - np.concatenate([b, np.zeros(8)])) ** 2)
    return residuals, x_star, loss_star


def _params():
    return [torch.zeros(5, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64)]


@pytest.mark.parametrize("num_cg", [8, 12])
@pytest.mark.parametrize("fletcher_reeves", [True, False])
def test_linear_least_squares_one_gn_step_reaches_closed_form(lsq, num_cg, fletcher_reeves):
    residuals, x_star, loss_star = lsq
    params = _params()
    opt = GaussNewtonCG(residuals, params, fletcher_reeves=fletcher_reeves)
    losses = opt.run(num_cg, num_gn_iter=1)
    x = torch.cat([p.detach() for p in params]).numpy()
    np.testing.assert_allclose(x, x_star, rtol=0, atol=1e-9)
    assert len(losses) == 2
    assert losses[1] == pytest.approx(loss_star, rel=1e-10)
    assert losses[0] > losses[1]


def test_preconditioned_and_plain_agree_on_the_optimum(lsq):
    residuals, x_star, _ = lsq
    results = []
    for precond in (None, [10.0, torch.tensor([1e4, 1.0, 3.0], dtype=torch.float64)]):
        for standard_alpha in (True, False):
            params = _params()
            # 12 > 8 unknowns: with a 10^4 spread in the preconditioner, float64 CG needs a few extra iterations
            GaussNewtonCG(residuals, params, preconditioner=precond, standard_alpha=standard_alpha).run(12)
            results.append(torch.cat([p.detach() for p in params]).numpy())
    for x in results:
        np.testing.assert_allclose(x, x_star, rtol=0, atol=1e-9)


def test_preconditioner_helps_on_badly_scaled_blocks():
    """Two blocks whose curvatures differ by 10^4: the matching diagonal preconditioner solves it in 2 CG steps."""
    scale = torch.tensor([100.0, 1.0], dtype=torch.float64)
    target = [torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([3.0, 4.0], dtype=torch.float64)]

    def residuals(params):
        return [scale[0] * (params[0] - target[0]), scale[1] * (params[1] - target[1])]

    def solve(precond):
        params = [torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
        return GaussNewtonCG(residuals, params, preconditioner=precond).run(1)[-1]

    assert solve([1e-4, 1.0]) < 1e-20  # exact: the preconditioned system is the identity
    assert solve(None) > 1.0  # one unpreconditioned CG step cannot fix both scales


def test_nonlinear_problem_decreases_monotonically_to_a_stationary_point():
    """Exponential curve fit ``a0 exp(-b t) + a1`` (nonlinear in b) with a small Tikhonov term."""
    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 4, 40, dtype=torch.float64)
    y = 2.0 * torch.exp(-1.3 * t) + 0.5 + 0.01 * torch.randn(40, generator=gen, dtype=torch.float64)

    def residuals(params):
        a, b = params
        return [a[0] * torch.exp(-b[0] * t) + a[1] - y, 1e-2 * torch.cat([a, b])]

    params = [torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)]
    losses = GaussNewtonCG(residuals, params).run(3, num_gn_iter=8)
    assert all(l1 <= l0 + 1e-15 for l0, l1 in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.01 * losses[0]
    loss = 0.5 * sum((r**2).sum() for r in residuals(params))
    grads = torch.autograd.grad(loss, params)
    assert max(float(g.abs().max()) for g in grads) < 1e-8
    assert float(params[1][0].detach()) == pytest.approx(1.3, abs=0.05)


def test_rosenbrock_chain_converges_to_ones():
    def residuals(params):
        (x,) = params
        return [10 * (x[1:] - x[:-1] ** 2), 1 - x[:-1]]

    params = [torch.full((4,), 0.5, dtype=torch.float64)]
    losses = GaussNewtonCG(residuals, params).run(4, num_gn_iter=8)
    assert losses[-1] < 1e-20
    np.testing.assert_allclose(params[0].detach().numpy(), np.ones(4), atol=1e-10)


def test_backprop_call_bookkeeping(lsq, monkeypatch):
    residuals, _, _ = lsq
    real_grad = torch.autograd.grad
    calls = []

    def counting_grad(*args, **kwargs):
        calls.append(1)
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    opt = GaussNewtonCG(residuals, _params())
    losses = opt.run([3, 5])  # a list: one GN step per entry
    assert len(losses) == 3
    assert opt.backprop_calls == (1 + 2 * 3) + (1 + 2 * 5) == len(calls)
    opt.run(2, num_gn_iter=2)
    assert opt.backprop_calls == 18 + 2 * (1 + 2 * 2) == len(calls)
    assert len(opt.loss_history) == 3 + 3

    calls.clear()
    gd = GradientDescent(residuals, _params(), step_size=1e-3)
    assert len(gd.run(7)) == 8
    assert gd.backprop_calls == 7 == len(calls)


def test_cg_stops_cleanly_when_converged():
    """More CG iterations than unknowns on an exactly solvable problem: no NaN from a zero residual."""
    def residuals(params):
        return [params[0] - torch.tensor([1.0, 2.0], dtype=torch.float64)]

    params = [torch.zeros(2, dtype=torch.float64)]
    opt = GaussNewtonCG(residuals, params)
    losses = opt.run(10)
    assert losses[-1] == 0.0
    assert opt.backprop_calls <= 1 + 2 * 10
    np.testing.assert_allclose(params[0].detach().numpy(), [1.0, 2.0])


def test_direction_memory_and_constant_residual_blocks(lsq):
    residuals, x_star, _ = lsq

    def with_constant(params):  # a residual block that does not depend on the parameters
        return [*residuals(params), torch.ones(3, dtype=torch.float64)]

    params = _params()
    opt = GaussNewtonCG(with_constant, params, fletcher_reeves=False, direction_forget_factor=0.5)
    losses = opt.run(4, num_gn_iter=6)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(torch.cat([p.detach() for p in params]).numpy(), x_star, atol=1e-6)


def test_gradient_descent_tuning_picks_the_best_stable_step(lsq):
    residuals, x_star, loss_star = lsq
    result = tune_gradient_descent(residuals, _params(), 300, step_sizes=[1e-4, 1e-3, 1e-2, 1.0],
                                   momenta=[0.0, 0.9])
    assert result.all_final[(1.0, 0.0)] == float("inf")  # diverged, stopped early
    assert result.loss == min(result.all_final.values())
    assert result.loss == pytest.approx(loss_star, rel=1e-6)
    assert result.losses[-1] == result.loss and len(result.losses) == 301


def test_params_must_be_leaves():
    x = torch.zeros(2, requires_grad=True) * 2
    with pytest.raises(ValueError):
        GaussNewtonCG(lambda p: [p[0]], [x])


def test_run_without_losses_takes_the_same_steps_and_no_extra_forward_pass(lsq):
    """The tracker's per-frame update asks for no losses: the same parameters, one residual evaluation per
    Gauss-Newton step (the one it linearises at), none for a final loss."""
    residuals, x_star, _ = lsq
    calls = []

    def counted(params):
        calls.append(1)
        return residuals(params)

    loud, quiet = _params(), _params()
    GaussNewtonCG(residuals, loud, fletcher_reeves=False).run(3, num_gn_iter=2)
    assert GaussNewtonCG(counted, quiet, fletcher_reeves=False).run(3, num_gn_iter=2, report_losses=False) == []
    assert len(calls) == 2
    for a, b in zip(loud, quiet):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)
