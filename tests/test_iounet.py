"""AtomIoUNet: checkpoint compatibility (names, shapes), the three stages, and an independent functional pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

# Importable without an installed package or a conftest.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker_core.iounet import AtomIoUNet  # noqa: E402
from tracker_core.prroi_pool import prroi_pool2d  # noqa: E402

# ---- the reference's bb_regressor table (pytracking's atom_iou_net.py), written out by hand ---------------------

CONV_BLOCKS = {  # name: (out, in, kernel)
    "conv3_1r": (128, 128, 3),
    "conv3_1t": (256, 128, 3),
    "conv3_2t": (256, 256, 3),
    "fc3_1r": (256, 128, 3),
    "conv4_1r": (256, 256, 3),
    "conv4_1t": (256, 256, 3),
    "conv4_2t": (256, 256, 3),
    "fc34_3r": (256, 512, 1),
    "fc34_4r": (256, 512, 1),
}
LINEAR_BLOCKS = {"fc3_rt": (256, 6400), "fc4_rt": (256, 2304)}  # name: (out, in)


def bn_keys(prefix: str, n: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def expected_state_shapes() -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for name, (out, inp, k) in CONV_BLOCKS.items():
        shapes[f"{name}.0.weight"] = (out, inp, k, k)
        shapes[f"{name}.0.bias"] = (out,)
        shapes.update(bn_keys(f"{name}.1", out))
    for name, (out, inp) in LINEAR_BLOCKS.items():
        shapes[f"{name}.linear.weight"] = (out, inp)
        shapes[f"{name}.linear.bias"] = (out,)
        shapes.update(bn_keys(f"{name}.bn", out))
    shapes["iou_predictor.weight"] = (1, 512)
    shapes["iou_predictor.bias"] = (1,)
    return shapes


def synthetic_checkpoint(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A stand-in for the official checkpoint's 'net' dict: backbone keys plus prefixed bb_regressor keys."""
    sd = {"feature_extractor.conv1.weight": torch.randn(64, 3, 7, 7, generator=gen),
          "feature_extractor.fc.bias": torch.randn(1000, generator=gen)}
    for key, shape in expected_state_shapes().items():
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(1234)
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(".weight") and len(shape) >= 2:
            value = torch.randn(shape, generator=gen) * (2.0 / torch.tensor(shape[1:]).prod()) ** 0.5
        else:
            value = 0.5 + 0.2 * torch.randn(shape, generator=gen)  # BN affine, running means, biases
        sd[f"bb_regressor.{key}"] = value
    return sd


def loaded_net(seed: int = 0) -> tuple[AtomIoUNet, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    ckpt = synthetic_checkpoint(gen)
    sd = {k[len("bb_regressor."):]: v for k, v in ckpt.items() if k.startswith("bb_regressor.")}
    net = AtomIoUNet()
    net.load_state_dict(sd, strict=True)
    return net.eval(), sd


def random_boxes(gen: torch.Generator, shape: tuple, crop: float) -> torch.Tensor:
    """xywh boxes with centres in the middle half of the crop and sides between 0.1 and 0.5 of it."""
    wh = crop * (0.1 + 0.4 * torch.rand(*shape, 2, generator=gen))
    c = crop * (0.25 + 0.5 * torch.rand(*shape, 2, generator=gen))
    return torch.cat([c - wh / 2, wh], dim=-1)


def features(gen: torch.Generator, n: int, crop: int, dims=(128, 256)) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.rand(n, dims[0], crop // 8, crop // 8, generator=gen),
            torch.rand(n, dims[1], crop // 16, crop // 16, generator=gen))


# ---- names, shapes, loading ------------------------------------------------------------------------------


def test_state_dict_names_and_shapes_match_reference():
    net = AtomIoUNet()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == expected_state_shapes()


def test_parameter_count():
    net = AtomIoUNet()
    count = sum(p.numel() for p in net.parameters())
    by_table = sum(torch.Size(s).numel() for k, s in expected_state_shapes().items()
                   if k.endswith(("weight", "bias")))
    assert count == by_table
    assert abs(count - 5.60e6) < 0.01e6


@pytest.fixture(scope="module")
def net_and_weights() -> tuple[AtomIoUNet, dict[str, torch.Tensor]]:
    """An eval-mode net loaded from a synthetic checkpoint (shared: the tests only read it)."""
    return loaded_net(seed=3)


def test_checkpoint_loads_strictly(net_and_weights):
    net, sd = net_and_weights
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, sd[key], rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # strict loading does catch a wrong name
        bad = dict(sd)
        bad["fc3_rt.fc.weight"] = bad.pop("fc3_rt.linear.weight")
        AtomIoUNet().load_state_dict(bad, strict=True)


def test_initialisation():
    torch.manual_seed(0)
    net = AtomIoUNet()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert 0 <= m.weight.min() and m.weight.max() <= 1 and m.weight.std() > 0.1
            assert torch.all(m.bias == 0)
        elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.all(m.bias == 0)
    w = net.conv4_1t[0].weight  # kaiming normal, fan_in = 256 * 9
    assert w.std().item() == pytest.approx((2.0 / (256 * 9)) ** 0.5, rel=0.02)
    w = net.fc3_rt.linear.weight
    assert w.std().item() == pytest.approx((2.0 / 6400) ** 0.5, rel=0.02)


# ---- the three stages ------------------------------------------------------------------------------------


def test_stage_shapes_on_a_288_crop():
    gen = torch.Generator().manual_seed(1)
    net = AtomIoUNet().eval()
    feats = features(gen, 2, 288)
    with torch.no_grad():
        m3, m4 = net.get_modulation(feats, random_boxes(gen, (2,), 288))
        c3, c4 = net.get_iou_feat(feats)
        iou = net.predict_iou((m3, m4), (c3, c4), random_boxes(gen, (2, 7), 288))
    assert m3.shape == (2, 256, 1, 1) and m4.shape == (2, 256, 1, 1)
    assert torch.all(m3 >= 0) and torch.all(m4 >= 0)  # BN + ReLU
    assert c3.shape == (2, 256, 36, 36) and c4.shape == (2, 256, 18, 18)
    assert iou.shape == (2, 7) and torch.all(torch.isfinite(iou))


def _cbr(x, sd, name, padding):
    """conv + eval-mode BN + ReLU from raw state-dict tensors."""
    x = F.conv2d(x, sd[f"{name}.0.weight"], sd[f"{name}.0.bias"], padding=padding)
    x = F.batch_norm(x, sd[f"{name}.1.running_mean"], sd[f"{name}.1.running_var"], sd[f"{name}.1.weight"],
                     sd[f"{name}.1.bias"], training=False, eps=1e-5)
    return x.clamp(min=0)


def _linear_block(x, sd, name):
    y = x.reshape(x.shape[0], -1) @ sd[f"{name}.linear.weight"].T + sd[f"{name}.linear.bias"]
    y = (y - sd[f"{name}.bn.running_mean"]) / (sd[f"{name}.bn.running_var"] + 1e-5).sqrt()
    return (y * sd[f"{name}.bn.weight"] + sd[f"{name}.bn.bias"]).clamp(min=0)


def _rois(boxes_xywh: torch.Tensor) -> torch.Tensor:
    """(N, P, 4) xywh -> (N*P, 5) [batch_index, x1, y1, x2, y2]."""
    n, p = boxes_xywh.shape[:2]
    idx = torch.arange(n, dtype=boxes_xywh.dtype).repeat_interleave(p)[:, None]
    b = boxes_xywh.reshape(-1, 4)
    return torch.cat([idx, b[:, :2], b[:, :2] + b[:, 2:]], dim=1)


def test_matches_independent_functional_pass(net_and_weights):
    """The reference data flow re-written with raw weights, F.* ops and the rois form of PrRoIPool."""
    gen = torch.Generator().manual_seed(2)
    net, sd = net_and_weights
    crop = 160
    ref, test = features(gen, 2, crop), features(gen, 2, crop)
    ref_boxes = random_boxes(gen, (2,), crop)
    proposals = random_boxes(gen, (2, 5), crop)

    rois_ref = _rois(ref_boxes[:, None])
    fc3 = _cbr(prroi_pool2d(_cbr(ref[0], sd, "conv3_1r", 1), rois_ref, 3, 3, 1 / 8), sd, "fc3_1r", 0)
    roi4 = prroi_pool2d(_cbr(ref[1], sd, "conv4_1r", 1), rois_ref, 1, 1, 1 / 16)
    cat = torch.cat([fc3, roi4], dim=1)
    m3, m4 = _cbr(cat, sd, "fc34_3r", 0), _cbr(cat, sd, "fc34_4r", 0)

    c3 = _cbr(_cbr(test[0], sd, "conv3_1t", 1), sd, "conv3_2t", 1)
    c4 = _cbr(_cbr(test[1], sd, "conv4_1t", 1), sd, "conv4_2t", 1)
    rois = _rois(proposals)
    r3 = prroi_pool2d(c3 * m3, rois, 5, 5, 1 / 8)
    r4 = prroi_pool2d(c4 * m4, rois, 3, 3, 1 / 16)
    feat = torch.cat([_linear_block(r3, sd, "fc3_rt"), _linear_block(r4, sd, "fc4_rt")], dim=1)
    want = (feat @ sd["iou_predictor.weight"].T + sd["iou_predictor.bias"]).reshape(2, 5)

    with torch.no_grad():
        got_m3, got_m4 = net.get_modulation(ref, ref_boxes)
        got = net(ref, test, ref_boxes, proposals)
    torch.testing.assert_close(got_m3, m3, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_m4, m4, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert want.std() > 1e-2  # the proposals really score differently


@pytest.mark.parametrize("train", [False, True])
def test_forward_equals_the_three_stages(train):
    gen = torch.Generator().manual_seed(4)
    net = AtomIoUNet().train(train)
    ref, test = features(gen, 2, 96), features(gen, 2, 96)
    ref_boxes, proposals = random_boxes(gen, (2,), 96), random_boxes(gen, (2, 4), 96)
    with torch.no_grad():
        staged = net.predict_iou(net.get_modulation(ref, ref_boxes), net.get_iou_feat(test), proposals)
        full = net(ref, test, ref_boxes, proposals)
    torch.testing.assert_close(full, staged)
    assert full.shape == (2, 4)


def test_one_modulation_serves_many_frames_and_5d_features():
    gen = torch.Generator().manual_seed(5)
    net = AtomIoUNet().eval()
    ref, test = features(gen, 1, 128), features(gen, 3, 128)
    proposals = random_boxes(gen, (3, 4), 128)
    with torch.no_grad():
        mod = net.get_modulation(ref, random_boxes(gen, (1,), 128))
        iou_feat = net.get_iou_feat(test)
        shared = net.predict_iou(mod, iou_feat, proposals)
        repeated = net.predict_iou(tuple(m.expand(3, -1, -1, -1) for m in mod), iou_feat, proposals)
        five_d = net.get_iou_feat(tuple(f[None] for f in test))
    torch.testing.assert_close(shared, repeated)
    for a, b in zip(five_d, iou_feat):
        torch.testing.assert_close(a, b)


def test_predict_iou_is_differentiable_wrt_proposals():
    gen = torch.Generator().manual_seed(6)
    net = AtomIoUNet(input_dim=(8, 16), pred_input_dim=(8, 8), pred_inter_dim=(8, 8), ref_dim=(8, 8),
                     test_dim=(8, 8)).double().eval()
    ref, test = (tuple(f.double() for f in features(gen, n, 96, dims=(8, 16))) for n in (2, 2))
    with torch.no_grad():
        mod = net.get_modulation(ref, random_boxes(gen, (2,), 96).double())
        iou_feat = net.get_iou_feat(test)
    proposals = random_boxes(gen, (2, 3), 96).double().requires_grad_(True)
    score = net.predict_iou(mod, iou_feat, proposals)
    (grad,) = torch.autograd.grad(score.sum(), proposals)
    assert torch.all(torch.isfinite(grad)) and grad.abs().max() > 0
    # and the gradient is the true derivative (float64, tiny network)
    assert torch.autograd.gradcheck(lambda p: net.predict_iou(mod, iou_feat, p), (proposals,), eps=1e-6,
                                    atol=1e-5, fast_mode=True)


def test_custom_widths_for_a_small_backbone():
    gen = torch.Generator().manual_seed(7)
    cfg = {"input_dim": (40, 112), "pred_input_dim": (64, 64), "pred_inter_dim": (32, 48), "ref_dim": (32, 64),
           "test_dim": (48, 96)}
    net = AtomIoUNet(**cfg).eval()
    assert net.config == cfg
    assert net.conv3_1r[0].weight.shape == (32, 40, 3, 3)
    assert net.fc3_1r[0].weight.shape == (64, 32, 3, 3)
    assert net.conv4_1r[0].weight.shape == (64, 112, 3, 3)
    assert net.conv3_1t[0].weight.shape == (48, 40, 3, 3)
    assert net.conv4_2t[0].weight.shape == (64, 96, 3, 3)
    assert net.fc34_3r[0].weight.shape == (64, 128, 1, 1)
    assert net.fc3_rt.linear.weight.shape == (32, 64 * 25)
    assert net.fc4_rt.linear.weight.shape == (48, 64 * 9)
    assert net.iou_predictor.weight.shape == (1, 80)
    assert sum(p.numel() for p in net.parameters()) < 0.5e6

    ref, test = features(gen, 2, 288, dims=(40, 112)), features(gen, 2, 288, dims=(40, 112))
    with torch.no_grad():
        m3, m4 = net.get_modulation(ref, random_boxes(gen, (2,), 288))
        c3, c4 = net.get_iou_feat(test)
        iou = net.predict_iou((m3, m4), (c3, c4), random_boxes(gen, (2, 6), 288))
    assert m3.shape == (2, 64, 1, 1) and c3.shape == (2, 64, 36, 36) and c4.shape == (2, 64, 18, 18)
    assert iou.shape == (2, 6)

    rebuilt = AtomIoUNet(**net.config)
    rebuilt.load_state_dict(net.state_dict(), strict=True)


def test_parameter_count_without_building_matches_the_built_network():
    gen = torch.Generator().manual_seed(3)
    configs = [{}, {"input_dim": (40, 112), "pred_input_dim": (64, 64), "pred_inter_dim": (128, 128),
                    "ref_dim": (64, 128), "test_dim": (64, 64), "box_offset": (7, 15)}]
    configs += [{k: tuple(int(v) for v in torch.randint(1, 40, (2,), generator=gen))
                 for k in ("input_dim", "pred_input_dim", "pred_inter_dim", "ref_dim", "test_dim")} for _ in range(5)]
    for config in configs:
        built = sum(p.numel() for p in AtomIoUNet(**config).parameters())
        assert AtomIoUNet.parameter_count(**config) == built, config
    assert AtomIoUNet.parameter_count() == 5_595_521  # the reference network, "about 5.60M parameters"


def test_bad_widths_raise():
    with pytest.raises(ValueError):
        AtomIoUNet(input_dim=(128,))


def test_box_offset_pools_where_the_backbone_cells_are():
    """A net with box_offset (o, o) sees boxes exactly as the plain net sees the same boxes moved by -o."""
    gen = torch.Generator().manual_seed(11)
    dims = {"input_dim": (40, 112), "pred_input_dim": (16, 16), "pred_inter_dim": (16, 16), "ref_dim": (16, 16),
            "test_dim": (16, 16)}
    plain = AtomIoUNet(**dims).eval()
    shifted = AtomIoUNet(**dims, box_offset=(8, 8)).eval()
    shifted.load_state_dict(plain.state_dict())
    assert "box_offset" not in plain.config and shifted.config["box_offset"] == (8, 8)
    ref, test = features(gen, 2, 288, dims=(40, 112)), features(gen, 2, 288, dims=(40, 112))
    ref_boxes, proposals = random_boxes(gen, (2,), 288), random_boxes(gen, (2, 5), 288)
    move = torch.tensor([8.0, 8.0, 0.0, 0.0])
    with torch.no_grad():
        a = shifted(ref, test, ref_boxes, proposals)
        b = plain(ref, test, ref_boxes - move, proposals - move)
        c = plain(ref, test, ref_boxes, proposals)
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)
    # Different offsets per level: each level is shifted by its own amount.
    two = AtomIoUNet(**dims, box_offset=(7, 15)).eval()
    assert AtomIoUNet(**two.config).box_offset == (7, 15)


@pytest.mark.parametrize(("name", "offset"), [("efficientnet_lite0", (7, 15)), ("resnet18", (0, 0))])
def test_backbone_pooling_offset(name, offset):
    """Lite0's TF-padded cells need the offset; ResNet-18's sit where the reference pools (offset 0)."""
    from tracker_core.backbones import build_backbone

    assert build_backbone(name, pretrained=False).pooling_offset == offset
