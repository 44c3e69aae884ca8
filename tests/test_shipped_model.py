"""The shipped default model: what `make run`, `atom track` and `atom eval` load without --model."""

from __future__ import annotations

import numpy as np
import pytest

from tracker_core import model_io
from tracker_core.boxes import Box, iou
from tracker_core.model_io import load_model


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.delenv(model_io.MODEL_DIR_ENV, raising=False)  # the repository's resources/models only
    path = model_io.default_model_path()
    assert path is not None and path.parent.name == "models", "resources/models/default.json is missing"
    return load_model(None)


def test_the_default_is_full_atom_with_the_lite0_iounet(shipped):
    assert shipped.iounet is not None and "warning" not in shipped.info  # not the multiscale fallback
    assert shipped.info["backbone"] == "efficientnet_lite0" and shipped.iounet.box_offset == (7, 15)
    card = shipped.info["model_card"]
    assert card["best_epoch_chosen_by"] == "val_refined_iou" and card["validation_pairs"] == 900
    assert 0.7 < card["validation_pearson_iou"] < 1 and card["validation_refined_iou"] > card[
        "validation_refine_start_iou"]
    total = sum(p.stat().st_size for p in model_io.default_model_path().parent.glob("default.*"))
    assert total < 25 * 2**20  # the budget for the shipped model


# Mean IoU over frames 1-39: the shipped net gave 0.632 / 0.874, the same net with random weights 0.488 / 0.676.
@pytest.mark.parametrize("seq_name,min_mean_iou", [("Biker", 0.56), ("Singer1", 0.8)])
def test_the_default_tracks_held_out_sequences(shipped, shared_data, seq_name, min_mean_iou):
    """40 frames of two validation sequences (never trained on): a regression check of the shipped model, with a
    margin (full-sequence AUC is in the model card), not a benchmark."""
    from tracker_core.datasets import load_dataset, read_frame
    from tracker_core.tracker import AtomTracker

    (seq,) = [s for s in load_dataset("otb", shared_data / "OTB") if s.name == seq_name]
    tracker = AtomTracker(shipped)
    first = Box.from_seq(seq.gt[0])
    tracker.initialize(read_frame(seq.frames[0]), first)
    ious, predicted = [], []
    for k in range(1, 40):
        result = tracker.track(read_frame(seq.frames[k]))
        ious.append(iou(result.box, Box.from_seq(seq.gt[k])))
        predicted.append(result.iou)
    assert np.mean(ious) > min_mean_iou, np.round(ious, 2)
    assert all(p is not None for p in predicted)  # the IoU-Net refined every frame (the evidence the app shows)
