"""Box refinement by IoU maximisation, checked with an oracle "IoU-Net" that returns the true IoU.

Gradient ascent on the exact IoU must move boxes towards the target, the top-k mean must prefer the best boxes,
and the validation measure of training must report the improvement.  None of this depends on a trained network.
"""

import torch

from tracker_core.box_tensors import iou_torch
from tracker_core.config import RefinementConfig
from tracker_core.refinement import choose_box, jittered_boxes, optimize_boxes, select_box
from tracker_core.training.feature_pool import FeaturePool
from tracker_core.training.trainer import refinement_quality


class OracleIoUNet(torch.nn.Module):
    """score = 2 IoU - 1 against a target box held in the "modulation"; features are ignored."""

    def get_modulation(self, feats, boxes):
        return (feats[0][:, 0, 0, :4].clone(), feats[1][:, 0, 0, :1])

    def get_iou_feat(self, feats):
        return feats

    def modulate(self, modulation, iou_feat):
        return modulation

    def score_boxes(self, modulated, boxes):
        target = modulated[0][:, None, :].expand_as(boxes)
        return 2 * iou_torch(boxes, target) - 1

    def predict_iou(self, modulation, iou_feat, boxes):
        return self.score_boxes(self.modulate(modulation, iou_feat), boxes)


def test_jittered_boxes_keep_the_initial_box_first_and_stay_within_the_jitter():
    init = torch.tensor([10.0, 20.0, 40.0, 10.0])
    boxes = jittered_boxes(init, 50, 0.1, 0.5, torch.Generator().manual_seed(0))
    assert boxes.shape == (51, 4)
    assert torch.equal(boxes[0], init)
    sq = 20.0  # sqrt(40 * 10)
    centres = boxes[1:, :2] + boxes[1:, 2:] / 2
    assert ((centres - torch.tensor([30.0, 25.0])).abs() <= 0.05 * sq + 1e-4).all()
    assert (boxes[1:, 2:] >= 10.0 / 3 - 1e-5).all()
    assert ((boxes[1:, 2] - 40.0).abs() <= 0.25 * sq + 1e-4).all()


def test_gradient_ascent_on_the_true_iou_moves_boxes_onto_the_target():
    target = torch.tensor([[100.0, 80.0, 60.0, 40.0]])
    net = OracleIoUNet()
    start = torch.tensor([[[110.0, 85.0, 50.0, 45.0], [92.0, 70.0, 70.0, 50.0], [105.0, 90.0, 60.0, 30.0]]])
    before = iou_torch(start, target[:, None])
    boxes, ious = optimize_boxes(net, (target, None), None, start, iterations=5, step_length=1.0)
    after = iou_torch(boxes, target[:, None])
    assert (after > before + 0.05).all(), (before, after)
    # The returned scores are the net's scores of the returned boxes.
    assert torch.allclose(ious, 2 * after - 1, atol=1e-6)
    # No steps: the boxes come back unchanged.
    same, _ = optimize_boxes(net, (target, None), None, start, iterations=0, step_length=1.0)
    assert torch.equal(same, start)


def test_select_box_averages_the_top_k_and_drops_implausible_aspects():
    boxes = torch.tensor([[0.0, 0, 10, 10], [2.0, 0, 10, 10], [4.0, 0, 10, 10], [0.0, 0, 100, 5]])
    ious = torch.tensor([0.5, 0.7, 0.9, 1.0])
    box, iou = select_box(boxes, ious, top_k=2, maximal_aspect_ratio=6.0)  # the 20:1 box is dropped
    assert torch.allclose(box, torch.tensor([3.0, 0, 10, 10]))
    assert abs(float(iou) - 0.8) < 1e-6
    assert select_box(boxes[3:], ious[3:], 3, 6.0) is None


def test_refinement_quality_reports_the_oracle_improvement():
    n = 12
    g = torch.Generator().manual_seed(3)
    truth = torch.cat([torch.rand(n, 2, generator=g) * 100 + 50, torch.rand(n, 2, generator=g) * 40 + 30], 1)
    # Smuggle each pair's truth to the oracle through the reference features.
    ref_f8 = torch.zeros(n, 1, 1, 4)
    ref_f8[:, 0, 0] = truth
    pool = FeaturePool(ref_f8=ref_f8, ref_f16=torch.zeros(n, 1, 1, 1), ref_boxes=truth.clone(),
                       test_f8=torch.zeros(n, 1, 1, 1), test_f16=torch.zeros(n, 1, 1, 1), test_boxes=truth.clone(),
                       test_ref=torch.arange(n))
    q = refinement_quality(OracleIoUNet(), pool, RefinementConfig(), batch_size=5)
    assert 0.4 < q["start_iou"] < 0.9
    assert q["refined_iou"] > q["start_iou"] + 0.05
    assert q["refined_from_truth_iou"] > 0.9  # the kink of IoU at its maximum keeps it from 1
    # A net that predicts the same for every box cannot improve anything: refinement keeps the start's quality
    # (top-k mean of jittered copies), far below the oracle's.
    flat = OracleIoUNet()
    flat.score_boxes = lambda modulated, boxes: (boxes * 0).sum(-1)
    q_flat = refinement_quality(flat, pool, RefinementConfig(), batch_size=5)
    assert q_flat["refined_iou"] < q["refined_iou"] - 0.05


def test_optimize_boxes_reports_the_starting_scores():
    target = torch.tensor([[100.0, 80.0, 60.0, 40.0]])
    start = torch.tensor([[[110.0, 85.0, 50.0, 45.0], [100.0, 80.0, 60.0, 40.0]]])
    net = OracleIoUNet()
    boxes, ious, start_scores = optimize_boxes(net, (target, None), None, start, iterations=3, step_length=1.0,
                                               with_start_scores=True)
    assert torch.allclose(start_scores, 2 * iou_torch(start, target[:, None]) - 1, atol=1e-6)
    same, same_ious, none_moved = optimize_boxes(net, (target, None), None, start, 0, 1.0, with_start_scores=True)
    assert torch.equal(none_moved, same_ious)


def test_choose_box_keeps_the_start_unless_refinement_gains_enough():
    """keep_start_below_gain (beyond the paper): the refined top-k mean only when its predicted IoU beats the
    start's by the gain; scores are 2 IoU - 1, the gain is in IoU."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [2.0, 0, 10, 10], [4.0, 0, 10, 10]])
    ious = torch.tensor([0.5, 0.7, 0.9])  # top 2: mean box x = 3, score 0.8 (IoU 0.9)
    start = torch.tensor([1.0, 1.0, 10.0, 10.0])
    paper = RefinementConfig(top_k=2)
    box, score = choose_box(boxes, ious, start, torch.tensor(0.7), paper)
    assert torch.allclose(box, torch.tensor([3.0, 0, 10, 10])) and abs(float(score) - 0.8) < 1e-6
    # gain 0.05 IoU = 0.1 in score: 0.8 - 0.7 = 0.1 is enough; 0.8 - 0.75 is not
    keep = RefinementConfig(top_k=2, keep_start_below_gain=0.05)
    box, _ = choose_box(boxes, ious, start, torch.tensor(0.69), keep)
    assert torch.allclose(box, torch.tensor([3.0, 0, 10, 10]))
    box, score = choose_box(boxes, ious, start, torch.tensor(0.75), keep)
    assert torch.equal(box, start) and abs(float(score) - 0.75) < 1e-6
    assert choose_box(boxes[:0], ious[:0], start, torch.tensor(0.0), keep) is None
