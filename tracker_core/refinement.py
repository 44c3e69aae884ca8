"""Box refinement by IoU maximisation (paper section 3.3), shared by the tracker and the training validation.

All boxes here are crop-pixel (x, y, w, h), top-left, in the search-region crop the IoU features came from.
The functions are pure: the tracker passes its generator and configuration, the trainer its validation pairs, so
what validation measures is exactly what tracking does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["choose_box", "jittered_boxes", "optimize_boxes", "select_box"]


def jittered_boxes(init: torch.Tensor, num_random: int, jitter_pos: float, jitter_sz: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The starting boxes of refinement: ``init`` (4,) followed by ``num_random`` random perturbations of it.

    Each perturbation moves the centre by up to ``jitter_pos / 2`` and changes width and height by up to
    ``jitter_sz / 2`` of ``sqrt(w h)`` (uniform, as the reference); sizes stay above a third of the smaller side.
    Returns (1 + num_random, 4).
    """
    init = init.float().cpu()
    sq = float(init[2:].prod().sqrt())
    jitter = torch.tensor([jitter_pos, jitter_pos, jitter_sz, jitter_sz]) * sq
    rand = (torch.rand(num_random, 4, generator=generator) - 0.5) * jitter
    sz = (init[2:] + rand[:, 2:]).clamp(min=float(init[2:].min()) / 3)
    ctr = init[:2] + init[2:] / 2 + rand[:, :2]
    return torch.cat([init.unsqueeze(0), torch.cat([ctr - sz / 2, sz], 1)])


def optimize_boxes(iounet: torch.nn.Module, modulation: Sequence[torch.Tensor], iou_feat: Sequence[torch.Tensor],
                   boxes: torch.Tensor, iterations: int, step_length: float, step_decay: float = 1.0,
                   with_start_scores: bool = False):
    """Gradient ascent on the predicted IoU.

    modulation: the reference's two vectors, each (B, C); iou_feat: the test frame's two maps, each (B, C, H, W);
    boxes (B, N, 4).  The step is size-scaled: the gradient w.r.t. (x, y, w, h) is multiplied by (w, h, w, h), so
    a step means the same for a small and a large target.  Returns the final boxes (B, N, 4) and their predicted
    IoU (B, N) in the network's ``2 IoU - 1`` scale, scored after the last step (the reference returns the scores
    of the step before); with ``with_start_scores`` also the starting boxes' scores (B, N), which the first step
    computes anyway.
    """
    step = step_length
    boxes = boxes.detach()
    with torch.no_grad():
        modulated = iounet.modulate(modulation, iou_feat)  # once: only the RoI head runs in the loop
    start_scores = None
    for _ in range(iterations):
        scores, grad = _scores_and_grad(iounet, modulated, boxes)
        start_scores = scores.detach() if start_scores is None else start_scores
        boxes = (boxes + step * grad * boxes[..., 2:].repeat(1, 1, 2)).detach()
        step *= step_decay
    with torch.no_grad():
        ious = iounet.score_boxes(modulated, boxes)
    if with_start_scores:
        return boxes, ious, (ious if start_scores is None else start_scores)
    return boxes, ious


def _scores_and_grad(iounet, modulated, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (B, N), d score / d box (B, N, 4)): written out by a :class:`~.refinement_head.RefinementHead`
    (``score_boxes_with_grad``), otherwise by autograd through ``score_boxes`` (training validation, test nets)."""
    written_out = getattr(iounet, "score_boxes_with_grad", None)
    if written_out is not None:
        return written_out(modulated, boxes)
    b = boxes.detach().requires_grad_(True)
    with torch.enable_grad():
        out = iounet.score_boxes(modulated, b)
        (grad,) = torch.autograd.grad(out.sum(), b)
    return out.detach(), grad


def select_box(boxes: torch.Tensor, ious: torch.Tensor, top_k: int, maximal_aspect_ratio: float
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The mean of the ``top_k`` boxes (N, 4) by predicted IoU (N,) among those of a plausible aspect ratio.

    Returns (box (4,), mean predicted IoU of the top k, network scale) or None when no box is plausible.
    """
    boxes = boxes.clone()
    boxes[:, 2:] = boxes[:, 2:].clamp(min=1.0)
    aspect = boxes[:, 2] / boxes[:, 3]
    keep = (aspect < maximal_aspect_ratio) & (aspect > 1.0 / maximal_aspect_ratio)
    if not bool(keep.any()):
        return None
    kb, ki = boxes[keep], ious[keep]
    top = torch.topk(ki, min(top_k, kb.shape[0])).indices
    return kb[top].mean(0), ki[top].mean()


def choose_box(boxes: torch.Tensor, ious: torch.Tensor, start: torch.Tensor, start_score: torch.Tensor,
               rc) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Refinement's answer for one target: :func:`select_box` of the refined boxes (N, 4) and scores (N,), or, with
    ``rc.keep_start_below_gain`` set, the starting box (4,) and its score when refinement did not raise the predicted
    IoU by at least that much (scores are ``2 IoU - 1``, the gain is in IoU).  None when no box is plausible."""
    chosen = select_box(boxes, ious, rc.top_k, rc.maximal_aspect_ratio)
    gain = rc.keep_start_below_gain
    if chosen is None or gain is None:
        return chosen
    if float(chosen[1] - start_score) / 2 < gain:
        return start.clone(), start_score
    return chosen
