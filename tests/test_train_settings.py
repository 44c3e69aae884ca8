"""A training run's settings: flags, settings files and the reproduce line all come from TrainSettings."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from tracker_core.cli import build_parser, main
from tracker_core.errors import CommandError
from tracker_core.training.settings import (
    TrainSettings,
    command_line,
    given_settings,
    load_settings_file,
    resolve_settings,
)

REPO = Path(__file__).resolve().parents[1]

# The run the settings file configs/train/lite0_v3.toml names, as it was started from the command line.
LITE0_V3 = (
    "atom train --data synthetic:builtin:0.6 --data otb:../shared/data/OTB:1 --data vot:../shared/data/VOT:0.1 "
    "--data otb:../traindata:0.7 --sequences @configs/splits/train.txt --val otb:../shared/data/OTB "
    "--val vot:../shared/data/VOT --val otb:../traindata --val-sequences @configs/splits/val.txt --val-pairs 900 "
    "--pool-pairs 43200 --tests-per-ref 3 --proposals 32 --epochs 8 --lr-step 5 --batch 64 "
    "--val-tracking otb:../shared/data/OTB --val-tracking vot:../shared/data/VOT --val-tracking otb:../traindata "
    "--val-tracking-sequences @configs/splits/val.txt --best-by val_auc --threads 1 --out runs/lite0_v3")


def parse(line: str):
    """The namespace ``atom train`` gets for a command line (``atom train`` prefix included)."""
    argv = shlex.split(line)
    assert argv[:2] == ["atom", "train"]
    return build_parser(only="train").parse_args(argv[1:])


def settings_of(line: str) -> TrainSettings:
    args = parse(line)
    return resolve_settings(given_settings(args), args.settings)


def test_the_lite0_v3_settings_file_is_its_command_line(monkeypatch):
    from tracker_core.training.processing import ProcessingConfig
    from tracker_core.training.run import pool_manifest

    monkeypatch.chdir(REPO)  # paths are relative to the working directory, as on the command line
    from_line = settings_of(LITE0_V3)
    from_file = settings_of("atom train --settings configs/train/lite0_v3.toml")
    assert from_file == from_line
    assert from_file.to_dict() == from_line.to_dict()
    # What the feature pool records is the same too, so a pool built by either is reused by the other.
    assert pool_manifest(from_file, ProcessingConfig(sample=from_file.sample())) == \
        pool_manifest(from_line, ProcessingConfig(sample=from_line.sample()))
    # The reproduce line names the file (and nothing else: no flag overrides it).
    args = parse("atom train --settings configs/train/lite0_v3.toml")
    assert command_line(from_file, args.settings, given_settings(args)) == \
        "atom train --settings configs/train/lite0_v3.toml"
    # Without the file, the reproduce line holds the values that differ from the defaults (--batch 64 does not).
    line = command_line(from_line)
    assert "--batch" not in line and "--epochs 8" in line and line.endswith("--out runs/lite0_v3")
    assert settings_of(line) == from_line


def test_every_setting_is_a_flag_and_the_reproduce_line_reads_back_the_same():
    # A value other than the default for every field: the reproduce line must carry each one, and parse back.
    changed = TrainSettings(
        data=["synthetic:builtin:0.5", "otb:../data/OTB 2:1"], sequences="Dog*,Gym", exclude="Jogging*",
        val=["vot:/abs/VOT"], val_sequences="@configs/splits/val.txt", val_pairs=12,
        val_tracking=["otb:../data/OTB"], val_tracking_sequences="Biker", val_tracking_preset="fast",
        val_tracking_runs=3, best_by="val_auc", backbone="resnet18", backbone_weights=Path("models/r18.pth"),
        iounet_widths=["reference", "test=32,48"], init=Path("runs/a/checkpoint.pt"), search_area_scale=4.5,
        image_sample_size=256, pool_pairs=300, tests_per_ref=2, pairs_per_epoch=500, proposals=8, epochs=3,
        batch=16, lr=0.000123456789, lr_step=2, lr_gamma=0.5, weight_decay=0.01, feature_dropout=0.1, seed=7,
        device="cpu", workers=2, threads=1, out=Path("runs/x"), export=Path("out/model"))
    defaults = TrainSettings()
    for f in dataclasses.fields(TrainSettings):
        assert getattr(changed, f.name) != getattr(defaults, f.name), f"{f.name} is left at its default"
    line = command_line(changed)
    assert settings_of(line) == changed
    assert "'otb:../data/OTB 2:1'" in line and "--lr 0.000123456789" in line  # quoted, and exact
    assert "--backbone-weights models/r18.pth" in line  # relative paths as given
    # Only what differs from the defaults is written.
    assert command_line(TrainSettings(data=["synthetic"], out=Path("runs/y"))) == \
        "atom train --data synthetic --out runs/y"


def test_a_flag_overrides_the_settings_file_and_the_reproduce_line_says_so(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text('data = ["synthetic:builtin"]\nval-pairs = 10\nepochs = 4\nlr = 1\nout = "runs/a"\n')
    args = parse(f"atom train --settings {file} --epochs 2 --data otb:x --data vot:y")
    s = resolve_settings(given_settings(args), args.settings)
    assert (s.epochs, s.val_pairs, s.lr, s.data) == (2, 10, 1.0, ["otb:x", "vot:y"])  # lists replaced, not joined
    assert isinstance(s.lr, float) and s.out == Path("runs/a")
    assert command_line(s, args.settings, given_settings(args)) == \
        f"atom train --settings {file} --data otb:x --data vot:y --epochs 2"


@pytest.mark.parametrize("text, message", [
    ("epochs = 'ten'", "epochs must be an integer"),
    ("lr = true", "lr: unexpected True"),
    ("data = 'synthetic'", "data must be a list of strings"),
    ("epoch = 3", "unknown setting 'epoch'"),
    ("epochs = ", "not valid TOML"),
    ("best_by = 'val_accuracy'", "--best-by must be one of"),
    ("epochs = 0", "--epochs must be positive"),
    ("image_sample_size = 100", "multiple of 16"),
    ("val_pairs = 3", "--out is required"),
])
def test_bad_settings_files_are_one_line_errors(tmp_path, capsys, text, message):
    file = tmp_path / "bad.toml"
    extra = {"out": "out = 'runs/x'", "data": "data = ['synthetic']"}
    file.write_text("\n".join([text] + [line for key, line in extra.items() if key not in text + message]) + "\n")
    with pytest.raises(CommandError, match=message):
        settings_of(f"atom train --settings {file}")
    assert main(["train", "--settings", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atom train: error:") and err.count("\n") == 1 and message in err


def test_missing_settings_file_and_missing_data(tmp_path, capsys):
    assert main(["train", "--settings", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_settings_json_of_a_run_folder_reads_back(tmp_path):
    from tracker_core.training.run import write_settings

    s = TrainSettings(data=["synthetic"], out=tmp_path / "run", epochs=3, iounet_widths=["ref=8,8"],
                      init=Path("runs/a/checkpoint.pt"))
    path = write_settings(s, s.out)
    assert json.loads(path.read_text())["init"] == "runs/a/checkpoint.pt"
    assert TrainSettings(**load_settings_file(path)) == s
