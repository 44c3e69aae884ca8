"""One crop geometry for the trained IoU-Net and the tracker: stored in the model file, used by the tracker."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.test_training import _one_thread  # noqa: F401  (one torch thread for this module too)
from tracker_core import tracker as tracker_module
from tracker_core.backbones import build_backbone
from tracker_core.config import SampleConfig, preset
from tracker_core.errors import ModelFileError
from tracker_core.iounet import AtomIoUNet
from tracker_core.model_io import AtomModel, load_model, save_model
from tracker_core.tracker import AtomTracker

TINY = dict(pred_input_dim=(8, 8), pred_inter_dim=(8, 8), ref_dim=(8, 8), test_dim=(8, 8))
OTHER = {"search_area_scale": 4.0, "image_sample_size": 160}


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", pretrained=True).eval()


def tiny_model(backbone, sample: dict | None) -> AtomModel:
    iounet = AtomIoUNet(input_dim=backbone.out_channels, box_offset=backbone.pooling_offset, **TINY).eval()
    info = {"preset": "default", "model_card": {}}
    if sample is not None:
        info["sample"] = dict(sample)
    return AtomModel(backbone, iounet, info)


def test_model_files_round_trip_the_geometry_and_refuse_a_bad_one(tmp_path, lite0):
    path = save_model(tiny_model(lite0, OTHER), tmp_path / "m")
    assert json.loads(path.read_text())["sample"] == OTHER
    assert load_model(path).info["sample"] == OTHER
    assert load_model(tmp_path / "m.safetensors").info["sample"] == OTHER  # from the embedded description too
    assert "sample" not in load_model(save_model(tiny_model(lite0, None), tmp_path / "old")).info
    for bad in ({"search_area_scale": 4.0}, {**OTHER, "image_sample_size": 160.5},
                {**OTHER, "search_area_scale": -1}, {**OTHER, "feature_stride": 8}):
        desc = json.loads(path.read_text())
        desc["sample"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(desc))
        with pytest.raises(ModelFileError, match="sample"):
            load_model(tmp_path / "bad.json")
        with pytest.raises(ModelFileError, match="cannot save"):
            save_model(tiny_model(lite0, bad), tmp_path / "bad2")


def crops_of_one_frame(tracker: AtomTracker, monkeypatch) -> list[tuple[float, int]]:
    """(crop side in image px, crop size in px) of every crop that tracking one frame takes."""
    frame = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 2)
    tracker.initialize(frame, (60, 40, 30, 24))
    calls = []
    real = tracker_module.sample_patch

    def recording(image, cx, cy, side, out_size, *args, **kwargs):
        calls.append((side, out_size))
        return real(image, cx, cy, side, out_size, *args, **kwargs)

    monkeypatch.setattr(tracker_module, "sample_patch", recording)
    expected_side = math.sqrt(tracker.size[0] * tracker.size[1]) * tracker.config.sample.search_area_scale
    tracker.track(frame)
    assert calls and all(side == pytest.approx(expected_side) for side, _ in calls)
    return calls


def test_the_tracker_crops_with_the_model_files_geometry(tmp_path, lite0, monkeypatch):
    config = preset("default")
    config.device = "cpu"
    model = load_model(save_model(tiny_model(lite0, OTHER), tmp_path / "m"))
    tracker = AtomTracker(model, config)
    assert (tracker.config.sample.search_area_scale, tracker.out_size, tracker.feat_size) == (4.0, 160, 10)
    assert config.sample == SampleConfig()  # the caller's configuration is left alone
    assert {size for _, size in crops_of_one_frame(tracker, monkeypatch)} == {160}
    # A file without a geometry (older files, foreign checkpoints): today's defaults.
    old = AtomTracker(load_model(save_model(tiny_model(lite0, None), tmp_path / "old")), config)
    assert old.config.sample == SampleConfig() and old.out_size == 288
    monkeypatch.undo()
    assert {size for _, size in crops_of_one_frame(old, monkeypatch)} == {288}


def test_a_model_trained_on_other_crops_makes_the_tracker_crop_that_way(tmp_path, monkeypatch):
    from tests.test_training import natural_like_images
    from tracker_core.cli import main
    from tracker_core.trackers import make_tracker

    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(natural_like_images(3)):
        cv2.imwrite(str(images / f"{i}.png"), img)
    out = tmp_path / "run"
    settings = tmp_path / "tiny.toml"  # the run as a settings file, the crop geometry given as flags over it
    settings.write_text(f"""data = ["synthetic:{images}"]
pool_pairs = 2
tests_per_ref = 2
epochs = 1
batch = 2
val_pairs = 2
iounet_widths = ["pred_input=8,8", "pred_inter=8,8", "ref=8,8", "test=8,8"]
device = "cpu"
out = "{out}"
""")
    assert main(["train", "--settings", str(settings), "--search-area-scale", "4", "--image-sample-size", "160",
                 "--no-progress"]) == 0
    # Training cropped 160 px (stride-8 features 20 x 20), and said so in the pool manifest.
    manifest = json.loads((out / "pool" / "train" / "pool.json").read_text())
    assert (manifest["processing"]["output_size"], manifest["processing"]["search_area_factor"]) == (160, 4.0)
    pool = torch.load(next((out / "pool" / "train").glob("pool_*_groups.pt")), weights_only=True)
    assert pool["test_f8"].shape[-2:] == (20, 20)
    for path in (out / "model.json", out / "epochs" / "epoch_001.json"):
        assert load_model(path).info["sample"] == OTHER
    assert load_model(out / "model.json").info["model_card"]["reproduce"] == \
        f"atom train --settings {settings} --search-area-scale 4.0 --image-sample-size 160"
    recorded = json.loads((out / "settings.json").read_text())
    assert (recorded["image_sample_size"], recorded["epochs"], recorded["out"]) == (160, 1, str(out))
    tracker = make_tracker("atom", Path(out / "model.json"), device="cpu")
    assert {size for _, size in crops_of_one_frame(tracker, monkeypatch)} == {160}
