"""Dataset loaders, for evaluation and training alike: each reads a benchmark's real layout and file conventions
into ``Sequence`` objects.

Inside the code every box is the project's 0-based float xywh (``tracker_core.boxes``).  Benchmarks store boxes
in other conventions, so each ``Sequence`` remembers its file convention (``one_based``) and the results writer
converts back: a results file is always in the same coordinate frame as the benchmark's own ground-truth file,
which is what makes our raw results comparable with published ones (``atom eval --results``).

Layouts and conventions:
- ``otb``: ``<Seq>/img/0001.jpg`` + ``groundtruth_rect[.1|.2].txt``; x,y,w,h 1-based, comma, tab or space
  delimited; no absence flags.
- ``lasot``: ``<class>/<class>-N/img/00000001.jpg`` + ``groundtruth.txt`` (x,y,w,h 1-based, comma);
  ``full_occlusion.txt`` and ``out_of_view.txt`` each hold one line of comma-separated 0/1 flags.
- ``got10k``: ``<split>/<seq>/00000001.jpg`` + ``groundtruth.txt`` (x,y,w,h 1-based, comma);
  ``absence.label`` (1 = absent) and ``cover.label`` (0 = fully occluded), one value per line.
- ``vot``: ``<seq>/color/00000001.jpg`` + ``groundtruth.txt``; 8-value polygons become their axis-aligned
  bounding box (0-based, as ``boxes.polygon_to_box``), 4-value lines are x,y,w,h; NaN or one-value lines mark
  absent targets.
- ``trackingnet``: ``<split>/frames/<vid>/0.jpg`` (0-based names, numeric sort) + ``<split>/anno/<vid>.txt``
  (x,y,w,h comma), taken as 0-based (unverified).
- ``uav123``: ``data_seq/UAV123/<name>/000001.jpg`` + ``anno/UAV123/<name>.txt`` (x,y,w,h 1-based, NaN rows when
  the target is absent), frame ranges from the table.
- ``nfs``: pytracking's layout ``sequences/<name>/00001.jpg`` + ``anno/nfs_<name>.txt`` (x,y,w,h 1-based).

OTB, UAV123 and NFS sequences come from ``sequence_tables.json`` (the benchmark tables as pytracking lists them:
late starts such as BlurCar1 from frame 247, Tiger1's 5 omitted frames, UAV123 sequences that are frame ranges of
a shared folder).  OTB folders missing from the table are found by scanning.  Multi-target OTB folders give one
sequence per target: ``Jogging_1`` / ``Jogging_2`` from ``groundtruth_rect.1.txt`` / ``.2.txt``, and ``Skating2_1``
/ ``Skating2_2`` when the first target's file is plain ``groundtruth_rect.txt``.

A ground-truth file with only its first line (GOT-10k and TrackingNet test splits) gives a sequence with
``gt_complete=False``: it can be tracked and its results written, but it cannot be scored locally.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .boxes import polygon_to_box
from .errors import CommandError, FormatError, VideoError

KINDS = ("otb", "lasot", "got10k", "vot", "trackingnet", "uav123", "nfs")
_ALIASES = {"uav": "uav123", "got-10k": "got10k", "got": "got10k", "tn": "trackingnet", "otb100": "otb",
            "otb2015": "otb"}
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Sequence:
    """One benchmark sequence.

    frames: image file paths, one per frame.
    gt: (N, 4) float64 boxes in the project's 0-based xywh; NaN rows where the file has no box.
    visible: (N,) bool from the benchmark's absence flags, or None when it has none.
    one_based: the convention of the benchmark's box files (results files are written in it).
    gt_complete: False when the ground truth holds only the first frame (test splits).
    """

    name: str
    dataset: str
    frames: list[str]
    gt: np.ndarray
    visible: np.ndarray | None = None
    one_based: bool = True
    gt_complete: bool = True
    object_class: str | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def valid_mask(self) -> np.ndarray:
        """Frames with a scorable target: a finite box with w > 0 and h > 0, and visible when flags exist.

        pytracking uses the same rule (``valid = (gt w > 0) & (gt h > 0) & target_visible``); LaSOT's absent
        frames often keep a stale box, so the flags, not the box, decide.
        """
        gt = self.gt
        valid = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
        if self.visible is not None:
            valid &= self.visible
        return valid


# ---- file parsing -----------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[,\s;]+")


def read_number_rows(path: str | Path) -> list[list[float]]:
    """Rows of numbers from a text file delimited by commas, tabs, spaces or semicolons (mixed is fine).

    Blank lines are skipped; ``NaN`` parses as NaN.  A non-numeric value raises ``FormatError`` naming the file
    and line.
    """
    path = Path(path)
    rows: list[list[float]] = []
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in _SPLIT.split(line) if v != ""])
        except ValueError:
            raise FormatError(f"{path}:{lineno}: expected numbers, got {line[:60]!r}") from None
    return rows


def read_boxes(path: str | Path, one_based: bool) -> np.ndarray:
    """An x,y,w,h file (any of the delimiters above) as (N, 4) float64 in the project's 0-based convention."""
    rows = read_number_rows(path)
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise FormatError(f"{path}: row {i + 1} has {len(row)} values, expected x,y,w,h")
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if one_based:
        boxes[:, :2] -= 1.0
    return boxes


def read_vot_boxes(path: str | Path) -> np.ndarray:
    """VOT ground truth as (N, 4) axis-aligned boxes.

    8 values are a rotated box (polygon x1,y1,...,x4,y4) and become its axis-aligned bounding box, which is how
    trackers that output axis-aligned boxes are compared (pytracking's VOT loader does the same).  4 values are
    already x,y,w,h.  A line with one value or NaN marks a frame without a target (NaN row).
    """
    rows = read_number_rows(path)
    out = np.full((len(rows), 4), np.nan)
    for i, row in enumerate(rows):
        if len(row) == 8 and all(np.isfinite(row)):
            out[i] = polygon_to_box(row).as_tuple()
        elif len(row) == 4:
            out[i] = row
        elif len(row) in (1, 8):
            continue  # absent target
        else:
            raise FormatError(f"{path}: row {i + 1} has {len(row)} values, expected a 4- or 8-value region")
    return out


def read_flag_line(path: str | Path) -> np.ndarray:
    """LaSOT's flag files: one line of comma-separated 0/1 values (read like ``csv.reader(f)[0]``)."""
    text = Path(path).read_text(encoding="utf-8-sig").strip()
    if not text:
        return np.zeros(0, dtype=bool)
    first = text.splitlines()[0]
    values = [v for v in _SPLIT.split(first.strip()) if v != ""]
    # Some copies hold one value per line instead; accept both.
    if len(values) == 1 and len(text.splitlines()) > 1:
        values = [v.strip() for v in text.splitlines() if v.strip()]
    try:
        return np.array([int(float(v)) for v in values], dtype=np.int64) != 0
    except ValueError:
        raise FormatError(f"{path}: expected 0/1 flags") from None


def read_label_column(path: str | Path) -> np.ndarray:
    """GOT-10k ``.label`` files: one integer per line."""
    rows = read_number_rows(path)
    return np.array([int(r[0]) for r in rows if r], dtype=np.int64)


def read_frame(path: str) -> np.ndarray:
    """One frame as (H, W, 3) uint8 RGB (the project's image convention)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"cannot read frame {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _numeric_key(p: Path):
    digits = re.findall(r"\d+", p.stem)
    return (int(digits[-1]) if digits else -1, p.name)


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder sorted by the number in their name (TrackingNet's 0.jpg, 1.jpg, ..., 10.jpg)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS), key=_numeric_key)


def _fit_lengths(name: str, frames: list[str], gt: np.ndarray) -> tuple[list[str], np.ndarray, bool]:
    """Align frames and ground truth; returns (frames, gt, gt_complete)."""
    if len(gt) == 0:
        raise FormatError(f"{name}: the ground truth is empty")
    if len(gt) == 1 and len(frames) > 1:
        padded = np.full((len(frames), 4), np.nan)
        padded[0] = gt[0]
        return frames, padded, False
    if len(gt) != len(frames):
        n = min(len(gt), len(frames))
        warnings.warn(f"{name}: {len(frames)} frames but {len(gt)} ground-truth boxes; using the first {n}",
                      stacklevel=3)
        return frames[:n], gt[:n], True
    return frames, gt, True


# ---- table-driven benchmarks (OTB, UAV123, NFS) -----------------------------------------------------------

@functools.lru_cache(maxsize=1)
def sequence_tables() -> dict:
    with open(Path(__file__).with_name("sequence_tables.json"), encoding="utf-8") as f:
        return json.load(f)


def _table_sequence(root: Path, row: list, kind: str) -> Sequence | None:
    name, folder, start, end, nz, ext, anno, object_class, init_omit = row
    anno_path = root / anno
    if not anno_path.is_file() and anno.endswith("groundtruth_rect.1.txt"):
        # Some OTB copies name the first target's file plain groundtruth_rect.txt (Skating2).
        anno_path = root / anno.replace("groundtruth_rect.1.txt", "groundtruth_rect.txt")
    if not anno_path.is_file():
        warnings.warn(f"{kind}: {name}: annotation file {anno} not found; skipped", stacklevel=3)
        return None
    numbers = range(start + init_omit, end + 1)
    frame_dir = root / folder
    frames = [str(frame_dir / f"{i:0{nz}d}.{ext}") for i in numbers]
    if frames and not (Path(frames[0]).is_file() and Path(frames[-1]).is_file()):
        listed = list_images(frame_dir)
        if start > 1 and len(listed) == end - start + 1:
            # A copy cut to the table's range and renumbered from 1 (David's frames 300-770 as 0001-0471).
            frames = [str(p) for p in listed[init_omit:]]
        elif len(listed) >= end:
            # A copy with other zero-padding: take the same positions from the sorted folder listing.
            frames = [str(p) for p in listed[start - 1 + init_omit:end]]
        else:
            warnings.warn(f"{kind}: {name}: frames {frames[0]} ... not found; skipped", stacklevel=3)
            return None
    gt = read_boxes(anno_path, one_based=True)[init_omit:]
    frames, gt, complete = _fit_lengths(name, frames, gt)
    return Sequence(name, kind, frames, gt, None, True, complete, object_class)


def _load_table(root: Path, kind: str) -> tuple[list[Sequence], set[str]]:
    """Sequences of the table whose folders exist; also returns the top-level folders they cover."""
    seqs, covered = [], set()
    for row in sequence_tables()[kind]:
        top = row[1].split("/")[0]
        if not (root / row[1]).is_dir():
            continue
        covered.add(top)
        seq = _table_sequence(root, row, kind)
        if seq is not None:
            seqs.append(seq)
    return seqs, covered


def load_otb(root: Path) -> list[Sequence]:
    seqs, covered = _load_table(root, "otb")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in covered):
        seqs.extend(_scan_otb_folder(folder))
    return seqs


def _scan_otb_folder(folder: Path) -> list[Sequence]:
    """An OTB-style folder not in the table: ``img/`` plus one or more ``groundtruth_rect*.txt``."""
    frame_dir = next((folder / d for d in ("img", "jpg") if (folder / d).is_dir()), None)
    if frame_dir is None:
        return []
    plain = folder / "groundtruth_rect.txt"
    numbered = sorted(folder.glob("groundtruth_rect.[0-9]*.txt"), key=lambda p: int(p.name.split(".")[1]))
    targets: list[tuple[str, Path]] = []
    if numbered:
        if plain.is_file() and not (folder / "groundtruth_rect.1.txt").is_file():
            targets.append((f"{folder.name}_1", plain))
        targets += [(f"{folder.name}_{p.name.split('.')[1]}", p) for p in numbered]
    elif plain.is_file():
        targets.append((folder.name, plain))
    frames_all = [str(p) for p in list_images(frame_dir)]
    out = []
    for name, anno in targets:
        gt = read_boxes(anno, one_based=True)
        frames, gt, complete = _fit_lengths(name, list(frames_all), gt)
        out.append(Sequence(name, "otb", frames, gt, None, True, complete))
    return out


def _load_table_only(root: Path, kind: str, expect: str) -> list[Sequence]:
    if not (root / expect).is_dir():
        raise CommandError(f"{kind}: {root} does not have the expected layout (no {expect}/ folder)")
    seqs, _ = _load_table(root, kind)
    return seqs


def load_uav123(root: Path) -> list[Sequence]:
    return _load_table_only(root, "uav123", "data_seq/UAV123")


def load_nfs(root: Path) -> list[Sequence]:
    return _load_table_only(root, "nfs", "sequences")


# ---- folder-driven benchmarks ---------------------------------------------------------------------------

def load_lasot(root: Path) -> list[Sequence]:
    """``<class>/<class>-N/`` folders (or ``<class>-N/`` directly under the root)."""
    seq_dirs = []
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            continue
        if (d / "groundtruth.txt").is_file():
            seq_dirs.append(d)
        else:
            seq_dirs += sorted((s for s in d.iterdir() if (s / "groundtruth.txt").is_file()),
                               key=lambda s: _numeric_key(s))
    out = []
    for d in seq_dirs:
        gt = read_boxes(d / "groundtruth.txt", one_based=True)
        n = len(gt)
        frames = [str(d / "img" / f"{i:08d}.jpg") for i in range(1, n + 1)]
        flags = []
        for fname in ("full_occlusion.txt", "out_of_view.txt"):
            if (d / fname).is_file():
                flag = read_flag_line(d / fname)
                if len(flag) != n:
                    raise FormatError(f"{d / fname}: {len(flag)} flags for {n} frames")
                flags.append(flag)
        visible = ~np.logical_or.reduce(flags) if flags else None
        out.append(Sequence(d.name, "lasot", frames, gt, visible, True, True, d.parent.name))
    return out


def _listed_dirs(root: Path, marker: str) -> list[Path]:
    """Sequence folders from ``list.txt`` when present, else every sub-folder that holds ``marker``."""
    listing = root / "list.txt"
    if listing.is_file():
        names = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
        return [root / n for n in names if (root / n / marker).is_file()]
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / marker).is_file())


def load_got10k(root: Path) -> list[Sequence]:
    dirs = _listed_dirs(root, "groundtruth.txt")
    if not dirs:
        splits = [s for s in ("val", "test", "train") if (root / s).is_dir()]
        if splits:
            raise CommandError(f"got10k: point the path at one split folder, e.g. got10k:{root / splits[0]}")
    out = []
    for d in dirs:
        gt = read_boxes(d / "groundtruth.txt", one_based=True)
        frames, gt, complete = _fit_lengths(d.name, [str(p) for p in list_images(d)], gt)
        n = len(frames)
        visible = None
        if (d / "absence.label").is_file():
            visible = read_label_column(d / "absence.label")[:n] == 0
        if (d / "cover.label").is_file():
            covered = read_label_column(d / "cover.label")[:n] > 0  # cover 0 = fully occluded
            visible = covered if visible is None else visible & covered
        if visible is not None and len(visible) != n:
            raise FormatError(f"{d}: absence/cover labels have {len(visible)} rows for {n} frames")
        out.append(Sequence(d.name, "got10k", frames, gt, visible, True, complete))
    return out


def load_vot(root: Path) -> list[Sequence]:
    out = []
    for d in _listed_dirs(root, "groundtruth.txt"):
        frame_dir = d / "color" if (d / "color").is_dir() else d
        gt = read_vot_boxes(d / "groundtruth.txt")
        frames, gt, complete = _fit_lengths(d.name, [str(p) for p in list_images(frame_dir)], gt)
        out.append(Sequence(d.name, "vot", frames, gt, None, False, complete))
    return out


def load_trackingnet(root: Path) -> list[Sequence]:
    if (root / "anno").is_dir() and (root / "frames").is_dir():
        splits = [root]
    else:
        splits = sorted(d for d in root.iterdir()
                        if d.is_dir() and (d / "anno").is_dir() and (d / "frames").is_dir())
    out = []
    for split in splits:
        for anno in sorted((split / "anno").glob("*.txt")):
            vid = anno.stem
            frames = [str(p) for p in list_images(split / "frames" / vid)]  # 0.jpg, 1.jpg, ... numeric order
            if not frames:
                warnings.warn(f"trackingnet: {vid}: no frames in {split / 'frames' / vid}; skipped", stacklevel=2)
                continue
            gt = read_boxes(anno, one_based=False)
            frames, gt, complete = _fit_lengths(vid, frames, gt)
            out.append(Sequence(vid, "trackingnet", frames, gt, None, False, complete))
    return out


_LOADERS = {
    "otb": load_otb, "lasot": load_lasot, "got10k": load_got10k, "vot": load_vot,
    "trackingnet": load_trackingnet, "uav123": load_uav123, "nfs": load_nfs,
}


def normalise_kind(kind: str) -> str:
    k = kind.strip().lower()
    k = _ALIASES.get(k, k)
    if k not in _LOADERS:
        raise CommandError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    return k


def load_dataset(kind: str, path: str | Path) -> list[Sequence]:
    """All sequences of a benchmark copy at ``path``.  Raises ``CommandError`` for a missing or empty folder."""
    kind = normalise_kind(kind)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CommandError(f"{kind}: {root} is not a folder")
    seqs = _LOADERS[kind](root)
    if not seqs:
        raise CommandError(f"{kind}: no sequences found in {root}")
    return seqs


def parse_dataset_arg(text: str) -> tuple[str, Path]:
    """``KIND:PATH`` from the command line (split at the first colon, so PATH may hold colons)."""
    kind, sep, path = text.partition(":")
    if not sep or not path:
        raise CommandError(f"--dataset expects KIND:PATH (e.g. otb:/data/OTB100), got {text!r}")
    return normalise_kind(kind), Path(path).expanduser()


def sequence_patterns(patterns: str | None) -> list[str]:
    """Comma-separated shell patterns, or ``@FILE`` with one name or pattern per line (e.g. LaSOT's 280 test
    sequences, or a split of this project's ``configs/splits``), as a list; empty for None."""
    if not patterns:
        return []
    if patterns.startswith("@"):
        path = Path(patterns[1:]).expanduser()
        try:
            patterns = ",".join(line.split("#")[0].strip() for line in path.read_text().splitlines())
        except OSError as exc:
            raise CommandError(f"--sequences {patterns}: cannot read {path} ({exc.strerror or exc})") from None
    return [p.strip() for p in patterns.split(",") if p.strip()]


def select_sequences(seqs: list[Sequence], patterns: str | None) -> list[Sequence]:
    """Keep sequences whose name matches one of the patterns of :func:`sequence_patterns` (case-insensitive)."""
    if not patterns:
        return seqs
    import fnmatch

    pats = [p.lower() for p in sequence_patterns(patterns)]
    return [s for s in seqs if any(fnmatch.fnmatchcase(s.name.lower(), p) for p in pats)]


def load_datasets(args: list[str], patterns: str | None = None) -> list[Sequence]:
    """Sequences of several ``KIND:PATH`` arguments, filtered, with unique names.

    Results files are named by sequence (``results/NAME/SEQ.txt``), so a name that two datasets share is
    prefixed with its dataset kind (``vot-bag``) rather than silently overwriting the other's results.
    """
    seqs: list[Sequence] = []
    for arg in args:
        kind, path = parse_dataset_arg(arg)
        seqs += load_dataset(kind, path)
    seqs = select_sequences(seqs, patterns)
    if not seqs:
        raise CommandError(f"no sequence matches --sequences {patterns!r}")
    counts: dict[str, int] = {}
    for s in seqs:
        counts[s.name] = counts.get(s.name, 0) + 1
    for s in seqs:
        if counts[s.name] > 1:
            s.name = f"{s.dataset}-{s.name}"
    if len({s.name for s in seqs}) != len(seqs):
        raise CommandError("the same dataset was given twice (duplicate sequence names)")
    return seqs
