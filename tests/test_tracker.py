"""The ATOM tracking loop end to end, on synthetic video (fast) and on a real sequence (when ../shared is there)."""

import math

import numpy as np
import pytest
import torch

from tracker_core.backbones import build_backbone
from tracker_core.boxes import Box, iou
from tracker_core.config import preset
from tracker_core.iounet import AtomIoUNet
from tracker_core.model_io import AtomModel
from tracker_core.result import Status
from tracker_core.tracker import AtomTracker


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", pretrained=True)


def _textured(rng, h, w):
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def moving_square_video(n=12, size=(240, 320), box=(100, 80, 40, 32), step=(4, 2), seed=0):
    """A textured object sliding over a smooth background; returns frames and true boxes."""
    rng = np.random.default_rng(seed)
    H, W = size
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([(xx * 0.5) % 255, (yy * 0.7) % 255, np.full_like(xx, 90)], -1).astype(np.uint8)
    obj = _textured(rng, box[3], box[2])
    frames, boxes = [], []
    for i in range(n):
        x, y = box[0] + step[0] * i, box[1] + step[1] * i
        f = bg.copy()
        f[y:y + box[3], x:x + box[2]] = obj
        frames.append(f)
        boxes.append(Box(x, y, box[2], box[3]))
    return frames, boxes


def small_config(name="default"):
    cfg = preset(name)
    cfg.sample.image_sample_size = 160  # 10x10 feature cells: same code paths, a fraction of the cost
    cfg.classifier.sample_memory_size = 40
    cfg.device = "cpu"
    return cfg


def test_multiscale_follows_a_moving_object(lite0):
    frames, truth = moving_square_video()
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("multiscale"))
    assert tr.warning is None
    tr.initialize(frames[0], truth[0])
    ious = []
    for f, t in zip(frames[1:], truth[1:]):
        r = tr.track(f)
        ious.append(iou(r.box, t))
        assert r.score_map is not None and r.score_map.shape == (160, 160)
        assert r.iou is None and r.proposals is None
    assert np.mean(ious) > 0.6, ious


def test_full_atom_path_runs_and_is_deterministic(lite0):
    """With an (untrained) IoU-Net every stage runs, results carry the evidence, and a seed fixes the result."""
    torch.manual_seed(0)
    net = AtomIoUNet(input_dim=lite0.out_channels, pred_input_dim=(32, 32), pred_inter_dim=(32, 32),
                     ref_dim=(32, 32), test_dim=(32, 32)).eval()
    frames, truth = moving_square_video(n=6)
    runs = []
    for _ in range(2):
        tr = AtomTracker(AtomModel(lite0, net, {}), small_config("default"))
        tr.initialize(frames[0], truth[0])
        res = [tr.track(f) for f in frames[1:]]
        runs.append(res)
    for r in runs[0]:
        assert r.status in tuple(Status)
        if r.status != Status.NOT_FOUND:
            assert r.proposals.shape == (10, 4) and r.proposal_ious.shape == (10,)
            assert 0.0 <= r.iou <= 1.0
        for stage in ("backbone", "localisation"):
            assert stage in r.timings
    assert [r.box.as_tuple() for r in runs[0]] == [r.box.as_tuple() for r in runs[1]]


def test_missing_iounet_falls_back_to_multiscale_with_a_warning(lite0):
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("default"))
    assert tr.warning and "multiscale" in tr.warning
    assert not tr.config.refinement.use_iou_net
    assert len(tr.config.localization.scale_factors) == 5


def test_correction_policies(lite0):
    frames, truth = moving_square_video(n=5)
    for policy in ("reinitialize", "update"):
        cfg = small_config("multiscale")
        cfg.correction_policy = policy
        tr = AtomTracker(AtomModel(lite0, None, {}), cfg)
        tr.initialize(frames[0], truth[0])
        tr.track(frames[1])
        tr.update_with_box(frames[2], truth[2])
        assert tr.box.as_tuple() == pytest.approx(truth[2].as_tuple())
        r = tr.track(frames[3])
        assert iou(r.box, truth[3]) > 0.5


def test_bad_initial_box(lite0):
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("multiscale"))
    with pytest.raises(ValueError):
        tr.initialize(np.zeros((50, 50, 3), np.uint8), Box(1, 1, 0, 5))
    with pytest.raises(RuntimeError):
        tr.track(np.zeros((50, 50, 3), np.uint8))


def test_filter_trains_every_tenth_frame_whatever_the_status(lite0, monkeypatch):
    """Reference 3.4 item 8: the periodic CG step also runs on uncertain and not-found frames, which add no
    sample; hard negatives train at once with their own iteration count."""
    frames, truth = moving_square_video(n=2)
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("multiscale"))
    tr.initialize(frames[0], truth[0])
    calls, samples = [], []
    monkeypatch.setattr(tr.classifier, "optimize_filter",
                        lambda cg_iter=None, report_losses=True: calls.append((tr.frame_num, cg_iter)))
    real_update = tr.classifier.update
    monkeypatch.setattr(tr.classifier, "update",
                        lambda *a, **k: samples.append(tr.frame_num) or real_update(*a, **k))
    script = {11: Status.UNCERTAIN, 21: Status.NOT_FOUND, 25: Status.HARD_NEGATIVE, 31: Status.NORMAL}
    real_localize = tr._localize

    def localize(scores, tfs):
        disp, k, status, s1, d = real_localize(scores, tfs)
        return disp, k, script.get(tr.frame_num, Status.NORMAL), s1, d

    monkeypatch.setattr(tr, "_localize", localize)
    for _ in range(31):
        tr.track(frames[1])
    lc, cc = tr.config.localization, tr.config.classifier
    assert calls == [(11, cc.update_cg_iter), (21, cc.update_cg_iter), (25, lc.hard_negative_cg_iter),
                     (31, cc.update_cg_iter)]
    assert 11 not in samples and 21 not in samples and {25, 31} <= set(samples)


def test_size_options_beyond_the_paper():
    cfg = preset("default")
    tr = AtomTracker.__new__(AtomTracker)
    tr.config, tr.size = cfg, (100.0, 50.0)
    assert tr._new_size(200.0, 25.0, 0.9) == (200.0, 25.0)  # the paper: refinement's size as it is
    cfg.refinement.max_scale_change = 1.1
    assert tr._new_size(200.0, 25.0, 0.9) == pytest.approx((110.0, 50.0 / 1.1))
    assert tr._new_size(105.0, 50.0, 0.9) == pytest.approx((105.0, 50.0))
    cfg.refinement.max_scale_change = None
    cfg.refinement.scale_update_rate = 0.5
    assert tr._new_size(400.0, 12.5, 0.9) == pytest.approx((200.0, 25.0))  # half the log change
    cfg.refinement.keep_size_below_iou = 0.5
    assert tr._new_size(400.0, 12.5, 0.49) == (100.0, 50.0)


def test_the_size_trend_follows_a_steady_growth_that_damping_alone_lags():
    """The alpha-beta option: with proposals that grow 10 % a frame, plain damping (rate 0.5) settles one frame's
    growth behind (lag g (1 - a) / a), the filter with a trend catches up; without growth both stay put."""
    def run(trend_gain, growth, frames=60):
        cfg = preset("default")
        cfg.refinement.scale_update_rate, cfg.refinement.scale_trend_gain = 0.5, trend_gain
        tr = AtomTracker.__new__(AtomTracker)
        tr.config, tr.size, tr.size_trend = cfg, (100.0, 50.0), (0.0, 0.0)
        truth = [100.0, 50.0]
        for _ in range(frames):
            truth = [t * growth for t in truth]
            tr.size = tr._new_size(truth[0], truth[1], 0.9)  # a predictor that proposes the true size
        return [math.log(t / s) for t, s in zip(truth, tr.size)]

    g = math.log(1.1)
    assert run(0.0, 1.1) == pytest.approx([g, g], rel=1e-6)  # damping alone: one frame's growth behind
    assert run(0.2, 1.1) == pytest.approx([0.0, 0.0], abs=1e-6)  # the trend removes the lag
    assert run(0.2, 1.0) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_the_damped_tracker_applies_part_of_each_size_change():
    from tracker_core.config import DAMPED_SCALE_UPDATE_RATE as r
    from tracker_core.trackers import make_tracker

    tr = make_tracker("atom-damped", device="cpu")
    assert tr.name == "atom-damped" and tr.config.refinement.scale_update_rate == r < 1.0
    assert tr.config.refinement.use_iou_net and tr.refinement_head is not None  # full ATOM, not the ablation
    tr.size = (100.0, 50.0)
    # refinement proposes 4x the width and a quarter of the height: a fraction r of each log change is applied
    assert tr._new_size(400.0, 12.5, 0.9) == pytest.approx((100.0 * 4.0 ** r, 50.0 * 0.25 ** r))


def test_multiscale_size_is_bounded_as_the_reference_bounds_its_scale():
    # Reference: min_scale_factor = max(10 / base_size), max_scale_factor = min(image_size / base_size).
    tr = AtomTracker.__new__(AtomTracker)
    tr.config, tr.start_size, tr.image_size = preset("multiscale"), (20.0, 50.0), (640, 360)
    assert tr._bounded_scale(30.0, 75.0) == (30.0, 75.0)  # inside the bounds: unchanged
    assert tr._bounded_scale(4.0, 10.0) == pytest.approx((10.0, 25.0))  # the short side stops at 10 px
    assert tr._bounded_scale(200.0, 500.0) == pytest.approx((144.0, 360.0))  # the box stops at the image height
    tr.start_size = (2.0, 3.0)  # a box smaller than the bound keeps its aspect ratio and grows to 10 px
    assert tr._bounded_scale(1.0, 1.5) == pytest.approx((10.0, 15.0))


@pytest.mark.parametrize("box, why", [((0, 0, 1e30, 1e30), "larger than any image"),
                                      ((0, 0, float("nan"), 5), "finite"), ((3, 3, 0, 5), "positive width")])
def test_an_impossible_initial_box_is_refused_in_one_sentence(lite0, box, why):
    frames, _ = moving_square_video(n=1)
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("multiscale"))
    with pytest.raises(ValueError, match=why):
        tr.initialize(frames[0], Box(*box))
    assert not tr.initialized


def test_a_box_many_times_the_frame_tracks_within_bounded_memory(lite0):
    """-2000,-2000,4360,4240 on a 320x240 frame: the search region is 5x that box; the crop stays frame-sized."""
    frames, _ = moving_square_video(n=3)
    tr = AtomTracker(AtomModel(lite0, None, {}), small_config("multiscale"))
    tr.initialize(frames[0], Box(-2000, -2000, 4360, 4240))
    r = tr.track(frames[1])
    assert all(np.isfinite(r.box.as_tuple()))


def test_keeping_the_start_box_when_refinement_gains_too_little(lite0):
    """refinement.keep_start_below_gain (beyond the paper): with a gain no prediction can reach, the refined box is
    always the starting one, so the size never changes; with the paper's None it does."""
    frames, truth = moving_square_video(n=4)
    torch.manual_seed(0)
    iounet = AtomIoUNet(input_dim=lite0.out_channels, pred_input_dim=(32, 32), pred_inter_dim=(32, 32),
                        ref_dim=(32, 32), test_dim=(32, 32)).eval()
    sizes = {}
    for gain in (None, 2.0):
        cfg = small_config()
        cfg.refinement.keep_start_below_gain = gain
        tr = AtomTracker(AtomModel(lite0, iounet, {}), cfg)
        tr.initialize(frames[0], truth[0])
        sizes[gain] = [tr.track(f).box.as_tuple()[2:] for f in frames[1:]]
    assert all(s == pytest.approx(truth[0].as_tuple()[2:]) for s in sizes[2.0])
    assert any(s != pytest.approx(truth[0].as_tuple()[2:]) for s in sizes[None])


def test_the_centre_update_rate_applies_part_of_refinements_move(lite0):
    """refinement.center_update_rate (beyond the paper): the same refinement (same seed) moves the centre from where
    the classifier put it by the given fraction of its move; the size is refinement's either way."""
    frames, truth = moving_square_video(n=2)
    torch.manual_seed(0)
    iounet = AtomIoUNet(input_dim=lite0.out_channels, pred_input_dim=(32, 32), pred_inter_dim=(32, 32),
                        ref_dim=(32, 32), test_dim=(32, 32)).eval()
    results = {}
    for rate in (1.0, 0.25):
        cfg = small_config()
        cfg.refinement.center_update_rate = rate
        tr = AtomTracker(AtomModel(lite0, iounet, {}), cfg)
        tr.initialize(frames[0], truth[0])
        results[rate] = tr.track(frames[1])
    full, part = results[1.0], results[0.25]
    assert full.status != Status.NOT_FOUND and full.refine_start == part.refine_start
    start = np.array(full.refine_start.center)
    move = np.array(full.box.center) - start
    assert np.abs(move).max() > 0.5  # refinement did move the centre
    assert np.array(part.box.center) == pytest.approx(start + 0.25 * move)
    assert part.box.as_tuple()[2:] == pytest.approx(full.box.as_tuple()[2:])


def test_warm_up_traces_the_per_frame_graph_ahead_and_changes_no_box():
    """warm_up() leaves the one-crop graph traced (the first frame then skips it) and the boxes are those of a
    tracker that was never warmed up (a fresh backbone, so no earlier test traced its graphs)."""
    from tracker_core.backbones.inference import traced_graphs

    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    frames, truth = moving_square_video(n=5)
    runs = []
    for warm in (True, False):
        tr = AtomTracker(AtomModel(backbone, None, {}), small_config("multiscale"))
        if warm:
            assert not traced_graphs(backbone)
            tr.warm_up()
            assert [key[0] for key in traced_graphs(backbone)] == [(1, 3, 160, 160)]
        tr.initialize(frames[0], truth[0])
        runs.append([tr.track(f).box.as_tuple() for f in frames[1:]])
    assert runs[0] == runs[1]
