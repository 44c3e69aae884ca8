"""``atom track``: track objects through videos and write LaSOT files, a scores table and a project file.

One video: ``atom track VIDEO --init x,y,w,h --out DIR``.  Many: ``atom track --batch LIST --out DIR --jobs N
[--shard I/N]``, where each line of LIST is ``VIDEO x,y,w,h`` (``#`` starts a comment); every video gets its own
folder ``DIR/<name>/`` so a failed video costs only itself, and one progress bar counts all frames.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..boxes import Box, parse_box_arg, to_one_based
from ..errors import AtomError, CommandError, ModelFileError, VideoError


def add_parser(sub) -> None:
    p = sub.add_parser("track", help="track an object through a video and write its boxes",
                       description="Track the object in --init through VIDEO (a file or a folder of frames). "
                                   "Writes groundtruth.txt (LaSOT: 1-based integers, comma), scores.csv "
                                   "(0-based frame index, 0-based float x,y,w,h, max score, predicted IoU, status) "
                                   "and project.json (open it in `atom gui`).")
    p.add_argument("video", nargs="?", help="video file or folder of frames")
    p.add_argument("--init", metavar="x,y,w,h",
                   help="first box in 0-based pixels (top-left corner, width, height), as OpenCV and the app show")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--batch", type=Path, default=None, metavar="LIST",
                   help="track many videos: a text file with one 'VIDEO x,y,w,h' per line")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for --batch")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="with --batch, take only every N-th video starting at I (0-based), for job arrays")
    p.add_argument("--tracker", default="atom", help="atom (default), atom-multiscale, atom-fast, csrt, kcf, mil")
    p.add_argument("--preset", default=None, help="default, multiscale or fast (ATOM only)")
    p.add_argument("--model", default=None, help="model file (our .json/.safetensors, atom_default.pth, "
                                                 "or a torchvision resnet18 state dict); default: the shipped one")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="0-based frame range, B exclusive (like a Python slice); the box is for frame A")
    p.add_argument("--label", default="object", help="the object's label in the project file")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (per worker)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


@dataclass
class TrackJob:
    video: str
    init: Box
    out: Path
    frames: str | None = None


@dataclass
class TrackOutcome:
    video: str
    frames: int
    fps: float
    total_s: float
    warning: str | None = None
    error: str | None = None


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


def write_project(out: Path, video, video_path: str, frames: list[int], results: list, label: str) -> Path:
    """project.json: the first frame as a manual keyframe, the rest as tracked frames with their evidence."""
    from ..annotation import Document, Source
    from ..annotation.project_io import save_project
    from ..annotation.video_ref import describe_source

    doc = Document(describe_source(video, str(Path(video_path).resolve())))
    obj = doc.add_object(label)
    doc.set_box(obj, frames[0], results[0].box, Source.MANUAL)
    if len(frames) > 1:
        doc.apply_tracked(obj, list(zip(frames[1:], results[1:])))
    return save_project(doc, out / "project.json")


def track_video(job: TrackJob, args: argparse.Namespace, progress=None) -> TrackOutcome:
    """Track one video and write its three files. Raises CommandError for bad input."""
    from ..result import TrackResult
    from ..trackers import make_tracker
    from ..video import open_video

    try:
        video = open_video(job.video)
    except VideoError as exc:
        raise CommandError(str(exc)) from None
    except FileNotFoundError:
        raise CommandError(f"no such file or folder: {job.video}") from None
    frames = _frame_range(job.frames, video.num_frames)
    _check_box(job.init, video.width, video.height)
    try:
        tracker = make_tracker(args.tracker, model_path=args.model, preset=args.preset, device=args.device)
    except ModelFileError as exc:
        raise CommandError(str(exc)) from None
    warning = getattr(tracker, "warning", None)
    results: list[TrackResult] = []
    done: list[int] = []
    t_track = 0.0
    t0 = time.perf_counter()
    try:
        for i in frames:
            try:
                frame = video.read(i)
            except VideoError as exc:
                print(f"atom track: warning: {exc}; stopping at frame {i}", file=sys.stderr)
                break
            t1 = time.perf_counter()
            if not results:
                first = tracker.initialize(frame, job.init)
                results.append(first if first is not None else TrackResult(box=job.init))
            else:
                results.append(tracker.track(frame))
                t_track += time.perf_counter() - t1  # the first frame's initialisation is not tracking
            done.append(i)
            if progress is not None:
                progress(1)
    finally:
        # Whatever happened (Ctrl+C, a crash in the tracker), what was tracked so far is written.
        if results:
            write_results(job.out, done, results)
            write_project(job.out, video, job.video, done, results, getattr(args, "label", "object"))
        video.close()
    n = len(results)
    fps = (n - 1) / t_track if n > 1 and t_track > 0 else 0.0
    return TrackOutcome(job.video, n, fps, time.perf_counter() - t0, warning)


# ---- many videos ------------------------------------------------------------------------------------------

def read_batch(path: Path) -> list[tuple[str, Box]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read the --batch list {path}: {exc.strerror or exc}") from None
    jobs = []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise CommandError(f"{path}, line {n}: expected 'VIDEO x,y,w,h', got {line!r}")
        try:
            box = parse_box_arg(parts[1])
        except ValueError as exc:
            raise CommandError(f"{path}, line {n}: {exc}") from None
        video = parts[0]
        if not os.path.isabs(video):
            video = str((path.parent / video).resolve()) if not os.path.exists(video) else video
        jobs.append((video, box))
    if not jobs:
        raise CommandError(f"{path}: no videos listed")
    return jobs


def _parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise CommandError(f"--shard must look like I/N, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise CommandError(f"--shard {text}: need 0 <= I < N")
    return i, n


def _worker(job: TrackJob, args: argparse.Namespace, queue) -> TrackOutcome:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return track_video(job, args, progress=lambda k: queue.put(k))
    except (AtomError, Exception) as exc:  # one failed video costs only itself
        return TrackOutcome(job.video, 0, 0.0, 0.0, error=f"{type(exc).__name__}: {exc}")


def _unique_names(videos: list[str]) -> list[str]:
    names, seen = [], {}
    for v in videos:
        stem = Path(v.rstrip("/")).stem or "video"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def run_batch(args: argparse.Namespace) -> int:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    listed = read_batch(args.batch)
    names = _unique_names([v for v, _ in listed])
    shard_i, shard_n = _parse_shard(args.shard)
    jobs = [TrackJob(v, b, args.out / name, args.frames)
            for k, ((v, b), name) in enumerate(zip(listed, names)) if k % shard_n == shard_i]
    total = 0
    for job in jobs:
        try:
            from ..video import open_video

            with open_video(job.video) as v:
                total += len(_frame_range(job.frames, v.num_frames))
        except Exception:
            pass  # reported by the worker
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    queue = manager.Queue()
    bar = tqdm(total=total, unit="frame", disable=args.quiet, file=sys.stderr, desc=f"{len(jobs)} videos")
    outcomes = []
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1), mp_context=ctx) as pool:
        futures = [pool.submit(_worker, job, args, queue) for job in jobs]
        pending = set(futures)
        while pending:
            while not queue.empty():
                bar.update(queue.get())
            pending = {f for f in pending if not f.done()}
            time.sleep(0.1)
        while not queue.empty():
            bar.update(queue.get())
        outcomes = [f.result() for f in futures]
    bar.close()
    failed = [o for o in outcomes if o.error]
    for o in outcomes:
        state = f"FAILED: {o.error}" if o.error else f"{o.frames} frames, {o.fps:.1f} frames/s"
        print(f"{o.video}: {state}")
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} videos tracked; results in {args.out}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.batch is not None:
        if args.video or args.init:
            raise CommandError("give either VIDEO --init x,y,w,h or --batch LIST, not both")
        return run_batch(args)
    if not args.video or not args.init:
        raise CommandError("give VIDEO and --init x,y,w,h (or --batch LIST)")
    try:
        init = parse_box_arg(args.init)
    except ValueError as exc:
        raise CommandError(f"--init: {exc}") from None
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    bar = tqdm(unit="frame", disable=args.quiet, file=sys.stderr, desc=Path(args.video).name)
    try:
        outcome = track_video(TrackJob(args.video, init, args.out, args.frames), args, progress=bar.update)
    except KeyboardInterrupt:
        print("atom track: interrupted; what was tracked so far is written", file=sys.stderr)
        return 130
    finally:
        bar.close()
    if outcome.warning:
        print(f"atom track: warning: {outcome.warning}", file=sys.stderr)
    print(f"tracked {outcome.frames} frames with {args.tracker} in {outcome.total_s:.1f} s "
          f"({outcome.fps:.1f} frames/s tracking, {outcome.frames / max(outcome.total_s, 1e-9):.1f} with decoding); "
          f"results in {args.out}")
    return 0
