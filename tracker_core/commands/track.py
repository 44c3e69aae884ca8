"""``atom track``: track objects through videos and write LaSOT files, a scores table and a project file.

One video: ``atom track VIDEO --init x,y,w,h --out DIR``.  Many: ``atom track --batch LIST --out DIR --jobs N
[--shard I/N]``, where each line of LIST is ``VIDEO x,y,w,h`` (``#`` starts a comment); every video gets its own
folder ``DIR/<name>/`` so a failed video costs only itself, and one progress bar counts all frames.

Nothing tracked is lost. Tracking runs through ``tracker_core.runs`` (the app's engine), and the three files are
written as it goes: every ``CHECKPOINT_S`` seconds and at the end, each time all three together or none
(``atomic_files``), so a kill (even ``kill -9``) or a full disk loses at most the last seconds and never leaves a
half-written file or a groundtruth.txt of one run beside the project of another (a kill in the microseconds
between a checkpoint's three renames leaves whole files one checkpoint apart). Before any tracking, ``--out``
must be a writable folder; a lock (``.atom-track.lock``) keeps a second ``atom track`` out of it while one
writes; tracking results already there are replaced only with ``--force``. SIGTERM stops like Ctrl+C: the frames
tracked so far are written. A video that ends early (a truncated file, an unreadable image in a frame folder) is
named in a warning, and the exit code is 1 when fewer frames were tracked than asked.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic_files import atomic_files, temporary_name
from ..boxes import Box, parse_box_arg
from ..errors import AtomError, CommandError, ModelFileError, VideoError

RESULT_FILES = ("groundtruth.txt", "scores.csv", "project.json")
LOCK_FILE = ".atom-track.lock"
CHECKPOINT_S = 2.0  # write what was tracked at least this often


def add_parser(sub) -> None:
    p = sub.add_parser("track", help="track an object through a video and write its boxes",
                       description="Track the object in --init through VIDEO (a file or a folder of frames). "
                                   "Writes groundtruth.txt (LaSOT: 1-based integers, comma), scores.csv "
                                   "(0-based frame index, 0-based float x,y,w,h, max score, predicted IoU, status) "
                                   "and project.json (open it in `atom gui`), as it goes: a kill loses at most the "
                                   "last few seconds.")
    p.add_argument("video", nargs="?", help="video file or folder of frames")
    p.add_argument("--init", metavar="x,y,w,h",
                   help="first box in 0-based pixels (top-left corner, width, height), as OpenCV and the app show")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--force", action="store_true", help="replace tracking results already in --out")
    p.add_argument("--batch", type=Path, default=None, metavar="LIST",
                   help="track many videos: a text file with one 'VIDEO x,y,w,h' per line")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for --batch")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="with --batch, take only every N-th video starting at I (0-based), for job arrays")
    p.add_argument("--tracker", default="atom",
                   help="atom (default), atom-multiscale, atom-fast, atom-damped, csrt, kcf, mil")
    p.add_argument("--preset", default=None, help="default, multiscale, fast or damped (ATOM only)")
    p.add_argument("--model", default=None, help="model file (our .json/.safetensors, atom_default.pth, "
                                                 "or a torchvision resnet18 state dict); default: the shipped one")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="0-based frame range, B exclusive (like a Python slice); the box is for frame A")
    p.add_argument("--label", default="object", help="the object's label in the project file")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (per worker)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl+C (what was tracked is written), exit 143."""


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
    asked: int = 0  # frames the command asked for (the first one included)
    warnings: list[str] = field(default_factory=list)  # an early end: which frame and why

    @property
    def complete(self) -> bool:
        return self.error is None and self.frames >= self.asked


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


# ---- the output folder: checked, locked, written all together ---------------------------------------------

def check_writable_folder(out: Path) -> None:
    """``out`` is (or is made) a folder this process can create files in; CommandError with the reason if not."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(out / "probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise CommandError(f"cannot write in --out {out}: {exc.strerror or exc}") from None


class OutputFolder:
    """``--out`` of one video: checked writable and locked before tracking, then written all together.

    The lock is ``fcntl.flock`` on ``.atom-track.lock``: the kernel releases it when the process ends, however it
    ends, so a killed run never leaves a folder locked. The lock file itself stays (removing it would let two
    later runs lock two different files).
    """

    def __init__(self, path: Path, force: bool):
        self.path = Path(path)
        self.force = force
        self._lock_fd: int | None = None

    def open(self) -> OutputFolder:
        """Check and lock the folder (CommandError with a one-line reason otherwise)."""
        out = self.path
        check_writable_folder(out)
        self._lock()
        existing = [name for name in RESULT_FILES if (out / name).exists()]
        if existing and not self.force:
            self.close()
            raise CommandError(f"{out} already holds tracking results ({', '.join(existing)}); pass --force to "
                               f"replace them, or choose another --out")
        return self

    def _lock(self) -> None:
        path = self.path / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): the folder is not locked
            pass
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise CommandError(f"another atom track (process {holder}) is writing to {self.path}; wait for it "
                               f"to finish, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def write(self, texts: dict[str, str]) -> None:
        """Replace the result files with ``texts`` (name -> text), all of them or none."""
        with atomic_files() as files:
            for name, text in texts.items():
                files.write_text(self.path / name, text)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


# ---- one video --------------------------------------------------------------------------------------------

class _Recorder:
    """Follows a run for ``atom track``: writes each result into the document, and the files as it goes."""

    def __init__(self, document, obj: int, out: OutputFolder, spec, progress=None):
        from ..runs import RunObserver, RunRecorder

        class Observer(RunObserver):
            def started(inner, initial):
                self.initial = initial

            def result(inner, frame, result, image):
                self._pending.append((frame, result))
                self.results[frame] = result
                if progress is not None:
                    progress(1)
                if time.monotonic() - self._written_at >= CHECKPOINT_S:
                    self.checkpoint()

        self.document, self.obj, self.out = document, obj, out
        self.recorder = RunRecorder(document, spec) if spec is not None else None
        self.observer = Observer()
        self.initial = None
        self.results: dict = {}
        self._pending: list = []
        self._written_at = time.monotonic()
        self.first = None  # the start frame, once its box is known

    def checkpoint(self) -> None:
        """Write the three files as they stand now (all or none)."""
        if self._pending and self.recorder is not None:
            self.recorder.apply(self._pending)
            self._pending = []
        self.out.write(result_texts(self.document, self.obj, self.initial, self.results,
                                    self.out.path / "project.json"))
        self._written_at = time.monotonic()


class _TimedTracker:
    """The tracker, with the time spent in ``track`` counted (the speed printed excludes decoding)."""

    def __init__(self, tracker):
        self.tracker, self.seconds = tracker, 0.0

    def initialize(self, frame, box):
        return self.tracker.initialize(frame, box)

    def update_with_box(self, frame, box):
        return self.tracker.update_with_box(frame, box)

    def track(self, frame):
        t0 = time.perf_counter()
        try:
            return self.tracker.track(frame)
        finally:
            self.seconds += time.perf_counter() - t0


def result_texts(document, obj: int, initial, results: dict, project_path: Path) -> dict[str, str]:
    """groundtruth.txt (LaSOT's rule, ``lasot.groundtruth_line``), scores.csv and project.json of one object's
    frames from its first state on."""
    from ..annotation.formats._common import format_number
    from ..annotation.formats.lasot import groundtruth_line
    from ..annotation.project_io import project_text

    states = list(document.states(obj))
    gt = "".join(groundtruth_line(s.box, document.video.size) + "\n" for _, s in states)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["frame", "x", "y", "w", "h", "max_score", "predicted_iou", "status"])
    for i, (frame, state) in enumerate(states):
        result = initial if i == 0 else results.get(frame)
        score = "" if result is None else f"{result.max_score:.4f}"
        iou = "" if result is None or result.iou is None else f"{result.iou:.4f}"
        status = "" if result is None else getattr(result.status, "value", result.status)
        writer.writerow([frame, *(format_number(v) for v in state.box.as_tuple()), score, iou, status])
    return {"groundtruth.txt": gt, "scores.csv": buf.getvalue(), "project.json": project_text(document, project_path)}


def _open(job: TrackJob):
    from ..video import open_video

    try:
        return open_video(job.video)
    except VideoError as exc:
        raise CommandError(str(exc)) from None
    except FileNotFoundError:
        raise CommandError(f"no such file or folder: {job.video}") from None


def track_video(job: TrackJob, args: argparse.Namespace, progress=None) -> TrackOutcome:
    """Track one video, writing its three files as it goes. Raises CommandError for bad input (before any
    tracking, and before anything is written)."""
    from ..annotation import Document, Source
    from ..annotation.video_ref import describe_source
    from ..runs import FAILED, UNREADABLE, RunOptions, TrackerPool, plan_run, run_loop
    from ..trackers import TrackerSpec, make_tracker

    video = _open(job)
    try:
        frames = _frame_range(job.frames, video.num_frames)
        _check_box(job.init, video.width, video.height)
        out = OutputFolder(job.out, getattr(args, "force", False)).open()
    except BaseException:
        video.close()
        raise
    warnings = []
    asked = len(frames)
    reported = getattr(video, "reported_num_frames", 0)
    if job.frames is None and getattr(video, "count_corrected", False) and reported > video.num_frames:
        asked = reported - frames.start
        warnings.append(f"{job.video}: the file says {reported} frames but only {video.num_frames} decode (a "
                        f"truncated file?): frame {video.num_frames} is the first that cannot be read")
    try:
        try:
            tracker = make_tracker(args.tracker, model_path=args.model, preset=args.preset, device=args.device)
        except ModelFileError as exc:
            raise CommandError(str(exc)) from None
        doc = Document(describe_source(video, str(Path(job.video).resolve())))
        obj = doc.add_object(getattr(args, "label", "object"))
        doc.set_box(obj, frames.start, job.init, Source.MANUAL)
        options = RunOptions(tracker=TrackerSpec(args.tracker, args.model, args.preset, args.device))
        spec = plan_run(doc, obj, frames.start, 1, len(frames) - 1, options, run_id=1) if len(frames) > 1 else None
        timed = _TimedTracker(tracker)
        pool = TrackerPool(lambda *a, **k: timed)
        recorder = _Recorder(doc, obj, out, spec, progress)
        t0 = time.perf_counter()
        outcome = None
        try:
            if spec is None:
                recorder.initial = tracker.initialize(video.read(frames.start), job.init)
            else:
                outcome = run_loop(spec, video, pool, recorder.observer)
        finally:
            # Whatever ended the run (the last frame, Ctrl+C, SIGTERM, an error), what was tracked is written.
            recorder.checkpoint()
        elapsed = time.perf_counter() - t0
    finally:
        out.close()
        video.close()
    done = 1 + (outcome.frames if outcome is not None else 0)
    error = None
    if outcome is not None and outcome.reason == UNREADABLE:
        warnings.append(f"{job.video}: {outcome.error}")
    elif outcome is not None and outcome.reason == FAILED:
        error = outcome.error
    if done < asked:
        warnings.append(f"tracked {done} of the {asked} frames asked (frames {frames.start}.."
                        f"{frames.start + done - 1}); what was tracked is written")
    fps = (done - 1) / timed.seconds if done > 1 and timed.seconds > 0 else 0.0
    return TrackOutcome(job.video, done, fps, elapsed, getattr(tracker, "warning", None), error, asked, warnings)


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


def _check_batch_outputs(args: argparse.Namespace, jobs: list[TrackJob]) -> None:
    """Before any tracking: --out is a writable folder, and no video's folder holds results (unless --force)."""
    out = Path(args.out)
    check_writable_folder(out)
    taken = [job.out.name for job in jobs if any((job.out / name).exists() for name in RESULT_FILES)]
    if taken and not args.force:
        raise CommandError(f"{out} already holds tracking results for {', '.join(taken[:5])}"
                           f"{' ...' if len(taken) > 5 else ''}; pass --force to replace them, or choose another "
                           f"--out")


def run_batch(args: argparse.Namespace) -> int:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    listed = read_batch(args.batch)
    names = _unique_names([v for v, _ in listed])
    shard_i, shard_n = _parse_shard(args.shard)
    jobs = [TrackJob(v, b, args.out / name, args.frames)
            for k, ((v, b), name) in enumerate(zip(listed, names)) if k % shard_n == shard_i]
    _check_batch_outputs(args, jobs)
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
    incomplete = [o for o in outcomes if not o.complete]
    for o in outcomes:
        if o.error and not o.frames:
            state = f"FAILED: {o.error}"
        else:
            state = f"{o.frames} of {o.asked} frames, {o.fps:.1f} frames/s"
            if o.error:
                state += f"; FAILED: {o.error}"
            for warning in o.warnings:
                state += f"; warning: {warning}"
        print(f"{o.video}: {state}")
    print(f"{len(outcomes) - len(incomplete)} of {len(outcomes)} videos tracked in full; results in {args.out}")
    return 1 if incomplete else 0


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


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
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # stop like Ctrl+C: the frames so far are written
    try:
        outcome = track_video(TrackJob(args.video, init, args.out, args.frames), args, progress=bar.update)
    except (KeyboardInterrupt, Terminated) as exc:
        bar.close()
        print("atom track: interrupted; what was tracked so far is written", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except OSError as exc:  # a write failed (a full disk): the files of the last complete write stay
        bar.close()
        print(f"atom track: error: cannot write the results in {args.out}: {exc.strerror or exc}; the files there "
              f"are those of the last complete write", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    if outcome.warning:
        print(f"atom track: warning: {outcome.warning}", file=sys.stderr)
    for warning in outcome.warnings:
        print(f"atom track: warning: {warning}", file=sys.stderr)
    if outcome.error:
        print(f"atom track: error: tracking stopped by {outcome.error}", file=sys.stderr)
    print(f"tracked {outcome.frames} frames with {args.tracker} in {outcome.total_s:.1f} s "
          f"({outcome.fps:.1f} frames/s tracking, {outcome.frames / max(outcome.total_s, 1e-9):.1f} with decoding); "
          f"results in {args.out}")
    return 0 if outcome.complete else 1
