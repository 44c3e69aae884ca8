"""The online classifier (tracker_core.classifier): building blocks, memory rule, score convention, Fig. S3."""

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from tracker_core.classifier import (
    OnlineClassifier,
    conv_same,
    filter_problem,
    gaussian_label,
    joint_problem,
    mlu,
    normalize_features,
    project,
)
from tracker_core.config import ClassifierConfig
from tracker_core.optim import GaussNewtonCG, tune_gradient_descent


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The development machine's 2 cores are shared: one thread avoids OpenMP contention (several times faster)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# -- building blocks ---------------------------------------------------------------------------------------------
def test_mlu_values_and_smoothness():
    x = torch.tensor([-1.0, -0.05, -0.01, 0.0, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    y = mlu(x, 0.05)
    expected = [0.05 * (math.exp(-20) - 1), 0.05 * (math.exp(-1) - 1), 0.05 * (math.exp(-0.2) - 1), 0.0, 0.3, 2.0]
    torch.testing.assert_close(y.detach(), torch.tensor(expected, dtype=torch.float64))
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad[3:], torch.ones(3, dtype=torch.float64))  # slope 1 at 0: C^1
    torch.testing.assert_close(grad[1], torch.tensor(math.exp(-1), dtype=torch.float64))
    assert torch.equal(mlu(x, 0), x)


def test_normalize_features():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, 6, generator=gen) * torch.tensor([0.1, 1.0, 30.0]).view(3, 1, 1, 1)
    y = normalize_features(x)
    torch.testing.assert_close(y.pow(2).mean((1, 2, 3)), torch.ones(3))
    torch.testing.assert_close(normalize_features(7.0 * x), y)  # per-sample scale invariance
    torch.testing.assert_close(normalize_features(x, power=1).abs().mean((1, 2, 3)), torch.ones(3))
    assert torch.equal(normalize_features(torch.zeros(1, 2, 3, 3)), torch.zeros(1, 2, 3, 3))


@pytest.mark.parametrize("k", [4, 3, 2])
def test_conv_same_matches_reference_padding(k):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, 9, 8, generator=gen)
    f = torch.randn(2, 6, k, k, generator=gen)
    ref = F.conv2d(x, f, padding=k // 2)
    if k % 2 == 0:
        ref = ref[..., :-1, :-1]  # the reference drops the last row and column for an even kernel
    out = conv_same(x, f)
    assert out.shape == (3, 2, 9, 8)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_conv_same_and_projection_double_backward():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    f = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(conv_same, (x, f))
    p = torch.randn(3, 3, 1, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(project, (x, p))
    torch.testing.assert_close(project(x, p), F.conv2d(x, p))


@pytest.mark.parametrize("size", [(18, 18), (17, 15)])
def test_gaussian_label_peak_follows_the_score_map_convention(size):
    h, w = size
    offsets = torch.tensor([[0.0, 0.0], [3.0, -2.0], [-4.0, 5.0]])
    y = gaussian_label(size, 0.9, offsets)
    assert y.shape == (3, 1, h, w)
    for lab, (dr, dc) in zip(y, offsets.tolist()):
        idx = int(lab.flatten().argmax())
        assert (idx // w, idx % w) == (h // 2 + dr, w // 2 + dc)
        assert float(lab.max()) == pytest.approx(1.0)
        # one cell away along a row: exp(-1 / (2 sigma^2))
        assert float(lab[0, h // 2 + int(dr), w // 2 + int(dc) + 1]) == pytest.approx(math.exp(-0.5 / 0.81))
    half = gaussian_label(size, 1.0, [0.5, 0.0])[0, 0]  # sub-cell offset: between rows h//2 and h//2+1
    assert float(half[h // 2, w // 2]) == pytest.approx(float(half[h // 2 + 1, w // 2]))


# -- sample memory -----------------------------------------------------------------------------------------------
def _tiny_classifier(**cfg_changes) -> OnlineClassifier:
    cfg = ClassifierConfig(compressed_dim=2, sample_memory_size=5, init_gn_iter=1, init_cg_iter=1, **cfg_changes)
    clf = OnlineClassifier(cfg, in_channels=4, feature_size=(6, 6), sigma=0.9, device="cpu",
                           generator=torch.Generator().manual_seed(0))
    feats = normalize_features(torch.rand(2, 4, 6, 6, generator=torch.Generator().manual_seed(1)))
    clf.initialize(feats, torch.zeros(2, 2))
    return clf


def _weights(clf):
    return [float(v) for v in clf.weights]


def test_memory_weight_rule_hand_computed():
    """Reference update_sample_weights with 2 init samples, 5 slots, lr 0.5, floor 0.25, by hand (fractions)."""
    clf = _tiny_classifier(init_samples_minimum_weight=0.25)
    assert _weights(clf) == [0.5, 0.5, 0.0, 0.0, 0.0]
    fr = Fraction
    expected = [
        # first update: everything / (1 - lr), new slot lr, normalise: [1, 1, .5] / 2.5
        (2, [fr(2, 5), fr(2, 5), fr(1, 5), 0, 0]),
        # new slot = previous new / (1 - lr) = 2/5; normalise by 7/5
        (3, [fr(2, 7), fr(2, 7), fr(1, 7), fr(2, 7), 0]),
        (4, [fr(2, 11), fr(2, 11), fr(1, 11), fr(2, 11), fr(4, 11)]),
        # full: the lightest non-init slot (2) is replaced with 8/11 -> [2,2,8,2,4]/18; init sum 2/9 < 0.25:
        # non-init / (0.25 + 7/9), init 0.125 each (total 0.25 + 28/37 != 1: the reference's quirk)
        (2, [fr(1, 8), fr(1, 8), fr(16, 37), fr(4, 37), fr(8, 37)]),
        # slot 3 gets (16/37) / 0.5; normalise by 261/148; init sum 37/261 < 0.25 -> non-init / (1/4 + 224/261)
        (3, [fr(1, 8), fr(1, 8), fr(256, 1157), fr(512, 1157), fr(128, 1157)]),
    ]
    projected = torch.zeros(1, 2, 6, 6)
    for step, (slot, weights) in enumerate(expected):
        projected = projected + 1.0
        clf.update(projected, (0.0, 1.0), learning_rate=0.5, optimize=False)
        assert clf.previous_replace_index == slot, step
        assert _weights(clf) == pytest.approx([float(v) for v in weights], abs=1e-6), step
        assert torch.equal(clf.samples[slot], projected[0])
        assert int(clf.labels[slot, 0].flatten().argmax()) == 3 * 6 + 4  # label at offset (0, 1)
    assert clf.num_stored_samples == 7
    assert float(clf.weights.sum()) == pytest.approx(0.25 + 896 / 1157)  # the floor quirk: total above 1


def test_memory_default_learning_rate_and_no_floor():
    clf = _tiny_classifier(learning_rate=0.1)
    clf.update(torch.zeros(1, 2, 6, 6), (0, 0))  # learning_rate None: the config's
    assert clf.previous_replace_index == 2
    # first update: [5/9, 5/9, 1/10] / (109/90)
    assert _weights(clf)[:3] == pytest.approx([50 / 109, 50 / 109, 9 / 109], abs=1e-6)

    # without a floor the init samples are replaceable: with lr 0.5 the weights go [2,2,1,2,4]/11, then slot 2
    # gets 8/11 -> [2,2,8,2,4]/18, and the next lightest is init slot 0 (first of the ties)
    clf = _tiny_classifier(init_samples_minimum_weight=0.0)
    slots = []
    for _ in range(5):
        clf.update(torch.zeros(1, 2, 6, 6), (0, 0), learning_rate=0.5)
        slots.append(clf.previous_replace_index)
        assert float(clf.weights.sum()) == pytest.approx(1.0)
    assert slots == [2, 3, 4, 2, 0]


# -- end to end: the score map convention ------------------------------------------------------------------------
def _blob_features(gen, offsets, size, channels, signature, blob_sigma=1.0):
    """Random non-negative background with a target blob (channel signature x Gaussian) at (H//2, W//2) + offset."""
    h, w = size
    x = torch.randn(len(offsets), channels, h, w, generator=gen).relu()
    rows = torch.arange(h, dtype=torch.float32) - h // 2
    cols = torch.arange(w, dtype=torch.float32) - w // 2
    for j, (dr, dc) in enumerate(offsets.tolist()):
        blob = torch.exp(-0.5 * ((rows[:, None] - dr) ** 2 + (cols[None, :] - dc) ** 2) / blob_sigma**2)
        x[j] += signature[:, None, None] * blob
    return normalize_features(x)


def _peak(score):
    h, w = score.shape[-2:]
    idx = int(score.flatten().argmax())
    return idx // w, idx % w


@pytest.mark.parametrize("size", [(18, 18), (17, 15)])
def test_trained_filter_scores_peak_where_the_target_is(size):
    h, w = size
    c = 32
    gen = torch.Generator().manual_seed(5)
    signature = 1.0 + 2.0 * torch.rand(c, generator=gen)
    train_offsets = torch.cat([torch.zeros(1, 2), torch.randint(-4, 5, (11, 2), generator=gen).float()])
    feats = _blob_features(gen, train_offsets, size, c, signature)
    cfg = ClassifierConfig(compressed_dim=16, sample_memory_size=40, init_gn_iter=4, init_cg_iter=40)
    clf = OnlineClassifier(cfg, c, size, sigma=0.9, device="cpu", generator=torch.Generator().manual_seed(0))
    info = clf.initialize(feats, train_offsets)
    assert info["losses"][-1] < 0.3 * info["losses"][0]
    assert info["backprop_calls"] == 4 * (1 + 2 * 10)

    # the training sample itself: peak at its label's centre
    scores = clf.scores(clf.project(feats[:2]))
    assert scores.shape == (2, 1, h, w)
    assert _peak(scores[0]) == (h // 2, w // 2)
    o = train_offsets[1].int().tolist()
    assert _peak(scores[1]) == (h // 2 + o[0], w // 2 + o[1])

    # a shifted copy of a training sample (zero fill): the peak moves by the shift
    s = (3, -2)
    shifted = torch.zeros_like(feats[:1])
    shifted[..., s[0]:, :w + s[1]] = feats[:1, :, :h - s[0], -s[1]:]
    assert _peak(clf.scores(clf.project(shifted))[0]) == (h // 2 + s[0], w // 2 + s[1])

    # fresh samples with the target anywhere
    test_offsets = torch.tensor([[0, 0], [5, -5], [-6, 4], [2, 6], [-3, -1]], dtype=torch.float32)
    test = _blob_features(gen, test_offsets, size, c, signature)
    scores = clf.scores(clf.project(test))
    for sc, (dr, dc) in zip(scores, test_offsets.int().tolist()):
        assert _peak(sc) == (h // 2 + dr, w // 2 + dc)

    # tracking updates with optimisation keep it right and decrease the memory loss
    for k in range(3):
        losses = clf.update(clf.project(test[k:k + 1]), test_offsets[k], optimize=True, cg_iter=5)
        assert len(losses) == 2 and losses[1] <= losses[0]
    for sc, (dr, dc) in zip(clf.scores(clf.project(test)), test_offsets.int().tolist()):
        assert _peak(sc) == (h // 2 + dr, w // 2 + dc)


def test_deterministic_snapshot_restore_and_consistent_problem():
    gen = torch.Generator().manual_seed(3)
    c = 16
    signature = 1.0 + torch.rand(c, generator=gen)
    offsets = torch.randint(-3, 4, (6, 2), generator=gen).float()
    feats = _blob_features(gen, offsets, (10, 10), c, signature)
    cfg = ClassifierConfig(compressed_dim=8, sample_memory_size=12, init_gn_iter=2, init_cg_iter=10)

    def make():
        return OnlineClassifier(cfg, c, (10, 10), 0.9, "cpu", torch.Generator().manual_seed(11))

    a, b = make(), make()
    la, lb = a.initialize(feats, offsets), b.initialize(feats, offsets)
    assert la == lb and torch.equal(a.filter, b.filter) and torch.equal(a.projection, b.projection)

    # initialize() is GN-CG on joint_problem from draw_initial_parameters(), memory = projected samples
    c_ = make()
    f0, p0 = c_.draw_initial_parameters()
    fn, precond = joint_problem(feats, c_.labels_for(offsets), cfg)
    losses = GaussNewtonCG(fn, [f0, p0], precond).run(5, 2)
    assert losses == pytest.approx(la["losses"], rel=1e-5)
    torch.testing.assert_close(f0.detach(), a.filter)
    torch.testing.assert_close(a.samples[:6], project(feats, a.projection))
    torch.testing.assert_close(a.weights[:6], torch.full((6,), 1 / 6))
    # the filter-only problem's loss at the initial filter matches the memory's data term + filter reg
    fn_f = filter_problem(a.samples[:6], a.labels[:6], a.weights[:6], cfg)
    assert 0.5 * sum(float((r**2).sum()) for r in fn_f([a.filter])) == pytest.approx(
        la["losses"][-1] - 0.5 * cfg.projection_reg * float((a.projection**2).sum()), rel=1e-4)

    snap = a.snapshot()
    filt, weights = a.filter.clone(), a.weights.clone()
    a.update(a.project(feats[:1]), (1.0, -1.0), optimize=True)
    assert not torch.equal(a.filter, filt) and a.num_stored_samples == 7
    a.restore(snap)
    assert torch.equal(a.filter, filt) and torch.equal(a.weights, weights)
    assert a.num_stored_samples == 6 and a.previous_replace_index is None
    assert float(a.samples[6:].abs().sum()) == 0.0


def test_requires_initialize():
    clf = OnlineClassifier(ClassifierConfig(), 8, (6, 6), 0.9)
    with pytest.raises(RuntimeError):
        clf.scores(torch.zeros(1, 64, 6, 6))


# -- the paper's Fig. S3 -----------------------------------------------------------------------------------------
def test_gauss_newton_beats_tuned_gradient_descent_at_equal_backprops():
    """First-frame problem (30 samples of 256 x 18 x 18, default config): GN-CG (6 x 10, 126 backprop calls)
    against gradient descent with momentum 0.9 and the best of a step-size grid, 126 backprop calls too.

    Measured (data and init seeds 1..7): GN 0.113..0.122, best GD 0.215..0.234, ratio 0.49..0.54 (0.527 here);
    on another synthetic set the loss floor was ~0.086, so GN's excess loss was 0.25..0.30 of GD's.  Momentum 0.9
    was the best of {0, 0.5, 0.8, 0.9, 0.95} offline.  Half of GN's budget (3 steps, 63 calls) already beats GD's
    full budget.  Without the diagonal preconditioner GN ends at ~0.20: it matters.
    """
    gen = torch.Generator().manual_seed(1)
    s, c, size = 30, 256, (18, 18)
    signature = 3.0 * torch.rand(c, generator=gen)
    offsets = torch.zeros(s, 2)
    offsets[1:5] = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]])  # like the shift augmentations
    offsets[5:23] = torch.randint(-2, 3, (18, 2), generator=gen).float()  # like the random shifts of the others
    feats = _blob_features(gen, offsets, size, c, signature, blob_sigma=1.5)
    cfg = ClassifierConfig()

    clf = OnlineClassifier(cfg, c, size, sigma=0.9, device="cpu", generator=torch.Generator().manual_seed(1))
    info = clf.initialize(feats, offsets)
    gn = info["losses"]
    assert info["backprop_calls"] == 126 and len(gn) == 7

    f0, p0 = OnlineClassifier(cfg, c, size, 0.9, "cpu", torch.Generator().manual_seed(1)).draw_initial_parameters()
    fn, _ = joint_problem(feats, clf.labels_for(offsets), cfg)
    gd = tune_gradient_descent(fn, [f0, p0], 126, step_sizes=[5e-6, 1e-5, 2e-5, 3e-5, 5e-5], momenta=[0.9],
                               divergence_factor=1.5)
    print(f"\nFig. S3: GN {gn[-1]:.4f} (after 63 calls {gn[3]:.4f}) vs best GD {gd.loss:.4f} at step "
          f"{gd.step_size:g}; ratio {gn[-1] / gd.loss:.3f}; grid {gd.all_final}")
    assert gn[0] == pytest.approx(gd.losses[0], rel=1e-6)  # the same problem and start
    assert 5e-6 < gd.step_size < 5e-5  # the tuned step is inside the grid, not at an edge
    assert gn[-1] < 0.65 * gd.loss
    assert gn[3] < gd.loss


@pytest.mark.parametrize("alpha", [0.05, 0.0])
def test_written_out_filter_jacobian_products_equal_double_backprop(alpha):
    """filter_linearization's J p and J^T v against autograd's, and one Gauss-Newton step through each path."""
    from tracker_core.classifier import filter_linearization
    from tracker_core.optim import GaussNewtonCG

    g = torch.Generator().manual_seed(4)
    n, d, h = 7, 6, 9
    cfg = ClassifierConfig(compressed_dim=d, mlu_alpha=alpha)
    samples = torch.randn(n, d, h, h, generator=g, dtype=torch.float64)
    labels = torch.rand(n, 1, h, h, generator=g, dtype=torch.float64)
    weights = torch.rand(n, generator=g, dtype=torch.float64)
    f = torch.randn(1, d, 4, 4, generator=g, dtype=torch.float64) * 0.3
    residual_fn = filter_problem(samples, labels, weights, cfg)
    lin = filter_linearization(samples, labels, weights, cfg)([f])
    for got, want in zip(lin.residuals, residual_fn([f])):
        torch.testing.assert_close(got, want)
    p = torch.randn(1, d, 4, 4, generator=g, dtype=torch.float64)
    v = [torch.randn_like(r) for r in lin.residuals]
    want_jp = torch.autograd.functional.jvp(lambda x: tuple(residual_fn([x])), (f,), (p,))[1]
    want_jtv = torch.autograd.functional.vjp(lambda x: tuple(residual_fn([x])), f, tuple(v))[1]
    for got, want in zip(lin.jvp([p]), want_jp):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lin.vjp(v)[0], want_jtv, rtol=1e-10, atol=1e-12)
    score = conv_same(samples, f)
    assert bool((score < 0).any()) and bool((score > 0).any())  # both branches of the MLU are exercised

    by_hand, by_autograd = f.clone(), f.clone()
    GaussNewtonCG(residual_fn, [by_hand], fletcher_reeves=False,
                  linearize=filter_linearization(samples, labels, weights, cfg)).run(5)
    GaussNewtonCG(residual_fn, [by_autograd], fletcher_reeves=False).run(5)
    torch.testing.assert_close(by_hand.detach(), by_autograd.detach(), rtol=1e-9, atol=1e-12)
