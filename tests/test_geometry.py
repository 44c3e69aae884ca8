"""Boxes, IoU, crops and their exact coordinate mapping; Fourier upsampling; augmentation offsets."""

import math

import numpy as np
import pytest
import torch

from tracker_core.augmentation import (
    _window,
    augment,
    blurred_window,
    dropout_copies,
    gaussian_blur,
    rotate,
    rotated_window,
)
from tracker_core.box_tensors import iou_torch
from tracker_core.boxes import (
    Box,
    from_one_based,
    iou,
    iou_matrix,
    parse_box_arg,
    polygon_to_box,
    to_one_based,
)
from tracker_core.config import AugmentationConfig, preset
from tracker_core.crops import CropTransform, image_to_tensor, sample_patch
from tracker_core.fourier import fourier_upsample

# (box a, box b, IoU computed by hand)
IOU_TABLE = [
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
    ((0, 0, 10, 10), (5, 0, 10, 10), 50 / 150),  # half overlap: 50 / (100 + 100 - 50)
    ((0, 0, 10, 10), (10, 0, 10, 10), 0.0),  # touching edges
    ((0, 0, 10, 10), (2, 2, 4, 4), 16 / 100),  # contained
    ((0, 0, 4, 2), (1, 1, 4, 2), 3 / 13),  # overlap 3x1
    ((0, 0, 0, 10), (0, 0, 10, 10), 0.0),  # empty box
]


@pytest.mark.parametrize("a,b,expected", IOU_TABLE)
def test_iou_hand_table(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)
    assert iou_matrix(np.array([a]), np.array([b]))[0] == pytest.approx(expected)
    assert float(iou_torch(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))) == \
        pytest.approx(expected)


def test_one_based_and_polygon_edges():
    b = from_one_based((1, 1, 10, 20))
    assert b.as_tuple() == (0.0, 0.0, 10.0, 20.0)
    assert to_one_based(Box(0.4, 9.6, 10.2, 19.7)) == (1, 11, 10, 20)
    assert polygon_to_box((10, 5, 20, 5, 20, 15, 10, 15)).as_tuple() == (10, 5, 10, 10)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,0,5", "1,2,-3,4", ""])
def test_parse_box_arg_rejects(text):
    with pytest.raises(ValueError):
        parse_box_arg(text)


def test_crop_transform_round_trip():
    tf = CropTransform.around(123.4, 56.7, 250.0, 288)
    box = Box(100.25, 40.5, 30.0, 17.75)
    back = tf.box_to_image(tf.box_to_crop(box))
    assert np.allclose(back.as_tuple(), box.as_tuple(), atol=1e-9)
    # The crop centre maps to the centre of the output, the corners to 0 and out_size.
    assert tf.point_to_crop(123.4, 56.7) == pytest.approx((144.0, 144.0))
    assert tf.point_to_crop(123.4 - 125, 56.7 - 125) == pytest.approx((0.0, 0.0))
    t = torch.tensor([[100.25, 40.5, 30.0, 17.75]], dtype=torch.float64)
    assert torch.allclose(tf.boxes_to_image(tf.boxes_to_crop(t)), t)


def test_sample_patch_exact_geometry_and_replicate_padding():
    img = np.zeros((100, 120, 3), np.uint8)
    img[40:60, 50:70] = 255  # a 20x20 white square, centre (60, 50)
    img[:, 0] = 77  # left column: replicated into the padding
    patch, tf = sample_patch(image_to_tensor(img), 60.0, 50.0, 40.0, 40)
    p = patch[0, 0].numpy()
    # Identity scale: the square occupies exactly crop pixels 10..29.
    assert p[10:30, 10:30].min() == 255 and p[:10].max() == 0 and p[30:].max() == 0
    box = tf.box_to_crop(Box(50, 40, 20, 20))
    assert box.as_tuple() == pytest.approx((10, 10, 20, 20))
    # A crop hanging over the left border repeats the border column.
    patch, _ = sample_patch(image_to_tensor(img), 5.0, 50.0, 40.0, 40)
    assert np.allclose(patch[0, 0, 20, :14].numpy(), 77)


def test_sample_patch_downscale_preserves_mass():
    """Anti-aliased down-scaling: the mean brightness of a high-frequency pattern is kept (no aliasing)."""
    img = np.zeros((400, 400, 3), np.uint8)
    img[:, ::2] = 255  # one-pixel stripes; plain sub-sampling would give all 0 or all 255
    patch, _ = sample_patch(image_to_tensor(img), 200.0, 200.0, 300.0, 60)
    assert abs(float(patch.mean()) - 127.5) < 3.0


def test_fourier_upsample_interpolates_and_is_band_limited():
    x = torch.randn(2, 1, 18, 18, dtype=torch.float64)
    y = fourier_upsample(x, (288, 288))
    assert torch.allclose(y[..., ::16, ::16].double(), x, atol=1e-5)
    i = torch.arange(18.0)
    c = torch.cos(2 * math.pi * 3 * i / 18).expand(18, 18)
    j = torch.arange(288.0)
    assert torch.allclose(fourier_upsample(c, (288, 288))[0], torch.cos(2 * math.pi * 3 * j / 288), atol=1e-5)
    odd = torch.randn(7, 9)
    assert torch.allclose(fourier_upsample(odd, (21, 27))[::3, ::3], odd, atol=1e-5)


def test_augmentation_offsets_follow_the_target():
    """The target blob's position in each augmented window equals the window centre plus the reported offset."""
    big = torch.zeros(1, 3, 576, 576)
    big[..., 284:292, 284:292] = 255.0  # centred blob (centre 288, 288)
    g = torch.Generator().manual_seed(3)
    cfg = AugmentationConfig()
    s = augment(big, 288, cfg, g)
    assert len(s.names) == 1 + len(cfg.relative_shift) + 1 + len(cfg.blur) + len(cfg.rotate)
    for patch, off, name in zip(s.patches, s.offsets, s.names):
        m = patch[0]
        w = (m / m.sum())
        ys, xs = torch.meshgrid(torch.arange(288.0) + 0.5, torch.arange(288.0) + 0.5, indexing="ij")
        cy, cx = float((w * ys).sum()), float((w * xs).sum())
        assert cy - 144 == pytest.approx(float(off[0]), abs=0.6), name
        assert cx - 144 == pytest.approx(float(off[1]), abs=0.6), name


def test_gaussian_blur_and_dropout():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    y = gaussian_blur(x, 2.0, 2.0)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(y[0, 0, 10, 10]) == pytest.approx(float(y.max()))
    f = torch.ones(1, 100, 2, 2)
    d = dropout_copies(f, 7, 0.2, torch.Generator().manual_seed(0))
    assert d.shape == (7, 100, 2, 2)
    assert set(torch.unique(d).tolist()) <= {0.0, 1.25}


@pytest.mark.parametrize("shift", [(0, 0), (47, -48), (-30, 11), (144, 0), (-140, 3), (5, 150)])
def test_windowed_blur_and_rotation_equal_the_whole_crop_cut(shift):
    """Blurring or rotating only what the window reads gives the window of the blurred or rotated crop bit for bit,
    for the configured blurs and angles, inside the crop and where the window reaches its border or beyond (the
    fallback)."""
    gen = torch.Generator().manual_seed(sum(shift) + 1000)
    big = (torch.rand(1, 3, 576, 576, generator=gen) * 255).round()
    cfg = AugmentationConfig()
    sx, sy = shift
    for sig_y, sig_x in cfg.blur:
        assert torch.equal(blurred_window(big, sig_y, sig_x, 288, sx, sy),
                           _window(gaussian_blur(big, sig_y, sig_x), 288, sx, sy)), (sig_y, sig_x)
    for angle in cfg.rotate:
        assert torch.equal(rotated_window(big, angle, 288, sx, sy), _window(rotate(big, angle), 288, sx, sy)), angle


def test_presets():
    assert preset("default").refinement.use_iou_net
    ms = preset("multiscale")
    assert not ms.refinement.use_iou_net and len(ms.localization.scale_factors) == 5
    assert ms.localization.scale_factors[3] == pytest.approx(1.02)
    assert preset("fast").classifier.init_cg_iter < preset("default").classifier.init_cg_iter
    # damped is the paper's tracker with one option beyond it, and nothing else changed
    damped, default = preset("damped").to_dict(), preset("default").to_dict()
    assert damped.pop("name") == "damped" and default.pop("name") == "default"
    assert damped["refinement"].pop("scale_update_rate") < 1.0 == default["refinement"].pop("scale_update_rate")
    assert damped == default
    with pytest.raises(ValueError):
        preset("nope")
