"""The IoU-Net's test branch and RoI head as tracking runs them: BatchNorm folded, the box gradient written out.

Box refinement (paper section 3.3) runs the RoI head five times forward and backward per frame on ten boxes. Its
cost there is not arithmetic but the number of small operations autograd records and replays (and the eval-mode
BatchNorm layers between them). :class:`RefinementHead` is built once from a trained :class:`AtomIoUNet` when
a tracker starts:

* every eval-mode BatchNorm of the test branch and of the head is folded into the convolution or linear layer
  before it (``W' = W k``, ``b' = (b - mean) k + beta``, ``k = gamma / sqrt(var + eps)``), which changes the
  result only by floating-point rounding;
* :meth:`score_boxes_with_grad` returns the scores and ``d score / d box`` in one pass:
  ``d score / d pooled = W^T (relu'(z) * w_pred)`` per level, then the exact Precise-RoI-Pooling derivative
  (:func:`~.prroi_pool.pooled_with_box_vjp`), whose natural layout the head's weights are permuted to once.
  The tests check it against autograd on the unfolded network.

The reference modulation (once per sequence) still comes from the network itself; this holds only what runs per
frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .box_tensors import xywh_to_xyxy
from .iounet import AtomIoUNet
from .prroi_pool import WindowCache, pooled_with_box_vjp

__all__ = ["RefinementHead", "fold_batchnorm"]


def fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (O, ...), bias (O,) or None) of a layer followed by eval-mode ``bn`` -> the single equivalent layer."""
    k = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    b = torch.zeros_like(bn.running_mean) if bias is None else bias.detach()
    w = weight.detach() * k.reshape(-1, *([1] * (weight.dim() - 1)))
    return w.contiguous(), ((b - bn.running_mean) * k + bn.bias.detach()).contiguous()


def _folded_conv_block(block: nn.Sequential) -> nn.Sequential:
    """conv_block (Conv2d, BatchNorm2d, ReLU) -> (Conv2d with the BN folded in, ReLU)."""
    conv, bn = block[0], block[1]
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
    fused = fused.to(device=conv.weight.device, dtype=conv.weight.dtype)
    w, b = fold_batchnorm(conv.weight, conv.bias, bn)
    with torch.no_grad():
        fused.weight.copy_(w)
        fused.bias.copy_(b)
    return nn.Sequential(fused, nn.ReLU(inplace=True)).eval().requires_grad_(False)


class RefinementHead:
    """The per-frame part of an :class:`AtomIoUNet` (test branch, modulation, RoI head), for inference only.

    Same interface as the network for what refinement calls (:meth:`get_iou_feat`, :meth:`modulate`,
    :meth:`score_boxes`), plus :meth:`score_boxes_with_grad`.  Built from the network's current eval-mode
    statistics; a network trained further needs a new head.
    """

    def __init__(self, net: AtomIoUNet):
        if net.training:
            raise ValueError("fold the IoU-Net in eval mode (its BatchNorm running statistics are folded in)")
        self.box_offset = net.box_offset
        self.pool_test = net.POOL_TEST
        self.scales = net.SCALES
        self.conv3 = nn.Sequential(_folded_conv_block(net.conv3_1t), _folded_conv_block(net.conv3_2t))
        self.conv4 = nn.Sequential(_folded_conv_block(net.conv4_1t), _folded_conv_block(net.conv4_2t))
        # Both levels' head layers as one batch (L = 2) in the layout of pooled_with_box_vjp: bins and channels
        # padded to the larger level with zero weights, and so are the hidden units (zero weight, zero output).
        layers = [fold_batchnorm(block.linear.weight, block.linear.bias, block.bn) for block in (net.fc3_rt,
                                                                                                  net.fc4_rt)]
        channels = max(w.shape[1] // (s * s) for (w, _), s in zip(layers, self.pool_test))
        hidden = max(w.shape[0] for w, _ in layers)
        nb = max(self.pool_test)
        pred = net.iou_predictor.weight.detach()[0]
        self.weight = layers[0][0].new_zeros(2, hidden, nb, channels, nb)
        self.bias = layers[0][0].new_zeros(2, 1, hidden)
        self.pred = layers[0][0].new_zeros(2, hidden, 1)
        used = 0
        for i, ((w, b), size) in enumerate(zip(layers, self.pool_test)):
            units = w.shape[0]
            # the network flattens (channel, bin row, bin column); the pooling lays out (bin column, channel, bin row)
            self.weight[i, :units, :size, :w.shape[1] // (size * size), :size] = w.view(units, -1, size, size).permute(
                0, 3, 1, 2)
            self.bias[i, 0, :units] = b
            self.pred[i, :units, 0] = pred[used:used + units]
            used += units
        self.weight = self.weight.reshape(2, hidden, -1)
        self.pred_bias = net.iou_predictor.bias.detach()
        self._windows = WindowCache()  # the maps' windows, reused across one frame's refinement passes

    @torch.no_grad()
    def get_iou_feat(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(l2 (N, C8, H8, W8), l3 (N, C16, H16, W16)) -> (c3 (N, D0, H8, W8), c4 (N, D1, H16, W16))."""
        feat3, feat4 = (f.reshape(-1, *f.shape[-3:]) for f in feats)
        return self.conv3(feat3), self.conv4(feat4)

    @staticmethod
    def modulate(modulation: Sequence[torch.Tensor], iou_feat: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`AtomIoUNet.modulate`: ((N, D0, H8, W8), (N, D1, H16, W16))."""
        (m3, m4), (c3, c4) = modulation, iou_feat
        return c3 * m3.reshape(m3.shape[0], -1, 1, 1), c4 * m4.reshape(m4.shape[0], -1, 1, 1)

    def score_boxes(self, modulated: Sequence[torch.Tensor], proposals: torch.Tensor) -> torch.Tensor:
        """Predicted ``2 IoU - 1`` (N, P) of proposals (N, P, 4) xywh crop pixels (no gradient)."""
        return self._forward(modulated, proposals)[0]

    def score_boxes_with_grad(self, modulated: Sequence[torch.Tensor], proposals: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores (N, P), d score / d proposal (N, P, 4)); each box's gradient is that of its own score."""
        scores, backward = self._forward(modulated, proposals)
        return scores, backward()

    def _forward(self, modulated: Sequence[torch.Tensor], proposals: torch.Tensor):
        n, p = proposals.shape[:2]
        xyxy = xywh_to_xyxy(proposals.to(modulated[0].dtype))
        pooled, vjp = pooled_with_box_vjp(modulated, xyxy, self.pool_test, self.scales, self.box_offset,
                                          cache=self._windows)
        z = torch.baddbmm(self.bias, pooled, self.weight.transpose(1, 2))  # (2, N*P, I)
        scores = torch.bmm(torch.relu(z), self.pred).sum(0).view(n, p) + self.pred_bias

        def backward() -> torch.Tensor:
            grad_xyxy = vjp(torch.bmm((z > 0) * self.pred.transpose(1, 2), self.weight))
            # x1 = x, x2 = x + w (and the same for y): d/dx = d/dx1 + d/dx2, d/dw = d/dx2.
            return torch.cat((grad_xyxy[..., :2] + grad_xyxy[..., 2:], grad_xyxy[..., 2:]), -1)

        return scores, backward
