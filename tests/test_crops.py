"""Search-region crops (tracker_core.crops.sample_patch) against the crop the tracker used before they were
bounded and moved to OpenCV (kept below verbatim as the reference), and their bounds."""

import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker_core.crops import CropTransform, image_to_tensor, sample_patch


def reference_crop(image, cx, cy, side, out_size):
    """The previous sample_patch: clamped index gather of the whole region, avg_pool, grid_sample (torch)."""
    tf = CropTransform.around(cx, cy, side, out_size)
    _, _, H, W = image.shape
    df = max(int(math.floor(side / out_size)), 1)
    x0 = int(math.floor(tf.left)) - df
    y0 = int(math.floor(tf.top)) - df
    n = int(math.ceil((side + 2 * df + 1) / df)) * df
    cols = torch.arange(x0, x0 + n).clamp_(0, W - 1)
    rows = torch.arange(y0, y0 + n).clamp_(0, H - 1)
    region = image.index_select(2, rows).index_select(3, cols).float()
    if df > 1:
        region = F.avg_pool2d(region, df)
    m = region.shape[-1]
    u = torch.arange(out_size, dtype=torch.float32) + 0.5
    xs = (tf.left + u / tf.scale - x0) / df - 0.5
    ys = (tf.top + u / tf.scale - y0) / df - 0.5
    grid = torch.stack(torch.meshgrid(2.0 * ys / (m - 1) - 1.0, 2.0 * xs / (m - 1) - 1.0, indexing="ij")[::-1], -1)
    return F.grid_sample(region, grid.unsqueeze(0), mode="bilinear", padding_mode="border", align_corners=True)


def smooth_image(h, w, seed=0):
    """A photo-like image: smooth shading and texture at wavelengths of 12 to 60 pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            k = rng.uniform(2 * np.pi / 60, 2 * np.pi / 12, 2) * rng.choice([-1, 1], 2)
            img[..., c] += np.sin(k[0] * xx + k[1] * yy + rng.uniform(0, 6.3))
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return np.ascontiguousarray(img.round().astype(np.uint8))


CASES = [  # centre x, y, side, out: up-scales, mild and strong down-scales, inside and over every border
    (200.3, 150.7, 120.0, 288), (200.0, 150.0, 288.0, 288), (210.5, 140.2, 500.0, 288), (205.1, 160.9, 900.0, 288),
    (10.0, 20.0, 300.0, 288), (630.0, 350.0, 700.0, 288), (-50.0, 100.0, 200.0, 288), (320.4, 180.2, 3000.0, 288),
    (320.0, 180.0, 1100.0, 576),
]


@pytest.mark.parametrize("cx, cy, side, out", CASES)
def test_crop_matches_the_previous_exact_crop(cx, cy, side, out):
    img = smooth_image(360, 640)
    t = image_to_tensor(img)
    want = reference_crop(t, cx, cy, side, out)[0].numpy()
    got, tf = sample_patch(t, cx, cy, side, out)
    got = got[0].numpy()
    assert got.shape == (3, out, out) and got.dtype == np.float32
    assert tf == CropTransform.around(cx, cy, side, out)
    # Inside the image the two agree to OpenCV's 1/32-pixel positions; outside it, both replicate the border
    # (the previous crop replicated pixels before averaging, this one the border block after).
    u = np.arange(out) + 0.5
    xs, ys = tf.left + u / tf.scale, tf.top + u / tf.scale
    df = max(int(side // out), 1)
    inside = ((ys >= df + 1) & (ys <= 360 - df - 1))[:, None] & ((xs >= df + 1) & (xs <= 640 - df - 1))[None, :]
    diff = np.abs(got - want)
    if inside.any():
        assert diff[:, inside].max() < 1.0, diff[:, inside].max()
        # Regions of over a million pixels are averaged in the frame's uint8: block means rounded to whole grey
        # levels (mean error 0.25 for uniform rounding); smaller ones in float32.
        rounded = side > 1000 and side // out > 1
        assert diff[:, inside].mean() < (0.3 if rounded else 0.1)
    assert diff.max() < 1.0, diff.max()  # outside too: blocks of replicated border pixels, as before


def test_torch_path_matches_the_cv2_path():
    """The path used for tensors on a GPU, run here on a CPU tensor that is not a view of an array."""
    from tracker_core import crops

    img = smooth_image(240, 320, seed=1)
    t = image_to_tensor(img)
    for cx, cy, side in [(100.2, 80.6, 90.0), (160.0, 120.0, 700.0), (-30.0, 10.0, 400.0), (5000.0, 0.0, 50.0)]:
        tf = CropTransform.around(cx, cy, side, 64)
        df = max(int(side // 64), 1)
        px = crops._axis_plan(tf.left, tf.scale, df, 64, 320)
        py = crops._axis_plan(tf.top, tf.scale, df, 64, 240)
        a = crops._sample_torch(t, px, py, df, 64)
        b = crops._sample_cv2(t, px, py, df, 64)
        assert float((a - b).abs().max()) < 2.0 and float((a - b).abs().mean()) < 0.1


@pytest.mark.parametrize("side", [30.0, 100.0, 5000.0])
def test_a_crop_far_outside_the_image_replicates_the_nearest_pixel(side):
    img = smooth_image(50, 80)
    for cx, cy, pixel in [(-1e4, -1e4, img[0, 0]), (1e4, 1e4, img[-1, -1]), (1e4, -1e4, img[0, -1])]:
        patch, _ = sample_patch(image_to_tensor(img), cx, cy, side, 32)
        np.testing.assert_allclose(patch[0].numpy(), np.broadcast_to(pixel[:, None, None], (3, 32, 32)), atol=1e-3)


def test_crop_memory_is_bounded_by_the_image_not_the_box():
    """A box of -2000,-2000,4360,4240 on a 640x360 frame once asked for 22 GB; now work stays near the frame."""
    img = smooth_image(360, 640)
    t = image_to_tensor(img)
    side = 5 * math.sqrt(4360 * 4240)  # the search region of that box
    tracemalloc.start()
    patch, _ = sample_patch(t, -2000 + 2180.0, -2000 + 2120.0, side, 288)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20, peak  # numpy buffers: at most a few float copies of the 640x360 frame
    assert torch.isfinite(patch).all()
    huge, _ = sample_patch(t, 320.0, 180.0, 1e12, 288)  # every output pixel averages the whole frame
    assert torch.isfinite(huge).all()


def test_float_frames_crop_as_uint8_ones_through_every_path():
    """A float32 frame takes the float64 integral-image path (which uint8 frames beyond 4K take too)."""
    img = smooth_image(240, 320, seed=2)
    as_float = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    for side in (100.0, 700.0, 5000.0, 1e9):
        a, _ = sample_patch(image_to_tensor(img), 150.3, 100.7, side, 64)
        b, _ = sample_patch(as_float, 150.3, 100.7, side, 64)
        assert float((a - b).abs().max()) < 0.51, side  # uint8 area averages of large regions are rounded


@pytest.mark.parametrize("side", [128.0, 192.0, 300.0, 520.0])  # blocks of 2x2, 3x3, 4x4 and 8x8 pixels
def test_uint8_frames_average_in_sixty_fourths_of_a_grey_level(side):
    """Regions under a million pixels of a uint8 frame are area-averaged in uint16 at 64 units per grey level; the
    block means then differ from the float32 frame's by at most half a unit (1/128 level), and by nothing beyond
    float rounding for power-of-two blocks, margins included."""
    img = smooth_image(120, 160, seed=4)
    as_float = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    for cx, cy in [(80.3, 60.7), (5.2, 110.9)]:  # the second reaches beyond the frame
        a, _ = sample_patch(image_to_tensor(img), cx, cy, side, 64)
        b, _ = sample_patch(as_float, cx, cy, side, 64)
        worst = float((a - b).abs().max())
        assert worst <= (1e-3 if side in (128.0, 300.0, 520.0) else 1 / 128 + 1e-3), (side, worst)


def test_large_uint8_regions_are_read_in_place_and_leave_the_frame_alone():
    """Regions over a million pixels of a uint8 frame are area-averaged in uint8 straight from the frame's memory
    (a view, no copy): the crop matches the float frame's within the rounding to whole grey levels, inside the
    frame and reaching beyond it, and the caller's frame is not modified."""
    img = smooth_image(1200, 1600, seed=6)
    before = img.copy()
    as_float = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    for cx, cy, side in [(800.4, 600.2, 1150.0), (300.7, 250.1, 1500.0)]:  # the second reaches beyond the frame
        a, _ = sample_patch(image_to_tensor(img), cx, cy, side, 96)
        b, _ = sample_patch(as_float, cx, cy, side, 96)
        assert float((a - b).abs().max()) < 0.51, side
    np.testing.assert_array_equal(img, before)
