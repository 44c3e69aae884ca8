"""Frozen backbones: real ImageNet classification (Lite0), shapes, freezing, torchvision-compatible loading of
ResNet-18 checked against a hand-written computation, early stop at stride 16, and feature-cell geometry."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tracker_core.backbones import (
    BACKBONES,
    Backbone,
    EfficientNetLite0Backbone,
    ResNet18Backbone,
    build_backbone,
)
from tracker_core.backbones.efficientnet_lite import lite0_weights_path

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup

# torchvision resnet18's state dict, written out module by module: (module prefix, kind, weight shape).
# Every "bn" module contributes weight/bias/running_mean/running_var [C] and num_batches_tracked [].
TORCHVISION_RESNET18_MODULES = [
    ("conv1", "conv", (64, 3, 7, 7)),
    ("bn1", "bn", (64,)),
    ("layer1.0.conv1", "conv", (64, 64, 3, 3)),
    ("layer1.0.bn1", "bn", (64,)),
    ("layer1.0.conv2", "conv", (64, 64, 3, 3)),
    ("layer1.0.bn2", "bn", (64,)),
    ("layer1.1.conv1", "conv", (64, 64, 3, 3)),
    ("layer1.1.bn1", "bn", (64,)),
    ("layer1.1.conv2", "conv", (64, 64, 3, 3)),
    ("layer1.1.bn2", "bn", (64,)),
    ("layer2.0.conv1", "conv", (128, 64, 3, 3)),
    ("layer2.0.bn1", "bn", (128,)),
    ("layer2.0.conv2", "conv", (128, 128, 3, 3)),
    ("layer2.0.bn2", "bn", (128,)),
    ("layer2.0.downsample.0", "conv", (128, 64, 1, 1)),
    ("layer2.0.downsample.1", "bn", (128,)),
    ("layer2.1.conv1", "conv", (128, 128, 3, 3)),
    ("layer2.1.bn1", "bn", (128,)),
    ("layer2.1.conv2", "conv", (128, 128, 3, 3)),
    ("layer2.1.bn2", "bn", (128,)),
    ("layer3.0.conv1", "conv", (256, 128, 3, 3)),
    ("layer3.0.bn1", "bn", (256,)),
    ("layer3.0.conv2", "conv", (256, 256, 3, 3)),
    ("layer3.0.bn2", "bn", (256,)),
    ("layer3.0.downsample.0", "conv", (256, 128, 1, 1)),
    ("layer3.0.downsample.1", "bn", (256,)),
    ("layer3.1.conv1", "conv", (256, 256, 3, 3)),
    ("layer3.1.bn1", "bn", (256,)),
    ("layer3.1.conv2", "conv", (256, 256, 3, 3)),
    ("layer3.1.bn2", "bn", (256,)),
    ("layer4.0.conv1", "conv", (512, 256, 3, 3)),
    ("layer4.0.bn1", "bn", (512,)),
    ("layer4.0.conv2", "conv", (512, 512, 3, 3)),
    ("layer4.0.bn2", "bn", (512,)),
    ("layer4.0.downsample.0", "conv", (512, 256, 1, 1)),
    ("layer4.0.downsample.1", "bn", (512,)),
    ("layer4.1.conv1", "conv", (512, 512, 3, 3)),
    ("layer4.1.bn1", "bn", (512,)),
    ("layer4.1.conv2", "conv", (512, 512, 3, 3)),
    ("layer4.1.bn2", "bn", (512,)),
    ("fc", "linear", (1000, 512)),
]


@functools.lru_cache(maxsize=2)
def _synthetic_torchvision_resnet18(with_num_batches_tracked: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    sd: dict[str, torch.Tensor] = {}
    for prefix, kind, shape in TORCHVISION_RESNET18_MODULES:
        if kind == "conv":
            fan_in = shape[1] * shape[2] * shape[3]
            sd[f"{prefix}.weight"] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif kind == "bn":
            sd[f"{prefix}.weight"] = 0.5 + torch.rand(shape, generator=g)
            sd[f"{prefix}.bias"] = 0.1 * torch.randn(shape, generator=g)
            sd[f"{prefix}.running_mean"] = 0.2 * torch.randn(shape, generator=g)
            sd[f"{prefix}.running_var"] = 0.5 + torch.rand(shape, generator=g)
            if with_num_batches_tracked:
                sd[f"{prefix}.num_batches_tracked"] = torch.tensor(1000)
        else:
            sd[f"{prefix}.weight"] = 0.01 * torch.randn(shape, generator=g)
            sd[f"{prefix}.bias"] = torch.zeros(shape[0])
    return sd


def synthetic_torchvision_resnet18(with_num_batches_tracked: bool = True) -> dict[str, torch.Tensor]:
    """A torchvision-style resnet18 state dict with random but well-scaled values (BN stats non-trivial).

    Built once per variant (cached); each call returns a new dict over the same, never-modified tensors."""
    return dict(_synthetic_torchvision_resnet18(with_num_batches_tracked))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module single-threaded: on a small, shared CPU, intra-op threads mostly wait for each other."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def lite0(_one_thread) -> EfficientNetLite0Backbone:
    return EfficientNetLite0Backbone(pretrained=True)


def _photo(name: str, size: int) -> torch.Tensor:
    """A scikit-image sample photograph resized to ``size x size`` -> ``(1, 3, size, size)`` float RGB 0..255."""
    import skimage.data
    import skimage.transform

    image = getattr(skimage.data, name)()
    image = skimage.transform.resize(image, (size, size), anti_aliasing=True, preserve_range=True)
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


# ---------------------------------------------------------------------------------------------------- Lite0 weights


def test_lite0_weights_are_found_in_the_installed_package():
    path = lite0_weights_path()
    assert path.is_file() and path.name == "efficientnet-lite0-57934424.pth"


def test_lite0_classifies_a_cat_photograph(lite0):
    logits = lite0.classify(_photo("chelsea", 224))
    assert logits.shape == (1, 1000)
    top5 = logits[0].topk(5).indices.tolist()
    assert CAT_CLASSES & set(top5), top5
    assert top5[0] in CAT_CLASSES, top5  # measured: Egyptian cat, p = 0.79


def test_lite0_classifies_a_coffee_photograph(lite0):
    probs = lite0.classify(_photo("coffee", 224)).softmax(1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert top5[0] in COFFEE_CLASSES, top5  # measured: espresso, p = 0.91
    assert not CAT_CLASSES & set(top5), top5


# ---------------------------------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_shapes_at_288(name, lite0):
    net = lite0 if name == "efficientnet_lite0" else build_backbone(name)
    assert isinstance(net, Backbone) and net.name == name and net.strides == (8, 16)
    assert net.out_channels == BACKBONES[name]["out_channels"]
    with torch.no_grad():
        s8, s16 = net(torch.rand(2, 3, 288, 288) * 255)
    c8, c16 = net.out_channels
    assert s8.shape == (2, c8, 36, 36) and s16.shape == (2, c16, 18, 18)
    assert torch.isfinite(s8).all() and torch.isfinite(s16).all()


def test_declared_channels():
    assert BACKBONES["resnet18"]["out_channels"] == (128, 256)
    assert BACKBONES["efficientnet_lite0"]["out_channels"] == (40, 112)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_frozen_and_always_eval(name):
    net = build_backbone(name, pretrained=False)
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not any(m.training for m in net.modules())
    # In eval mode BN uses (and does not touch) its running statistics, even under an outer .train().
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s8, s16 = net(torch.rand(1, 3, 64, 64) * 255)
    assert not s8.requires_grad and not s16.requires_grad
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    outer = nn.Sequential(net)
    outer.train()
    assert not net.training


def test_build_backbone_names():
    assert isinstance(build_backbone("resnet18", pretrained=True), ResNet18Backbone)  # random init, by design
    assert isinstance(build_backbone("efficientnet_lite0", pretrained=False), EfficientNetLite0Backbone)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")


def test_lite0_checkpoint_loads_strictly_into_a_fresh_model():
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0Backbone(pretrained=False)
    assert set(net.state_dict()) == set(state)
    net.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------------------------------- ResNet-18


@pytest.mark.parametrize("with_nbt", [True, False])
def test_resnet18_loads_torchvision_state_dict_strictly(with_nbt):
    sd = synthetic_torchvision_resnet18(with_nbt)
    net = ResNet18Backbone(pretrained_state_dict=sd)
    expected = set(synthetic_torchvision_resnet18(True))
    assert set(net.state_dict()) == expected
    assert net.state_dict()["fc.weight"].shape == (1000, 512)
    assert torch.equal(net.state_dict()["layer3.0.downsample.1.running_var"], sd["layer3.0.downsample.1.running_var"])
    # Loading later through load_state_dict (the model-file path) works too and keeps the backbone frozen.
    net2 = ResNet18Backbone()
    net2.load_state_dict(sd, strict=True)
    assert torch.equal(net2.conv1.weight, sd["conv1.weight"])
    assert all(not p.requires_grad for p in net2.parameters())


def _reference_stem(images: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """conv1 (7x7 s2 p3) -> bn1 -> relu -> maxpool (3x3 s2 p1) with unfold/matmul, from the raw state dict."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (images / 255.0 - mean) / std
    n, _, h, w = x.shape
    cols = F.unfold(x, kernel_size=7, padding=3, stride=2)  # (N, 3*49, L)
    y = (sd["conv1.weight"].reshape(64, -1) @ cols).reshape(n, 64, h // 2, w // 2)
    scale = sd["bn1.weight"] / torch.sqrt(sd["bn1.running_var"] + 1e-5)
    y = (y - sd["bn1.running_mean"].view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1) + sd["bn1.bias"].view(1, -1, 1, 1)
    y = y.clamp_min(0)
    y = F.pad(y, (1, 1, 1, 1), value=float("-inf"))
    windows = F.unfold(y, kernel_size=3, stride=2).reshape(n, 64, 9, -1)
    return windows.max(dim=2).values.reshape(n, 64, h // 4, w // 4)


def test_resnet18_first_stage_matches_hand_computation():
    sd = synthetic_torchvision_resnet18()
    net = ResNet18Backbone(pretrained_state_dict=sd)
    images = torch.rand(2, 3, 32, 40) * 255
    seen = {}
    net.layer1.register_forward_hook(lambda m, inp, out: seen.setdefault("stem", inp[0].clone()))
    with torch.no_grad():
        net(images)
    ref = _reference_stem(images, sd)
    assert seen["stem"].shape == (2, 64, 8, 10)
    torch.testing.assert_close(seen["stem"], ref, rtol=1e-4, atol=1e-4)


def _forbid(module: nn.Module) -> None:
    def boom(*args, **kwargs):
        raise AssertionError(f"{type(module).__name__} must not run in forward")

    module.forward = boom


def test_forward_stops_at_stride_16():
    res = ResNet18Backbone()
    _forbid(res.layer4)
    _forbid(res.fc)
    lite = EfficientNetLite0Backbone(pretrained=False)
    for block in lite._blocks[11:]:
        _forbid(block)
    _forbid(lite._conv_head)
    _forbid(lite._fc)
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        res(x)
        lite(x)
        with pytest.raises(AssertionError, match="must not run"):
            res.classify(x)  # the full network does reach layer4: the patch is effective


# ---------------------------------------------------------------------------------------------------- geometry


def _positive_linearised(net: Backbone) -> Backbone:
    """Uniform positive kernels and identity BN: the network becomes linear for small positive inputs (every ReLU /
    ReLU6 stays in its linear range), and each output cell a weighted sum over a window symmetric about its
    receptive-field centre."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.fill_(1.0 / m.weight[0].numel())
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.fill_(1.0)
            m.bias.fill_(0.0)
            m.running_mean.fill_(0.0)
            m.running_var.fill_(1.0 - m.eps)
    if isinstance(net, ResNet18Backbone):
        net.maxpool = nn.AvgPool2d(3, stride=2, padding=1)  # same geometry, but no arg-max tie-breaking
    return net


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_cell_centre_matches_receptive_field_centre(name):
    net = _positive_linearised(build_backbone(name, pretrained=False))
    # Receptive field at stride 16: 211 px (ResNet-18 layer3), 339 px (Lite0 block 10); the probed cell's whole
    # window must lie inside the image, or zero padding skews the centroid.
    size, i = (256, 8) if name == "resnet18" else (352, 10)
    # Linear network: (response to a ramp x = column centre) / (response to a constant) = the weights' centroid.
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5).expand(3, size, size)  # pixel k covers [k, k + 1)
    x = 1e-4 * torch.stack([ramp, torch.ones_like(ramp)])
    with torch.no_grad():
        feats = net.extract(x)
    for stride, feat, centre in zip(net.strides, feats, net.cell_centre):
        cell = feat[:, :, i, i].sum(dim=1)
        measured = float(cell[0] / cell[1])
        assert measured == pytest.approx(centre + stride * i, abs=0.02), (name, stride)


@pytest.mark.parametrize("batch", [1, 3])
def test_inference_graph_matches_eager_and_leaves_the_module_alone(lite0, batch):
    """The oneDNN graph the tracker runs on a CPU gives the eager network's features, as ordinary contiguous maps,
    and tracing it leaves the shared module's weights in their own layout."""
    from tracker_core.backbones.inference import InferenceBackbone, traced_graphs

    gen = torch.Generator().manual_seed(3)
    images = torch.rand(batch, 3, 288, 288, generator=gen) * 255
    layouts = [p.is_contiguous() for p in lite0.parameters()]
    with torch.no_grad():
        eager = lite0(images)
    runner = InferenceBackbone(lite0)
    fast = runner(images)
    assert runner.enabled
    assert traced_graphs(lite0), "no graph was traced"
    graph_text = str(next(iter(traced_graphs(lite0).values())).graph)
    assert "mkldnn_convolution" in graph_text and "aten::batch_norm" not in graph_text
    for e, f in zip(eager, fast):
        assert f.shape == e.shape and f.is_contiguous()
        assert (f - e).abs().max().item() <= 1e-4 * e.abs().max().item()
    assert [p.is_contiguous() for p in lite0.parameters()] == layouts
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(eager, lite0(images)))


def test_inference_graph_falls_back_to_the_frozen_trace_when_onednn_refuses(lite0, monkeypatch):
    """Where oneDNN cannot take the graph, the CPU runs the frozen channels-last trace (still a graph, still the
    eager network's features), not eager mode."""
    import copy

    from tracker_core.backbones.inference import InferenceBackbone, traced_graphs

    def refuse(*_args, **_kwargs):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(torch.jit, "optimize_for_inference", refuse)
    net = copy.deepcopy(lite0)
    images = torch.rand(1, 3, 288, 288, generator=torch.Generator().manual_seed(5)) * 255
    with torch.no_grad():
        eager = net(images)
    runner = InferenceBackbone(net)
    fast = runner(images)
    assert runner.enabled and len(traced_graphs(net)) == 1
    assert "mkldnn_convolution" not in str(next(iter(traced_graphs(net).values())).graph)
    for e, f in zip(eager, fast):
        assert f.shape == e.shape and f.is_contiguous()
        assert (f - e).abs().max().item() <= 1e-4 * e.abs().max().item()


def test_inference_graph_without_onednn_is_the_frozen_trace(lite0, monkeypatch):
    """A torch built without oneDNN gets the frozen channels-last trace, which matches the eager network."""
    import copy

    from tracker_core.backbones.inference import InferenceBackbone, traced_graphs

    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    net = copy.deepcopy(lite0)
    images = torch.rand(1, 3, 288, 288, generator=torch.Generator().manual_seed(6)) * 255
    with torch.no_grad():
        eager = net(images)
    fast = InferenceBackbone(net)(images)
    assert "mkldnn_convolution" not in str(next(iter(traced_graphs(net).values())).graph)
    for e, f in zip(eager, fast):
        assert (f - e).abs().max().item() <= 1e-4 * e.abs().max().item()


@pytest.mark.parametrize("size", [(288, 288), (145, 36), (7, 8)])
@pytest.mark.parametrize("kernel,groups", [(3, 1), (3, 6), (5, 6), (4, 6)])
def test_same_conv_matches_tf_padding_written_out(size, kernel, groups):
    """SameConv2d's stride-2 conv (kernel padded by a zero row/column instead of padding the input) against TF
    "SAME" written out: pad ``total // 2`` top/left and the rest bottom/right, then an unpadded conv, in float64
    (odd, even and mixed sizes; odd and even kernels; dense and depthwise)."""
    from tracker_core.backbones.efficientnet_lite import SameConv2d

    gen = torch.Generator().manual_seed(0)
    conv = SameConv2d(6, 6, kernel, stride=2, groups=groups).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(2, 6, *size, generator=gen, dtype=torch.float64)
    pads = []
    for n in (size[1], size[0]):  # F.pad: last dim first
        total = max((-(-n // 2) - 1) * 2 + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    expected = F.conv2d(F.pad(x, pads), conv.weight, stride=2, groups=groups)
    with torch.no_grad():
        got = conv(x)
    assert got.shape == expected.shape == (2, 6, -(-size[0] // 2), -(-size[1] // 2))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_two_threads_needing_the_same_graph_trace_it_once(monkeypatch):
    """The app's warm-up and its tracking worker may both need the one-crop graph first: one traces, the other
    waits for it, and both get the features."""
    import threading

    from tracker_core.backbones.inference import InferenceBackbone, traced_graphs

    net = build_backbone("efficientnet_lite0", pretrained=False)  # fresh: no graph traced yet
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        eager = net(images)
    out = [None, None]
    barrier = threading.Barrier(2)
    traces = []
    trace = InferenceBackbone._trace

    def counted_trace(self, batch):
        traces.append(1)
        return trace(self, batch)

    monkeypatch.setattr(InferenceBackbone, "_trace", counted_trace)

    def run(i):
        runner = InferenceBackbone(net)
        barrier.wait()
        out[i] = runner(images)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(traces) == 1 and len(traced_graphs(net)) == 1
    for feats in out:
        for e, f in zip(eager, feats):
            assert (f - e).abs().max().item() <= 1e-4 * e.abs().max().item()
