"""Model files: pytracking checkpoints (legacy and zip), torchvision state dicts, our safetensors+JSON format, and
the restricted unpickler that never runs code stored in a file."""

from __future__ import annotations

import collections
import functools
import io
import json
import os
import pickle
import re
import sys
import types
import zipfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tracker_core import model_io
from tracker_core.backbones import build_backbone
from tracker_core.cli import main
from tracker_core.errors import ModelFileError
from tracker_core.iounet import AtomIoUNet
from tracker_core.model_io import AtomModel, StubObject, load_model, read_torch_file, save_model
from tracker_core.model_io.networks import load_strict, sub_state

FORMATS = pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])


# ---- fixtures: a checkpoint with the structure of pytracking's atom_default.pth --------------------------------
def _randomise_bn_stats(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-default running statistics, so a test sees whether they were really loaded from the file."""
    for name, buf in module.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        elif name.endswith("num_batches_tracked"):
            buf.fill_(1234)


@pytest.fixture(scope="module")
def atom_net_state() -> dict[str, torch.Tensor]:
    """An ATOMnet state dict: ``feature_extractor.*`` (torchvision ResNet-18 names) + ``bb_regressor.*``."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    backbone, iounet = build_backbone("resnet18", pretrained=False), AtomIoUNet()
    _randomise_bn_stats(backbone, gen)
    _randomise_bn_stats(iounet, gen)
    state = collections.OrderedDict()
    state.update(("feature_extractor." + k, v.clone()) for k, v in backbone.state_dict().items())
    state.update(("bb_regressor." + k, v.clone()) for k, v in iounet.state_dict().items())
    return state


@contextmanager
def fake_pytracking_modules(marker: Path | None = None):
    """Put stand-ins for pytracking's ``ltr`` modules in ``sys.modules`` (as while pytracking saves a checkpoint).

    ``ltr.evil.boom(path)`` writes a marker file: if the loader ever ran pytracking code, the marker would appear.
    """
    names = ["ltr", "ltr.admin", "ltr.admin.model_constructor", "ltr.admin.settings", "ltr.admin.stats",
             "ltr.evil", "pytracking", "pytracking.libs", "pytracking.libs.tensorlist"]
    mods = {n: types.ModuleType(n) for n in names}

    class NetConstructor:
        def __init__(self, fun_name, fun_module, args, kwds):
            self.fun_name, self.fun_module, self.args, self.kwds = fun_name, fun_module, args, kwds

        def get(self):  # what pytracking's loader calls; the loader under test must never reach it
            raise AssertionError("NetConstructor.get() ran")

    class Settings:
        pass

    class AverageMeter:
        def __init__(self):
            self.val, self.avg, self.sum, self.count = 0.0, 0.0, 0.0, 0

    class TensorList(list):
        pass

    class TensorDict(collections.OrderedDict):
        pass

    def boom(path):
        Path(path).write_text("pytracking code ran")
        return path

    for cls, mod in [(NetConstructor, "ltr.admin.model_constructor"), (Settings, "ltr.admin.settings"),
                     (AverageMeter, "ltr.admin.stats"), (TensorList, "pytracking.libs.tensorlist"),
                     (TensorDict, "pytracking.libs.tensorlist"), (boom, "ltr.evil")]:
        cls.__module__, cls.__qualname__ = mod, cls.__name__
        setattr(mods[mod], cls.__name__, cls)
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(**{c.__name__: c for c in
                                       (NetConstructor, Settings, AverageMeter, TensorList, TensorDict, boom)})
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def make_checkpoint(net_state, fake, marker: Path | None = None) -> dict:
    """A trainer checkpoint dict laid out like save_checkpoint's in pytracking's ltr/trainers/base_trainer.py."""
    settings = fake.Settings()
    settings.device = torch.device("cpu")
    settings.normalize_mean = [0.485, 0.456, 0.406]
    settings.proposal_params = {"min_iou": 0.1, "boxes_per_frame": 16, "sigma_factor": [0.01, 0.05, 0.1]}
    meter = fake.AverageMeter()
    meter.avg = np.float64(0.0123)
    stats = collections.OrderedDict(train=collections.OrderedDict(Loss=meter), val=None)
    stats["extra"] = fake.TensorDict(a=fake.TensorList([torch.ones(2), torch.zeros(3)]))
    ckpt = {
        "epoch": 50,
        "actor_type": "AtomActor",
        "net_type": "ATOMnet",
        "net": net_state,
        "net_info": None,
        "constructor": fake.NetConstructor("atom_resnet18", "ltr.models.bbreg.atom", (),
                                           {"backbone_pretrained": True}),
        "optimizer": {"state": {0: {"exp_avg": torch.zeros(4)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]},
        "stats": stats,
        "settings": settings,
    }
    if marker is not None:
        ckpt["payload"] = ExecutesOnLoad(fake.boom, marker)
    return ckpt


class ExecutesOnLoad:
    """A pickle payload that calls ``func(path)`` when unpickled (what a malicious model file does)."""

    def __init__(self, func, path):
        self.func, self.path = func, str(path)

    def __reduce__(self):
        return (self.func, (self.path,))


def _write_marker(path):
    Path(path).write_text("code ran")


def save(obj, path: Path, zip_format: bool) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=zip_format)
    return path


# ---- the official checkpoint layout ----------------------------------------------------------------------------
@FORMATS
def test_pytracking_checkpoint_loads_exact_weights(tmp_path, atom_net_state, zip_format):
    with fake_pytracking_modules() as fake:
        path = save(make_checkpoint(atom_net_state, fake), tmp_path / "atom_default.pth", zip_format)
    assert "ltr" not in sys.modules  # the loader cannot lean on the real classes

    model = load_model(path)
    assert model.info["kind"] == "pytracking-checkpoint"
    assert model.info["backbone"] == "resnet18" and model.info["preset"] == "default"
    assert model.info["pytracking"]["constructor"]["fun_name"] == "atom_resnet18"
    assert model.info["pytracking"]["epoch"] == 50
    loaded = {**{"feature_extractor." + k: v for k, v in model.backbone.state_dict().items()},
              **{"bb_regressor." + k: v for k, v in model.iounet.state_dict().items()}}
    assert loaded.keys() == atom_net_state.keys()
    for key, value in atom_net_state.items():
        assert torch.equal(loaded[key], value), key
    # Backbone BN statistics come from the checkpoint, not from ImageNet (ltr trains with the backbone in train mode).
    assert torch.equal(model.backbone.bn1.running_mean, atom_net_state["feature_extractor.bn1.running_mean"])
    assert model.iounet.config["pred_input_dim"] == (256, 256)
    assert not model.backbone.training and not model.iounet.training


@FORMATS
def test_pytracking_objects_become_inert_stubs(tmp_path, zip_format):
    with fake_pytracking_modules() as fake:
        ckpt = make_checkpoint({"feature_extractor.x": torch.ones(1)}, fake)
        path = save(ckpt, tmp_path / "c.pth", zip_format)
        obj = read_torch_file(path)  # even with the modules importable, only stubs come back
    constructor = obj["constructor"]
    assert isinstance(constructor, StubObject)
    assert constructor.stub_class == "ltr.admin.model_constructor.NetConstructor"
    assert constructor.get("fun_name") == "atom_resnet18" and constructor.get("kwds") == {"backbone_pretrained": True}
    assert obj["settings"].get("device") == torch.device("cpu")
    assert float(obj["stats"]["train"]["Loss"].get("avg")) == pytest.approx(0.0123)
    extra = obj["stats"]["extra"]
    assert isinstance(extra, StubObject) and torch.equal(extra._stub_items["a"]._stub_list[0], torch.ones(2))
    assert torch.equal(obj["optimizer"]["state"][0]["exp_avg"], torch.zeros(4))


@pytest.mark.parametrize("protocol", [1, 4])
def test_other_pickle_protocols(tmp_path, protocol):
    """Protocol 1 pickles objects through copyreg._reconstructor (allowed for stubs only); 4 frames its records."""
    with fake_pytracking_modules() as fake:
        ckpt = {"constructor": fake.NetConstructor("atom_resnet18", "ltr.models.bbreg.atom", (), {}),
                "net": {"w": torch.arange(3.0)}}
        path = tmp_path / "c.pth"
        torch.save(ckpt, path, pickle_protocol=protocol, _use_new_zipfile_serialization=False)
    assert model_io.detect_kind(path) == "torch-legacy"
    obj = read_torch_file(path)
    assert obj["constructor"].get("fun_name") == "atom_resnet18" and torch.equal(obj["net"]["w"], torch.arange(3.0))


def test_missing_or_extra_num_batches_tracked_is_tolerated(atom_net_state):
    """Pre-1.0 files lack the BN counters; they are bookkeeping, every other key must match."""
    state = {k[len("bb_regressor."):]: v for k, v in atom_net_state.items() if k.startswith("bb_regressor.")}
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    old["iou_predictor.num_batches_tracked"] = torch.tensor(3)
    net = AtomIoUNet()
    load_strict(net, old, "IoU-Net", "old.pth")
    assert torch.equal(net.fc3_rt.linear.weight, state["fc3_rt.linear.weight"])
    assert torch.equal(net.fc3_rt.bn.running_var, state["fc3_rt.bn.running_var"])
    del old["fc3_rt.bn.running_var"]
    with pytest.raises(ModelFileError, match="1 missing .*fc3_rt.bn.running_var"):
        load_strict(net, old, "IoU-Net", "old.pth")


# ---- nothing in a pickle ever runs -----------------------------------------------------------------------------
@FORMATS
@pytest.mark.parametrize("payload", ["pytracking", "test_function", "os.system", "eval", "partial"])
def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path, zip_format, payload):
    marker = tmp_path / "marker.txt"
    command = f"touch {marker}"
    payloads = {
        "test_function": ExecutesOnLoad(_write_marker, marker),
        "os.system": ExecutesOnLoad(os.system, command),
        "eval": ExecutesOnLoad(eval, f"open({str(marker)!r}, 'w').write('x')"),
        "partial": ExecutesOnLoad(functools.partial(_write_marker, marker), None),
    }
    with fake_pytracking_modules() as fake:
        if payload == "pytracking":
            ckpt = make_checkpoint({"feature_extractor.x": torch.ones(1)}, fake, marker)
        else:
            ckpt = {"net": {"feature_extractor.x": torch.ones(1)}, "settings": payloads[payload]}
        path = save(ckpt, tmp_path / "evil.pth", zip_format)
        if payload == "pytracking":
            # The function is pytracking's (importable right now), so it becomes an inert stub: nothing runs,
            # and the load then fails only because the weights are not an ATOM network.
            obj = read_torch_file(path)
            assert isinstance(obj["payload"], StubObject)
            with pytest.raises(ModelFileError, match="ATOM"):
                load_model(path)
        else:
            with pytest.raises(ModelFileError, match="refused") as err:
                load_model(path)
            expected = {"test_function": "_write_marker", "os.system": "system", "eval": "builtins.eval",
                        "partial": "functools.partial"}[payload]
            assert expected in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()
    if payload == "test_function":
        # Control: the file really is malicious; an unrestricted torch.load runs the payload.
        torch.load(path, weights_only=False)
        assert marker.exists()


@FORMATS
def test_copyreg_reconstructor_with_a_real_class_is_refused(tmp_path, zip_format):
    class SizeViaReconstructor:
        def __reduce__(self):
            import copyreg
            return (copyreg._reconstructor, (torch.Size, object, None))

    path = save({"net": {"a": torch.ones(1)}, "x": SizeViaReconstructor()}, tmp_path / "c.pth", zip_format)
    with pytest.raises(ModelFileError, match="copyreg._reconstructor"):
        read_torch_file(path)


def test_code_in_the_legacy_header_records_is_refused(tmp_path):
    """The legacy format reads its header records with pickle_module.load: they are restricted too."""
    marker = tmp_path / "marker.txt"
    blob = (pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(ExecutesOnLoad(_write_marker, marker), protocol=2))
    path = tmp_path / "evil_header.pth"
    path.write_bytes(blob)
    with pytest.raises(ModelFileError, match="refused"):
        load_model(path)
    assert not marker.exists()


def test_whole_pickled_network_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(ModelFileError, match="whole pickled network"):
        load_model(path)


def test_torchscript_archive_is_refused(tmp_path):
    """torch.load hands TorchScript archives (code/ + constants.pkl, as torch.jit.save writes) to torch.jit.load."""
    plain = tmp_path / "plain.pt"
    torch.save({"a": torch.ones(1)}, plain)
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("scripted/code/__torch__/m.py", "def forward(self): ...\n")
        dst.writestr("scripted/constants.pkl", pickle.dumps(()))
    with pytest.raises(ModelFileError, match="TorchScript"):
        load_model(path)


def test_restricted_unpickler_on_plain_pickles():
    data = pickle.dumps({"a": collections.OrderedDict(b={1, 2}), "c": b"bytes", "d": (1.5, None)}, protocol=2)
    assert model_io.RESTRICTED_PICKLE.loads(data) == {"a": {"b": {1, 2}}, "c": b"bytes", "d": (1.5, None)}
    with pytest.raises(ModelFileError, match="posix.system|os.system"):
        model_io.RESTRICTED_PICKLE.loads(pickle.dumps(ExecutesOnLoad(os.system, "true")))
    with pytest.raises(ModelFileError, match="builtins.getattr"):
        model_io.RESTRICTED_PICKLE.loads(b"cbuiltins\ngetattr\n.")


# ---- wrong or damaged files ------------------------------------------------------------------------------------
def test_wrong_kind_of_file_gives_clear_errors(tmp_path, atom_net_state):
    rnd = tmp_path / "random.pth"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(rnd)

    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps({"name": "a project file", "frames": [1, 2]}))
    with pytest.raises(ModelFileError, match="not an ATOM Annotator model description"):
        load_model(other_json)

    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_model(empty)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.pth")
    with pytest.raises(ModelFileError, match="folder"):
        load_model(tmp_path)

    plain_pickle = tmp_path / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ModelFileError, match="pickle but not a PyTorch checkpoint"):
        load_model(plain_pickle)

    lin = tmp_path / "linear.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 4)).state_dict(), lin)
    with pytest.raises(ModelFileError, match="not a model this program knows"):
        load_model(lin)

    other_net = tmp_path / "dimp.pth"
    torch.save({"net": {"feature_extractor.conv1.weight": torch.ones(1), "classifier.filter": torch.ones(1)}},
               other_net)
    with pytest.raises(ModelFileError, match="not an ATOM network"):
        load_model(other_net)

    wrong_shape = dict(atom_net_state)
    wrong_shape["bb_regressor.iou_predictor.weight"] = torch.ones(1, 300)
    bad = tmp_path / "wrong_shape.pth"
    torch.save({"net": wrong_shape}, bad)
    with pytest.raises(ModelFileError, match="iou_predictor.weight has shape"):
        load_model(bad)


@FORMATS
def test_truncated_checkpoint(tmp_path, zip_format):
    path = save({"net": {"feature_extractor.w": torch.arange(20000.0)}}, tmp_path / "full.pth", zip_format)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_model(cut)


# ---- torchvision state dict -------------------------------------------------------------------------------------
def test_torchvision_resnet18_state_dict(tmp_path, atom_net_state):
    tv = {k[len("feature_extractor."):]: v for k, v in atom_net_state.items() if k.startswith("feature_extractor.")}
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(tv, path)
    model = load_model(path)
    assert model.iounet is None and model.info["kind"] == "torchvision-state-dict"
    assert model.info["preset"] == "multiscale" and "IoU-Net" in model.info["warning"]
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, tv[k]), k

    tv["layer1.2.conv1.weight"] = torch.ones(64, 64, 3, 3)  # a deeper ResNet's extra block
    torch.save(tv, path)
    with pytest.raises(ModelFileError, match="unexpected .*layer1.2.conv1.weight"):
        load_model(path)


# ---- our format --------------------------------------------------------------------------------------------------
def _outputs(model: AtomModel) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, 48, 48, generator=gen) * 255
    with torch.no_grad():
        feats = model.backbone(image)
        out = list(feats)
        if model.iounet is not None:
            modulation = model.iounet.get_modulation(feats, torch.tensor([[12.0, 10.0, 20.0, 24.0]]))
            iou_feat = model.iounet.get_iou_feat(feats)
            out.append(model.iounet.predict_iou(modulation, iou_feat, torch.tensor([[[10.0, 12.0, 22.0, 20.0]]])))
    return out


def _model_from_state(state) -> AtomModel:
    backbone, iounet = build_backbone("resnet18", pretrained=False), AtomIoUNet()
    backbone.load_state_dict(sub_state(state, "feature_extractor."))
    iounet.load_state_dict(sub_state(state, "bb_regressor."))
    return AtomModel(backbone, iounet.eval(), {"backbone": "resnet18", "preset": "default"})


def test_own_format_round_trip(tmp_path, atom_net_state):
    model = _model_from_state(atom_net_state)
    model.info["model_card"] = {"training_data": ["GOT-10k", "LaSOT"], "pairs": 64000, "epochs": 40,
                                "losses": {"train": 0.021, "val": 0.025}}
    json_path = save_model(model, tmp_path / "mine.json")
    st_path = tmp_path / "mine.safetensors"
    assert json_path == tmp_path / "mine.json" and st_path.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # temporary files were renamed

    desc = json.loads(json_path.read_text())
    assert desc["format"] == model_io.FORMAT_NAME and desc["format_version"] == model_io.FORMAT_VERSION
    assert desc["backbone"] == "resnet18" and desc["backbone_weights"] == "stored"
    assert desc["iounet"] == {k: list(v) for k, v in model.iounet.config.items()}
    assert desc["preset"] == "default" and desc["model_card"]["pairs"] == 64000
    assert desc["weights"] == "mine.safetensors"

    expected = _outputs(model)
    again = load_model(json_path)
    assert again.info["kind"] == "atom-model" and again.info["model_card"]["epochs"] == 40
    for a, b in zip(expected, _outputs(again), strict=True):
        assert torch.equal(a, b)

    # A pair whose halves come from different saves is detected.
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(dict(desc, weights_sha256="0" * 64)))
    with pytest.raises(ModelFileError, match="not saved together"):
        load_model(stale)
    json_path.write_text(stale.read_text())  # given the .safetensors, its .json sibling is consulted too
    with pytest.raises(ModelFileError, match="not saved together"):
        load_model(st_path)
    stale.write_text(json.dumps(dict(desc, format_version=model_io.FORMAT_VERSION + 1)))
    with pytest.raises(ModelFileError, match="update"):
        load_model(stale)
    stale.write_text(json.dumps(dict(desc, weights="absent.safetensors")))
    with pytest.raises(ModelFileError, match="absent.safetensors is missing"):
        load_model(stale)

    # A lone .safetensors still loads (the description is embedded in its metadata).
    json_path.unlink()
    again = load_model(st_path)
    assert again.iounet.config == model.iounet.config and again.info["model_card"]["pairs"] == 64000
    for a, b in zip(expected, _outputs(again), strict=True):
        assert torch.equal(a, b)


def test_default_fallback_and_packaged_backbone(tmp_path, monkeypatch):
    monkeypatch.setattr(model_io, "_model_dirs", lambda: [tmp_path / "nothing-here"])
    assert model_io.default_model_path() is None
    fallback = load_model(None)
    assert fallback.iounet is None and fallback.info["backbone"] == "efficientnet_lite0"
    assert fallback.info["preset"] == "multiscale" and "IoU-Net" in fallback.info["warning"]

    # Stock packaged weights are not stored: the shipped file stays tiny.
    models = tmp_path / "installed"
    save_model(fallback, models / "default")
    desc = json.loads((models / "default.json").read_text())
    assert desc["backbone_weights"] == "packaged" and desc["iounet"] is None
    assert (models / "default.safetensors").stat().st_size < 10_000

    monkeypatch.undo()
    monkeypatch.setenv(model_io.MODEL_DIR_ENV, str(models))
    assert model_io.default_model_path() == models / "default.json"
    default = load_model()
    assert default.info["default"] is True and default.info["kind"] == "atom-model"
    for a, b in zip(_outputs(fallback), _outputs(default), strict=True):
        assert torch.equal(a, b)


def test_model_to_device_returns_itself(atom_net_state):
    model = AtomModel(build_backbone("resnet18", pretrained=False), AtomIoUNet(), {})
    assert model.to("cpu") is model and model.device.type == "cpu"


def test_detect_kind(tmp_path):
    p = tmp_path / "x.bin"
    buf = io.BytesIO()
    torch.save({"a": torch.ones(1)}, buf)
    p.write_bytes(buf.getvalue())
    assert model_io.detect_kind(p) == "torch-zip"
    buf = io.BytesIO()
    torch.save({"a": torch.ones(1)}, buf, _use_new_zipfile_serialization=False)
    p.write_bytes(buf.getvalue())
    assert model_io.detect_kind(p) == "torch-legacy"
    p.write_bytes(b'\xef\xbb\xbf  {"format": 1}')
    assert model_io.detect_kind(p) == "json"


def test_lite0_iounet_with_box_offset_round_trips(tmp_path):
    dims = {"input_dim": (40, 112), "pred_input_dim": (8, 8), "pred_inter_dim": (8, 8), "ref_dim": (8, 8),
            "test_dim": (8, 8)}
    model = AtomModel(build_backbone("efficientnet_lite0", pretrained=True), AtomIoUNet(**dims, box_offset=(7, 15)),
                      {})
    path = save_model(model, tmp_path / "offset")
    assert json.loads(path.read_text())["iounet"]["box_offset"] == [7, 15]
    loaded = load_model(path)
    assert loaded.iounet.box_offset == (7, 15)
    for a, b in zip(model.iounet.state_dict().values(), loaded.iounet.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # A negative offset is a broken file, said so.
    desc = json.loads(path.read_text())
    desc["iounet"]["box_offset"] = [-1, 15]
    path.write_text(json.dumps(desc))
    with pytest.raises(model_io.ModelFileError, match="box_offset must be two non-negative integers"):
        load_model(path)


@pytest.mark.parametrize("dims,message", [
    ({"pred_inter_dim": [100000, 8]}, r"iounet.pred_inter_dim = \[100000, 8\] is beyond any IoU-Net"),
    ({"pred_input_dim": [4000, 4000], "pred_inter_dim": [4000, 4000]},
     r"describes 5\d\dM parameters, beyond any IoU-Net \(at most 50M\)"),
])
def test_absurd_iounet_sizes_are_refused_before_anything_is_built(tmp_path, monkeypatch, capsys, dims, message):
    dims_ok = {"input_dim": (40, 112), "pred_input_dim": (8, 8), "pred_inter_dim": (8, 8), "ref_dim": (8, 8),
               "test_dim": (8, 8)}
    path = save_model(AtomModel(build_backbone("efficientnet_lite0", pretrained=True), AtomIoUNet(**dims_ok), {}),
                      tmp_path / "absurd")
    desc = json.loads(path.read_text())
    desc["iounet"].update(dims)
    path.write_text(json.dumps(desc))

    def never_built(*args, **kwargs):
        raise AssertionError("the network was built before its description was checked")

    monkeypatch.setattr(AtomIoUNet, "__init__", never_built)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)
    # From a command: one line and exit code 2.
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((48, 64, 3), 60 * i, np.uint8))
    argv = ["track", str(frames), "--init", "1,1,5,5", "--out", str(tmp_path / "out"), "--model", str(path), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
