"""The tracker's per-frame IoU-Net (tracker_core.refinement_head) against the network it is built from.

Folding BatchNorm and writing the box gradient out by hand must change nothing but rounding: scores, IoU
features and d score / d box are compared with the unfolded network and autograd, in float64 where the
comparison should be exact, with BatchNorm statistics far from the identity so that a wrong fold shows.
"""

import pytest
import torch

from tracker_core.iounet import AtomIoUNet
from tracker_core.prroi_pool import WindowCache, pooled_with_box_vjp, prroi_pool2d_batched
from tracker_core.refinement import optimize_boxes
from tracker_core.refinement_head import RefinementHead


def _net(seed: int = 0, dtype=torch.float64) -> AtomIoUNet:
    """Levels of different widths (16 and 12 channels, 24 and 20 hidden units), so the padding is exercised."""
    torch.manual_seed(seed)
    net = AtomIoUNet(input_dim=(8, 12), pred_input_dim=(16, 12), pred_inter_dim=(24, 20), ref_dim=(8, 16),
                     test_dim=(12, 12), box_offset=(3, 7)).to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g, dtype=dtype))
            m.running_var.copy_(torch.rand(n, generator=g, dtype=dtype) * 3 + 0.2)
            m.bias.data.copy_(torch.randn(n, generator=g, dtype=dtype) * 0.5)
    return net.eval()


def _inputs(dtype=torch.float64, num_boxes: int = 9):
    g = torch.Generator().manual_seed(5)
    f8 = torch.randn(1, 8, 36, 36, generator=g, dtype=dtype)
    f16 = torch.randn(1, 12, 18, 18, generator=g, dtype=dtype)
    ref = torch.tensor([[100.0, 90.0, 80.0, 60.0]], dtype=dtype)
    xy = torch.rand(1, num_boxes, 2, generator=g, dtype=dtype) * 150 + 40
    wh = torch.rand(1, num_boxes, 2, generator=g, dtype=dtype) * 90 + 20
    boxes = torch.cat([xy, wh], -1)
    boxes[0, -1] = torch.tensor([-40.0, 250.0, 60.0, 70.0])  # partly outside the map
    return (f8, f16), ref, boxes


def test_folded_head_scores_and_features_equal_the_network():
    net = _net()
    feats, ref, boxes = _inputs()
    head = RefinementHead(net)
    with torch.no_grad():
        mod = net.get_modulation(feats, ref)
        want_feat = net.get_iou_feat(feats)
        want = net.score_boxes(net.modulate(mod, want_feat), boxes)
    got_feat = head.get_iou_feat(feats)
    for a, b in zip(got_feat, want_feat):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    got = head.score_boxes(head.modulate(mod, got_feat), boxes)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert want.std() > 0.1  # the boxes score differently: the comparison is not of constants


def test_written_out_box_gradient_equals_autograd():
    net = _net(seed=2)
    feats, ref, boxes = _inputs()
    head = RefinementHead(net)
    with torch.no_grad():
        mod = net.get_modulation(feats, ref)
        modulated = net.modulate(mod, net.get_iou_feat(feats))
    b = boxes.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(net.score_boxes(modulated, b).sum(), b)
    scores, got = head.score_boxes_with_grad(modulated, boxes)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert (want.abs() > 1e-6).sum() > boxes.numel() // 2  # gradients are not trivially zero


def test_pooling_vjp_equals_autograd_including_empty_and_outside_boxes():
    g = torch.Generator().manual_seed(9)
    feats = torch.randn(2, 5, 11, 13, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[[10.0, 12.0, 70.0, 50.0], [-30.0, -20.0, 16.0, 8.0], [40.0, 40.0, 40.0, 60.0]],
                          [[3.3, 7.1, 9.9, 83.0], [90.0, 60.0, 300.0, 200.0], [50.0, 30.0, 20.0, 10.0]]],
                         dtype=torch.float64)
    weights = torch.randn(2, 3, 5, 4, 4, generator=g, dtype=torch.float64)
    b = boxes.clone().requires_grad_(True)
    want_out = prroi_pool2d_batched(feats, b, 4, 4, 1 / 8)
    (want,) = torch.autograd.grad((want_out * weights).sum(), b)
    out, vjp = pooled_with_box_vjp([feats], boxes, [4], [1 / 8])  # (1, N*P, B*C*B): bin column, channel, bin row
    torch.testing.assert_close(out.view(2, 3, 4, 5, 4).permute(0, 1, 3, 4, 2), want_out.detach(), rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(vjp(weights.permute(0, 1, 4, 2, 3).reshape(1, 6, 80)), want, rtol=1e-10,
                               atol=1e-12)
    assert float(want[0, 2].abs().sum()) == 0.0 and float(want[1, 2].abs().sum()) == 0.0  # zero-area boxes


def test_window_cache_reuses_only_the_same_maps_and_window():
    """Pooling through a WindowCache equals pooling without one, value for value and gradient for gradient: for
    boxes in the cached window (reused), boxes elsewhere (cut anew), and other maps with the same window."""
    g = torch.Generator().manual_seed(5)
    maps = [torch.randn(1, 6, 30, 30, generator=g), torch.randn(1, 4, 15, 15, generator=g)]
    other_maps = [m + 1.0 for m in maps]
    near = torch.tensor([[[40.0, 40.0, 90.0, 80.0], [42.0, 41.0, 88.0, 79.0]]])
    moved = near + torch.tensor([[[0.3, 0.2, 0.1, -0.2]]])  # same cells: the window is reused
    far = near + 100.0  # another window
    grad = torch.randn(2, 2, 4 * 6 * 4, generator=g)
    cache = WindowCache()
    reused = 0
    for feats, boxes in ((maps, near), (maps, moved), (maps, far), (other_maps, far), (maps, near)):
        before = cache.feats_t
        got, got_vjp = pooled_with_box_vjp(feats, boxes, [4, 4], [1 / 8, 1 / 16], [0.0, 0.0], cache=cache)
        reused += cache.feats_t is before
        want, want_vjp = pooled_with_box_vjp(feats, boxes, [4, 4], [1 / 8, 1 / 16], [0.0, 0.0])
        assert torch.equal(got, want)
        assert torch.equal(got_vjp(grad), want_vjp(grad))
        assert got.abs().sum() > 0
    assert reused == 1  # only the moved boxes on the same maps


@pytest.mark.parametrize("iterations", [0, 5])
def test_refinement_with_the_head_follows_the_network(iterations):
    """The same five gradient steps, whether autograd (training validation) or the head (tracking) takes them."""
    net = _net(seed=4, dtype=torch.float32)
    feats, ref, boxes = _inputs(torch.float32)
    head = RefinementHead(net)
    with torch.no_grad():
        mod = net.get_modulation(feats, ref)
    ref_boxes, ref_ious = optimize_boxes(net, mod, net.get_iou_feat(feats), boxes, iterations, 1.0, 1.0)
    got_boxes, got_ious = optimize_boxes(head, mod, head.get_iou_feat(feats), boxes, iterations, 1.0, 1.0)
    torch.testing.assert_close(got_boxes, ref_boxes, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got_ious, ref_ious, rtol=1e-4, atol=1e-4)
    if iterations:
        assert (got_boxes - boxes).abs().max() > 0.5  # the boxes moved


def test_head_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        RefinementHead(_net().train())
