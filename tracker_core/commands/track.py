"""``atom track``: track one object through a video or frame folder and write the result files."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from ..boxes import Box, parse_box_arg, to_one_based
from ..errors import CommandError, ModelFileError, VideoError


def add_parser(sub) -> None:
    p = sub.add_parser("track", help="track an object through a video and write its boxes",
                       description="Track the object in --init through VIDEO (a file or a folder of frames). "
                                   "Writes groundtruth.txt (LaSOT: 1-based integers, comma) and scores.csv "
                                   "(0-based frame index, 0-based float x,y,w,h, max score, predicted IoU, status).")
    p.add_argument("video", help="video file or folder of frames")
    p.add_argument("--init", required=True, metavar="x,y,w,h",
                   help="first box in 0-based pixels (top-left corner, width, height), as OpenCV and the app show")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--tracker", default="atom", help="atom (default), atom-multiscale, atom-fast, csrt, kcf, mil")
    p.add_argument("--preset", default=None, help="default, multiscale or fast (ATOM only)")
    p.add_argument("--model", default=None, help="model file (our .json/.safetensors, atom_default.pth, "
                                                 "or a torchvision resnet18 state dict); default: the shipped one")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="0-based frame range, B exclusive (like a Python slice); the box is for frame A")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _frame_range(text: str | None, n: int) -> range:
    if text is None:
        return range(0, n)
    try:
        a, b = text.split(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else n
    except ValueError:
        raise CommandError(f"--frames must look like A:B (0-based, B exclusive), got {text!r}") from None
    if start < 0 or stop > n or start >= stop:
        raise CommandError(f"--frames {text} is outside the video's 0..{n} frames or empty")
    return range(start, stop)


def _check_box(box: Box, width: int, height: int) -> None:
    inside = box.clipped(width, height)
    if inside.w <= 0 or inside.h <= 0:
        raise CommandError(f"the --init box {box.as_tuple()} lies outside the {width}x{height} image")


def write_results(out: Path, frames: list[int], results: list) -> None:
    """groundtruth.txt (LaSOT convention) and scores.csv (ours), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    gt_tmp = out / ".groundtruth.txt.tmp"
    with open(gt_tmp, "w") as f:
        for r in results:
            f.write(",".join(str(v) for v in to_one_based(r.box)) + "\n")
    os.replace(gt_tmp, out / "groundtruth.txt")
    csv_tmp = out / ".scores.csv.tmp"
    with open(csv_tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "x", "y", "w", "h", "max_score", "predicted_iou", "status"])
        for i, r in zip(frames, results):
            iou = "" if r.iou is None else f"{r.iou:.4f}"
            status = getattr(r.status, "value", r.status)
            w.writerow([i, *(f"{v:.2f}" for v in r.box), f"{r.max_score:.4f}", iou, status])
    os.replace(csv_tmp, out / "scores.csv")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..trackers import make_tracker
    from ..video import open_video

    try:
        init = parse_box_arg(args.init)
    except ValueError as exc:
        raise CommandError(f"--init: {exc}") from None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        video = open_video(args.video)
    except VideoError as exc:
        raise CommandError(str(exc)) from None
    except FileNotFoundError:
        raise CommandError(f"no such file or folder: {args.video}") from None
    frames = _frame_range(args.frames, video.num_frames)
    _check_box(init, video.width, video.height)
    try:
        tracker = make_tracker(args.tracker, model_path=args.model, preset=args.preset, device=args.device)
    except ModelFileError as exc:
        raise CommandError(str(exc)) from None
    if getattr(tracker, "warning", None):
        print(f"atom track: warning: {tracker.warning}", file=sys.stderr)

    from ..result import TrackResult

    results: list[TrackResult] = []
    done: list[int] = []
    t_track = 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=len(frames), unit="frame", disable=args.quiet, file=sys.stderr, desc=Path(args.video).name)
    try:
        for i in frames:
            try:
                frame = video.read(i)
            except VideoError as exc:
                print(f"atom track: warning: {exc}; stopping at frame {i}", file=sys.stderr)
                break
            t1 = time.perf_counter()
            if not results:
                results.append(tracker.initialize(frame, init))
            else:
                results.append(tracker.track(frame))
                t_track += time.perf_counter() - t1  # the first frame's initialisation is not tracking
            done.append(i)
            bar.update(1)
    except KeyboardInterrupt:
        print("atom track: interrupted; writing what was tracked so far", file=sys.stderr)
    finally:
        bar.close()
        if results:
            write_results(args.out, done, results)
    total = time.perf_counter() - t0
    n = len(results)
    fps = (n - 1) / max(t_track, 1e-9) if n > 1 else 0.0
    print(f"tracked {n} frames with {tracker.name} in {total:.1f} s "
          f"({fps:.1f} frames/s tracking, {n / max(total, 1e-9):.1f} with decoding); results in {args.out}")
    return 0
