"""Training sources: where reference/test frame pairs come from.

Every source is read in its real on-disk layout; boxes are the project's 0-based float xywh.

* Video datasets (``lasot``, ``got10k``, ``trackingnet``, ``otb``, ``vot``) reuse the benchmark loaders of
  :mod:`tracker_core.datasets`, including their visibility flags (LaSOT occlusion / out-of-view,
  GOT-10k absence / cover).  Each becomes a :class:`SequenceSource` of :class:`TrainSequence` objects.
* ``coco``: a COCO instances JSON read directly (no pycocotools); every non-crowd object is a one-frame
  sequence (:class:`CocoSource`), so both frames of a pair are the same image, as in the reference.
* ``synthetic``: :class:`tracker_core.training.synthetic.SyntheticSource`, composites of natural images.

Command-line specs are ``KIND:PATH[:WEIGHT]`` (:func:`parse_source_spec`); the weight is the probability share of
the source when a pair is drawn.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CommandError

__all__ = [
    "CocoSource",
    "SOURCE_KINDS",
    "SequenceSource",
    "SourceSpec",
    "TrainSequence",
    "build_source",
    "load_coco",
    "name_matches",
    "parse_source_spec",
    "read_rgb",
]

SOURCE_KINDS = ("synthetic", "lasot", "got10k", "trackingnet", "coco", "otb", "vot")
_VIDEO_KINDS = ("lasot", "got10k", "trackingnet", "otb", "vot")
# Objects smaller than this (sqrt of the box area, pixels) are left out of COCO: a 5x crop of a 3-pixel object is
# an upsampled blur that teaches nothing about box boundaries.
COCO_MIN_SIZE = 8.0


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    import cv2

    from ..errors import VideoError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class TrainSequence:
    """One annotated sequence.

    frames: N image paths.  boxes: (N, 4) float64 xywh, 0-based.  visible: (N,) bool, True where the target is
    visible with a valid box (the only frames a pair may use).
    """

    name: str
    frames: list[str]
    boxes: np.ndarray
    visible: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB."""
        return read_rgb(self.frames[index])


def _valid_boxes(boxes: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def name_matches(name: str, patterns: list[str]) -> bool:
    """True when ``name`` matches a shell pattern (case-insensitive).

    A pattern also matches the numbered targets of a multi-target OTB folder: ``Jogging`` matches ``Jogging_1``
    and ``Jogging_2`` (but ``Dog`` does not match ``Dog1``).
    """
    low = name.lower()
    for p in patterns:
        p = p.strip().lower()
        if p and (fnmatch.fnmatchcase(low, p) or re.fullmatch(re.escape(p) + r"_\d+", low)):
            return True
    return False


class SequenceSource:
    """A list of :class:`TrainSequence` (a video dataset) with a sampling weight.

    ``image_dataset`` is True when every sequence is a single image (COCO): the pair then repeats that image.
    """

    image_dataset = False

    def __init__(self, kind: str, name: str, sequences: list[TrainSequence], weight: float = 1.0):
        self.kind = kind
        self.name = name
        self.weight = float(weight)
        self._sequences = sequences

    def __len__(self) -> int:
        return len(self._sequences)

    def sequence(self, index: int) -> TrainSequence:
        return self._sequences[index]

    @property
    def sequence_names(self) -> list[str]:
        return [s.name for s in self._sequences]

    def describe(self) -> str:
        frames = sum(int(s.visible.sum()) for s in self._sequences)
        return f"{self.kind}:{self.name} ({len(self)} sequences, {frames} visible frames, weight {self.weight:g})"


def load_video_sequences(kind: str, path: str | Path, include: list[str] | None = None,
                         exclude: list[str] | None = None, min_visible: int = 2) -> list[TrainSequence]:
    """Sequences of a benchmark copy via the dataset loaders (``tracker_core.datasets``), filtered by name patterns.

    Sequences whose ground truth holds only the first frame (test splits) and sequences with fewer than
    ``min_visible`` visible frames are left out.
    """
    from ..datasets import load_dataset

    out = []
    for seq in load_dataset(kind, path):
        if include and not name_matches(seq.name, include):
            continue
        if exclude and name_matches(seq.name, exclude):
            continue
        if not seq.gt_complete:
            continue
        visible = seq.valid_mask() & _valid_boxes(seq.gt)
        if int(visible.sum()) < min_visible:
            continue
        out.append(TrainSequence(seq.name, list(seq.frames), np.asarray(seq.gt, dtype=np.float64), visible))
    return out


# ---- COCO ------------------------------------------------------------------------------------------------

def _coco_paths(path: Path) -> tuple[Path, Path]:
    """(instances JSON, image folder) for a path naming the JSON or the COCO root folder."""
    if path.is_file():
        json_path = path
        root = path.parent.parent if path.parent.name == "annotations" else path.parent
    elif path.is_dir():
        root = path
        candidates = sorted((path / "annotations").glob("instances_*.json")) if (path / "annotations").is_dir() \
            else []
        train = [c for c in candidates if "train" in c.stem]
        if not (train or candidates):
            raise CommandError(f"coco: no annotations/instances_*.json under {path}")
        json_path = (train or candidates)[0]
    else:
        raise CommandError(f"coco: {path} does not exist")
    split = json_path.stem.removeprefix("instances_")
    for folder in (root / "images" / split, root / split, json_path.parent / split, root / "images", root):
        if folder.is_dir() and any(folder.glob("*.jpg")):
            return json_path, folder
    raise CommandError(f"coco: no image folder for {json_path.name} (looked for images/{split}/ and {split}/ "
                       f"under {root})")


class CocoSource(SequenceSource):
    """COCO instances as one-frame sequences, kept as compact arrays (COCO has ~600k objects).

    ``boxes`` (A, 4) float64 xywh 0-based (COCO's own convention); ``image_index`` (A,) into ``files``.
    """

    image_dataset = True

    def __init__(self, name: str, files: list[str], image_index: np.ndarray, boxes: np.ndarray,
                 weight: float = 1.0):
        super().__init__("coco", name, [], weight)
        self.files = files
        self.image_index = image_index
        self.boxes = boxes

    def __len__(self) -> int:
        return len(self.boxes)

    def sequence(self, index: int) -> TrainSequence:
        return TrainSequence(f"coco-{index}", [self.files[int(self.image_index[index])]],
                             self.boxes[index:index + 1].copy(), np.ones(1, dtype=bool))

    @property
    def sequence_names(self) -> list[str]:
        return [f"coco-{i}" for i in range(len(self))]

    def describe(self) -> str:
        return f"coco:{self.name} ({len(self)} objects in {len(self.files)} images, weight {self.weight:g})"


def load_coco(path: str | Path, weight: float = 1.0, min_size: float = COCO_MIN_SIZE) -> CocoSource:
    """Every non-crowd object of a COCO instances JSON with ``sqrt(w * h) >= min_size``.

    ``path`` is the JSON or the COCO root (``annotations/instances_<split>.json`` with images in
    ``images/<split>/`` or ``<split>/``).
    """
    json_path, image_dir = _coco_paths(Path(path).expanduser())
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CommandError(f"coco: cannot read {json_path}: {exc}") from None
    images = {int(im["id"]): im["file_name"] for im in data.get("images", [])}
    ids = sorted(images)
    position = {image_id: k for k, image_id in enumerate(ids)}
    idx, boxes = [], []
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0) or int(ann.get("image_id", -1)) not in position:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0 or (w * h) ** 0.5 < min_size:
            continue
        idx.append(position[int(ann["image_id"])])
        boxes.append((x, y, w, h))
    if not boxes:
        raise CommandError(f"coco: no usable objects in {json_path}")
    files = [str(image_dir / images[i]) for i in ids]
    return CocoSource(json_path.stem, files, np.asarray(idx, dtype=np.int64),
                      np.asarray(boxes, dtype=np.float64).reshape(-1, 4), weight)


# ---- specs -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``KIND:PATH[:WEIGHT]``."""

    kind: str
    path: str
    weight: float = 1.0

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}:{self.weight:g}"


def parse_source_spec(text: str) -> SourceSpec:
    """``KIND:PATH[:WEIGHT]``; the weight is taken from the last colon only when it parses as a number, so PATH may
    hold colons.  ``synthetic`` accepts an empty PATH (``synthetic`` alone) meaning the built-in images."""
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower().replace("-", "")
    kind = {"got": "got10k", "tn": "trackingnet", "otb100": "otb", "mscoco": "coco"}.get(kind, kind)
    if kind not in SOURCE_KINDS:
        raise CommandError(f"unknown training data kind {kind!r} in {text!r}; expected one of "
                           f"{', '.join(SOURCE_KINDS)}")
    weight = 1.0
    head, colon, tail = rest.rpartition(":")
    if colon:
        try:
            weight = float(tail)
            rest = head
        except ValueError:
            pass
    if weight <= 0:
        raise CommandError(f"the weight of {text!r} must be positive")
    if not rest and kind != "synthetic":
        raise CommandError(f"--data expects KIND:PATH[:WEIGHT] (e.g. lasot:/data/LaSOT:1), got {text!r}")
    return SourceSpec(kind, rest or "builtin", weight)


def build_source(spec: SourceSpec, include: list[str] | None = None, exclude: list[str] | None = None):
    """The source object for a spec; ``include`` / ``exclude`` name patterns filter video sequences."""
    if spec.kind == "synthetic":
        from .synthetic import SyntheticSource

        return SyntheticSource.from_spec(spec.path, weight=spec.weight)
    if spec.kind == "coco":
        return load_coco(spec.path, spec.weight)
    seqs = load_video_sequences(spec.kind, spec.path, include, exclude)
    if not seqs:
        raise CommandError(f"{spec.kind}: no usable sequences in {spec.path}"
                           + (" matching the sequence filters" if include or exclude else ""))
    return SequenceSource(spec.kind, Path(spec.path).name, seqs, spec.weight)
