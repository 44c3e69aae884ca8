"""pytracking's raw results format.

``<results>/<tracker>/<seq>.txt``: one line per frame, x,y,w,h as **tab-separated integers truncated toward
zero** (pytracking casts with ``astype(int)``), in the coordinate frame of the benchmark's own ground-truth file
(1-based for OTB/LaSOT/GOT-10k/UAV123/NFS, as-is for VOT and TrackingNet); the first line is the initial box.
``<seq>_time.txt``: one line per frame, seconds spent in ``initialize`` (first line) or ``track``.

Truncating loses up to a pixel, but it is what published raw results carry, so our numbers stay comparable with
theirs.  The reader accepts tab, comma or space delimiters and floats, so other toolkits' files load too.
Files are written to a temporary name and renamed, so an interrupted run never leaves a partial file that a
resumed run would mistake for a finished one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic_files import atomic_files
from ..datasets import read_number_rows


def results_path(results_dir: str | Path, tracker: str, seq: str) -> Path:
    return Path(results_dir) / tracker / f"{seq}.txt"


def to_file_boxes(boxes: np.ndarray, one_based: bool) -> np.ndarray:
    """0-based float boxes -> the file's integers (truncated toward zero, like pytracking)."""
    out = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    # A tracker that lost the target may report NaN: keep the previous box (frame 0 falls back to zeros).
    for i in range(len(out)):
        if not np.all(np.isfinite(out[i])):
            out[i] = out[i - 1] if i > 0 else 0.0
    if one_based:
        out[:, :2] += 1.0
    return out.astype(np.int64)


def write_results(path: str | Path, boxes: np.ndarray, times: list[float] | None, one_based: bool) -> None:
    """Write ``SEQ.txt`` (and ``SEQ_time.txt`` when ``times`` is given)."""
    path = Path(path)
    rows = to_file_boxes(boxes, one_based)
    with atomic_files(make_folders=True) as files:  # a results file never appears without its time file
        files.write_text(path, "".join("\t".join(str(int(v)) for v in r) + "\n" for r in rows))
        if times is not None:
            files.write_text(path.with_name(f"{path.stem}_time.txt"), "".join(f"{t:.6f}\n" for t in times))


def read_results(path: str | Path, one_based: bool) -> np.ndarray:
    """A results file as (N, 4) float64 0-based boxes."""
    rows = read_number_rows(path)
    boxes = np.array([r[:4] for r in rows if len(r) >= 4], dtype=np.float64).reshape(-1, 4)
    if len(boxes) != len(rows):
        raise ValueError(f"{path}: every line needs x,y,w,h")
    if one_based:
        boxes[:, :2] -= 1.0
    return boxes


def read_times(path: str | Path) -> np.ndarray | None:
    """``SEQ_time.txt`` next to a results file, or None when absent."""
    p = Path(path)
    p = p.with_name(f"{p.stem}_time.txt")
    if not p.is_file():
        return None
    rows = read_number_rows(p)
    return np.array([r[0] for r in rows if r], dtype=np.float64)


def count_lines(path: str | Path) -> int:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return -1


def fps_from_times(times: np.ndarray | None) -> tuple[float | None, int, float]:
    """(fps, frames, seconds) of tracking alone: frames after the first over the time their ``track`` took.

    The first line is ``initialize`` (pytracking writes it too); it is left out because initialisation is a
    one-off cost per sequence, not the tracking rate.
    """
    if times is None or len(times) < 2:
        return None, 0, 0.0
    seconds = float(np.sum(times[1:]))
    frames = len(times) - 1
    return (frames / seconds if seconds > 0 else None), frames, seconds
