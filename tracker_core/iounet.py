"""The target-conditioned IoU predictor of ATOM (paper section 3.1, Figure 3).

A reference branch turns the first-frame features inside the annotated box into two channel-modulation vectors
(one per backbone level); a test branch turns the current frame into IoU features; the IoU head pools the
modulated test features inside each proposal with Precise RoI Pooling and regresses ``2 * IoU - 1``.

Module names, shapes and initialisation follow the reference implementation (pytracking's
``ltr/models/bbreg/atom_iou_net.py``), so the ``bb_regressor.*`` part of the official ResNet-18 checkpoint, with that
prefix stripped, loads with ``strict=True``. Level "3" is the stride-8 input (ResNet ``layer2``), level "4" the
stride-16 input (``layer3``); suffix ``r`` is the reference branch, ``t`` the test branch.

Data flow during tracking::

    modulation = net.get_modulation(feats_first_frame, box)   # once per sequence
    iou_feat = net.get_iou_feat(feats_frame)                   # once per frame
    modulated = net.modulate(modulation, iou_feat)             # once per frame
    scores = net.score_boxes(modulated, proposals)             # every step of the box refinement

``predict_iou(modulation, iou_feat, proposals)`` is the last two in one call.

All boxes are float ``(x, y, w, h)`` in crop pixels; the two spatial scales (1/8, 1/16) map them to feature cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .box_tensors import xywh_to_xyxy
from .prroi_pool import prroi_pool2d_batched

__all__ = ["AtomIoUNet", "LinearBlock", "conv_block"]


def conv_block(in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, padding: int = 1
               ) -> nn.Sequential:
    """Conv2d (with bias) + BatchNorm2d + ReLU; state-dict sub-keys ``.0.*`` (conv) and ``.1.*`` (BN)."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding, bias=True),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class LinearBlock(nn.Module):
    """Fully connected layer over a flattened (C, S, S) map, then BatchNorm, then ReLU.

    ``forward(x (N, in_planes, S, S)) -> (N, out_planes)``. The flattening order is channel-major (C, S, S), as
    in the reference, so its ``linear.weight`` (out, C*S*S) is used unchanged. The BN is a BatchNorm2d applied
    to (N, out, 1, 1) only so that its keys and buffers match the checkpoint.
    """

    def __init__(self, in_planes: int, out_planes: int, input_sz: int):
        super().__init__()
        self.linear = nn.Linear(in_planes * input_sz * input_sz, out_planes)
        self.bn = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.reshape(x.shape[0], -1))
        x = self.relu(self.bn(x.reshape(x.shape[0], x.shape[1], 1, 1)))
        return x.reshape(x.shape[0], -1)


def _pair(values: Sequence[int], name: str) -> tuple[int, int]:
    values = tuple(int(v) for v in values)
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f"{name} must be two positive channel counts, got {values}")
    return values[0], values[1]


class AtomIoUNet(nn.Module):
    """ATOM's IoU-Net with the reference's modulation architecture.

    Args:
        input_dim: backbone channels (stride 8, stride 16); (128, 256) for ResNet-18 layer2/layer3,
            (40, 112) for EfficientNet-Lite0.
        pred_input_dim: channels (D0, D1) of the modulated IoU features and of the modulation vectors.
        pred_inter_dim: widths of the fully connected layers ``fc3_rt`` and ``fc4_rt``.
        ref_dim: (output of ``conv3_1r``, output of ``fc3_1r`` and ``conv4_1r``) in the reference branch.
        test_dim: (output of ``conv3_1t``, output of ``conv4_1t``) in the test branch.
        box_offset: (o8, o16) pixels subtracted from box coordinates before pooling each level, so that box
            pixel ``x`` pools feature coordinate ``(x - o) * scale``.  Precise RoI pooling places feature cell
            ``j`` at pixel ``j / scale``, which is where ResNet-18's cells sit (offset 0, the reference).
            EfficientNet-Lite0's TF "SAME" padding centres its cells 7 px (stride 8) and 15 px (stride 16)
            further right and down (``Backbone.cell_centre - 0.5``); without the offset every pooled region
            would look at image content shifted by a quarter of a typical target.

    The defaults reproduce the reference network (about 5.60M parameters). ``config`` holds the constructor
    arguments, so ``AtomIoUNet(**net.config)`` rebuilds the same architecture.
    """

    # Pooled sizes and feature strides of the reference.
    POOL_REF = (3, 1)  # level 3 (stride 8), level 4 (stride 16)
    POOL_TEST = (5, 3)
    SCALES = (1.0 / 8, 1.0 / 16)

    def __init__(self, input_dim: Sequence[int] = (128, 256), pred_input_dim: Sequence[int] = (256, 256),
                 pred_inter_dim: Sequence[int] = (256, 256), ref_dim: Sequence[int] = (128, 256),
                 test_dim: Sequence[int] = (256, 256), box_offset: Sequence[int] = (0, 0)):
        super().__init__()
        input_dim = _pair(input_dim, "input_dim")
        pred_input_dim = _pair(pred_input_dim, "pred_input_dim")
        pred_inter_dim = _pair(pred_inter_dim, "pred_inter_dim")
        ref_dim = _pair(ref_dim, "ref_dim")
        test_dim = _pair(test_dim, "test_dim")
        self.box_offset = tuple(int(o) for o in box_offset)
        if len(self.box_offset) != 2:
            raise ValueError(f"box_offset must have two entries, got {box_offset!r}")
        self.config = {"input_dim": input_dim, "pred_input_dim": pred_input_dim, "pred_inter_dim": pred_inter_dim,
                       "ref_dim": ref_dim, "test_dim": test_dim}
        if any(self.box_offset):  # absent for the reference layout, so such model files stay as they were
            self.config["box_offset"] = self.box_offset
        p3r, p4r = self.POOL_REF
        p3t, p4t = self.POOL_TEST

        # Reference branch, stride 8: conv, 3x3 pooling, then a 3x3 valid conv down to one vector.
        self.conv3_1r = conv_block(input_dim[0], ref_dim[0])
        self.fc3_1r = conv_block(ref_dim[0], ref_dim[1], kernel_size=p3r, padding=0)
        # Test branch, stride 8.
        self.conv3_1t = conv_block(input_dim[0], test_dim[0])
        self.conv3_2t = conv_block(test_dim[0], pred_input_dim[0])

        # Reference branch, stride 16: conv then 1x1 pooling.
        self.conv4_1r = conv_block(input_dim[1], ref_dim[1])
        # Test branch, stride 16.
        self.conv4_1t = conv_block(input_dim[1], test_dim[1])
        self.conv4_2t = conv_block(test_dim[1], pred_input_dim[1])

        # Both reference vectors together produce each level's modulation.
        self.fc34_3r = conv_block(2 * ref_dim[1], pred_input_dim[0], kernel_size=1, padding=0)
        self.fc34_4r = conv_block(2 * ref_dim[1], pred_input_dim[1], kernel_size=1, padding=0)

        # IoU head over the pooled modulated test features.
        self.fc3_rt = LinearBlock(pred_input_dim[0], pred_inter_dim[0], p3t)
        self.fc4_rt = LinearBlock(pred_input_dim[1], pred_inter_dim[1], p4t)
        self.iou_predictor = nn.Linear(pred_inter_dim[0] + pred_inter_dim[1], 1, bias=True)

        self.reset_parameters()

    @classmethod
    def parameter_count(cls, input_dim: Sequence[int] = (128, 256), pred_input_dim: Sequence[int] = (256, 256),
                        pred_inter_dim: Sequence[int] = (256, 256), ref_dim: Sequence[int] = (128, 256),
                        test_dim: Sequence[int] = (256, 256), box_offset: Sequence[int] = (0, 0)) -> int:
        """How many parameters ``AtomIoUNet(**config)`` has, computed without building it, so that a model file's
        configuration can be bounded before anything is allocated (a test compares it with built networks)."""
        (i3, i4), (d3, d4), (e3, e4), (r3, r4), (t3, t4) = input_dim, pred_input_dim, pred_inter_dim, ref_dim, test_dim
        (p3r, _), (p3t, p4t) = cls.POOL_REF, cls.POOL_TEST

        def block(in_planes: int, out_planes: int, kernel_size: int) -> int:
            # conv_block and LinearBlock alike: weight, bias, then BatchNorm weight and bias
            return out_planes * (in_planes * kernel_size * kernel_size + 3)

        return (block(i3, r3, 3) + block(r3, r4, p3r) + block(i3, t3, 3) + block(t3, d3, 3)
                + block(i4, r4, 3) + block(i4, t4, 3) + block(t4, d4, 3)
                + block(2 * r4, d3, 1) + block(2 * r4, d4, 1)
                + block(d3, e3, p3t) + block(d4, e4, p4t) + (e3 + e4 + 1))

    def reset_parameters(self) -> None:
        """The reference's init: kaiming-normal (fan_in) weights, zero biases, BN weight ~ U(0, 1), BN bias 0.

        The uniform BN weights mimic the default of PyTorch < 1.2, which the published model was trained with.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight)
                nn.init.zeros_(m.bias)

    # ---- the three stages ---------------------------------------------------------------------------------

    def get_modulation(self, feats: Sequence[torch.Tensor], boxes: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulation vectors from the reference frame (computed once per sequence).

        Args:
            feats: (l2 (B, C8, H8, W8), l3 (B, C16, H16, W16)) backbone features of the reference crops.
            boxes: (B, 4) target boxes, xywh in crop pixels.

        Returns:
            (m3 (B, D0, 1, 1), m4 (B, D1, 1, 1)), non-negative (they end in BN + ReLU).
        """
        feat3, feat4 = feats
        xyxy3, xyxy4 = self._pooling_boxes(boxes.reshape(-1, 1, 4).to(feat3.dtype))  # (B, 1, 4) each
        p3, p4 = self.POOL_REF

        c3 = self.conv3_1r(feat3)
        roi3 = prroi_pool2d_batched(c3, xyxy3, p3, p3, self.SCALES[0])[:, 0]  # (B, R0, 3, 3)
        fc3 = self.fc3_1r(roi3)  # (B, R1, 1, 1)

        c4 = self.conv4_1r(feat4)
        roi4 = prroi_pool2d_batched(c4, xyxy4, p4, p4, self.SCALES[1])[:, 0]  # (B, R1, 1, 1)

        fc34 = torch.cat((fc3, roi4), dim=1)  # (B, 2*R1, 1, 1)
        return self.fc34_3r(fc34), self.fc34_4r(fc34)

    def _pooling_boxes(self, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 4) xywh crop pixels -> the x1y1x2y2 boxes pooled at stride 8 and at stride 16 (``box_offset``)."""
        xyxy = xywh_to_xyxy(boxes)
        o8, o16 = self.box_offset
        return (xyxy - o8 if o8 else xyxy), (xyxy - o16 if o16 else xyxy)

    def get_iou_feat(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """IoU features of test frames (computed once per frame).

        Args:
            feats: (l2 (N, C8, H8, W8), l3 (N, C16, H16, W16)); 5-D inputs (..., C, H, W) are flattened to N.

        Returns:
            (c3 (N, D0, H8, W8), c4 (N, D1, H16, W16)).
        """
        feat3, feat4 = (f.reshape(-1, *f.shape[-3:]) for f in feats)
        return self.conv3_2t(self.conv3_1t(feat3)), self.conv4_2t(self.conv4_1t(feat4))

    def modulate(self, modulation: Sequence[torch.Tensor], iou_feat: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel-wise modulation of the test frame's IoU features by the reference target (once per frame).

        Args:
            modulation: (m3 (B, D0, 1, 1), m4 (B, D1, 1, 1)) from :meth:`get_modulation`; B is N or 1.
            iou_feat: (c3 (N, D0, H8, W8), c4 (N, D1, H16, W16)) from :meth:`get_iou_feat`.

        Returns:
            ((N, D0, H8, W8), (N, D1, H16, W16)): what :meth:`score_boxes` pools.
        """
        (m3, m4), (c3, c4) = modulation, iou_feat
        return c3 * m3.reshape(m3.shape[0], -1, 1, 1), c4 * m4.reshape(m4.shape[0], -1, 1, 1)

    def score_boxes(self, modulated: Sequence[torch.Tensor], proposals: torch.Tensor) -> torch.Tensor:
        """The IoU head, the only stage run during box refinement: predicted ``2 * IoU - 1`` of proposals.

        Args:
            modulated: ((N, D0, H8, W8), (N, D1, H16, W16)) from :meth:`modulate`.
            proposals: (N, P, 4) boxes, xywh in crop pixels of the test crops.

        Returns:
            (N, P) scores, differentiable w.r.t. ``proposals`` (used for gradient ascent on the boxes).
        """
        c3, c4 = modulated
        num_images, num_proposals = proposals.shape[:2]
        p3, p4 = self.POOL_TEST
        xyxy3, xyxy4 = self._pooling_boxes(proposals.to(c3.dtype))
        roi3 = prroi_pool2d_batched(c3, xyxy3, p3, p3, self.SCALES[0])  # (N, P, D0, 5, 5)
        roi4 = prroi_pool2d_batched(c4, xyxy4, p4, p4, self.SCALES[1])  # (N, P, D1, 3, 3)
        fc3 = self.fc3_rt(roi3.flatten(0, 1))  # (N*P, I0)
        fc4 = self.fc4_rt(roi4.flatten(0, 1))  # (N*P, I1)
        iou = self.iou_predictor(torch.cat((fc3, fc4), dim=1))
        return iou.reshape(num_images, num_proposals)

    def predict_iou(self, modulation: Sequence[torch.Tensor], iou_feat: Sequence[torch.Tensor],
                    proposals: torch.Tensor) -> torch.Tensor:
        """Predicted ``2 * IoU - 1`` of proposals: :meth:`modulate`, then :meth:`score_boxes`.

        Args:
            modulation: (m3 (B, D0, 1, 1), m4 (B, D1, 1, 1)) from :meth:`get_modulation`; B is N or 1.
            iou_feat: (c3 (N, D0, H8, W8), c4 (N, D1, H16, W16)) from :meth:`get_iou_feat`.
            proposals: (N, P, 4) boxes, xywh in crop pixels of the test crops.

        Returns:
            (N, P) scores, differentiable w.r.t. ``proposals``.
        """
        return self.score_boxes(self.modulate(modulation, iou_feat), proposals)

    def forward(self, feats_ref: Sequence[torch.Tensor], feats_test: Sequence[torch.Tensor],
                ref_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        """Training pass: one reference and one test crop per sample.

        Args:
            feats_ref: (l2 (B, C8, H8, W8), l3 (B, C16, H16, W16)) of the reference crops.
            feats_test: the same for the test crops.
            ref_boxes: (B, 4) xywh target boxes in the reference crops.
            proposals: (B, P, 4) xywh proposals in the test crops.

        Returns:
            (B, P) predicted ``2 * IoU - 1``.
        """
        modulation = self.get_modulation(feats_ref, ref_boxes)
        iou_feat = self.get_iou_feat(feats_test)
        return self.predict_iou(modulation, iou_feat, proposals)
