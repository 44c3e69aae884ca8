"""Speed of a tracker: frames per second with and without decoding, per-stage time, peak memory, and the
backbone-only bound measured in the same process.

Each tracker is measured in its own fresh child process, one after the other (never in parallel: trackers
running side by side would share the cores and slow each other down).  A fresh process also makes the peak
memory that tracker's own.

- ``fps``: tracked frames / seconds spent in ``track()``; the first ``warmup`` tracked frames (allocation,
  cuDNN autotuning) and every ``initialize()`` are left out.  On CUDA the device is synchronised after each
  frame, so queued GPU work is not mistaken for speed.
- ``fps_with_decode``: the same frames over the time of reading (decoding) them plus tracking them.
- ``stages_ms``: mean of ``TrackResult.timings`` per stage over the timed frames (empty for trackers without).
- ``backbone_fps``: forward passes per second of the backbone alone on one crop (288 x 288 by default): the
  physical limit of a tracker that runs the backbone once per frame.  The tracker's own ``backbone_only_fps()``
  is used when it has one; otherwise ``tracker.model.backbone`` is timed directly; null for trackers without
  a backbone (OpenCV).
- ``init_ms``: wall time of the first ``initialize()`` (first-frame learning: for ATOM the augmented crops, their
  backbone passes and the joint Gauss-Newton optimisation), the first call in a fresh process as a user meets it;
  ``init_ms_warm``: the same initialisation repeated after the timed frames; ``init_stages_ms``: the first one's
  stages.
- ``peak_mem_mb``: on CUDA the peak GPU memory allocated by torch; on CPU the process's peak resident set size
  (which includes the Python interpreter and libraries, about 300-400 MB with torch loaded).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ..boxes import Box
from ..trackers import TrackerSpec, build_tracker
from .parallel import limit_threads


@dataclass
class SpeedTask:
    label: str
    spec: TrackerSpec
    frames: int  # frames to time (after warm-up)
    warmup: int
    threads: int | None
    video: str | None = None
    box: tuple | None = None  # initial box for --video
    sequences: list | None = None  # datasets.Sequence, used in order until enough frames


def _segments(task: SpeedTask):
    """Yield (init_box, frame reader generator) pieces until enough frames were produced."""
    if task.video is not None:
        from ..video import open_video

        src = open_video(task.video)
        yield Box.from_seq(task.box), (src.read(i) for i in range(src.num_frames))
        return
    from ..datasets import read_frame

    for seq in task.sequences or []:
        init = Box.from_seq(seq.gt[0])
        if init.is_valid():
            yield init, (read_frame(p) for p in seq.frames)


def _cuda_sync_fn():
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.synchronize
    return lambda: None


def _torch_module_device(module):
    try:
        return next(module.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        return None


def tracker_device(tracker, spec: TrackerSpec) -> str:
    """Where the tracker really runs: its model's device, else 'cpu' (OpenCV trackers)."""
    dev = getattr(tracker, "device", None)
    if dev is None:
        model = getattr(tracker, "model", None)
        for mod in (getattr(model, "backbone", None), model):
            dev = _torch_module_device(mod) if mod is not None else None
            if dev is not None:
                break
    dev = str(dev) if dev is not None else "cpu"
    if dev.startswith("cuda"):
        try:
            import torch

            return f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
        except Exception:  # noqa: BLE001 - the name is decoration only
            return dev
    return dev


def backbone_fps(tracker, crop: int | None = None, min_seconds: float = 1.0, max_reps: int = 200) -> float | None:
    """Backbone-only forward passes per second (see the module docstring); None without a backbone."""
    hook = getattr(tracker, "backbone_only_fps", None)
    if callable(hook):
        value = hook()
        return None if value is None else float(value)
    model = getattr(tracker, "model", None)
    backbone = getattr(model, "backbone", None)
    import torch

    if not isinstance(backbone, torch.nn.Module):
        return None
    if crop is None:
        # The tracker's crop side: AtomTracker.out_size (= config.sample.image_sample_size), else ATOM's 288.
        size = getattr(tracker, "out_size", None)
        if size is None:
            size = getattr(getattr(getattr(tracker, "config", None), "sample", None), "image_sample_size", 288)
        crop = int(size[0] if isinstance(size, (tuple, list)) else size)
    device = _torch_module_device(backbone) or torch.device("cpu")
    x = torch.rand(1, 3, crop, crop, device=device) * 255.0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(3):
            backbone(x)
        sync()
        reps, t0 = 0, time.perf_counter()
        while reps < max_reps and (reps < 5 or time.perf_counter() - t0 < min_seconds):
            backbone(x)
            reps += 1
        sync()
        elapsed = time.perf_counter() - t0
    return reps / elapsed if elapsed > 0 else None


def peak_memory_mb(device: str) -> float | None:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def run_speed_task(task: SpeedTask) -> dict:
    """Measure one tracker (runs in a fresh child process)."""
    limit_threads(task.threads)
    tracker = build_tracker(task.spec)
    sync = _cuda_sync_fn()
    tracked = timed = 0
    track_s = decode_s = 0.0
    stages: dict[str, list[float]] = {}
    init_ms = None  # of the first initialize() only: the one a user waits for
    init_stages: dict = {}
    first_segment = None
    for init, frames in _segments(task):
        first = next(frames, None)
        if first is None:
            continue
        t0 = time.perf_counter()
        started = tracker.initialize(first, init)
        sync = _cuda_sync_fn()  # CUDA may only be initialised by the first initialize()
        sync()
        if first_segment is None:
            init_ms = (time.perf_counter() - t0) * 1000.0
            first_segment = (first, init)
            init_stages = dict(getattr(started, "timings", None) or {})
        while timed < task.frames:
            t0 = time.perf_counter()
            frame = next(frames, None)
            t1 = time.perf_counter()
            if frame is None:
                break
            result = tracker.track(frame)
            sync()
            t2 = time.perf_counter()
            tracked += 1
            if tracked <= task.warmup:
                continue
            timed += 1
            decode_s += t1 - t0
            track_s += t2 - t1
            for k, v in (getattr(result, "timings", None) or {}).items():
                stages.setdefault(k, []).append(float(v))
        if timed >= task.frames:
            break
    if timed == 0:
        raise ValueError(f"no frame was timed (only {tracked} frames after {task.warmup} warm-up frames)")
    init_warm = None
    if first_segment is not None:  # the first frame learnt again, now that every first call has happened
        t0 = time.perf_counter()
        tracker.initialize(*first_segment)
        sync()
        init_warm = (time.perf_counter() - t0) * 1000.0
    device = tracker_device(tracker, task.spec)
    return {
        "fps": timed / track_s if track_s > 0 else None,
        "fps_with_decode": timed / (track_s + decode_s) if track_s + decode_s > 0 else None,
        "backbone_fps": backbone_fps(tracker),
        "stages_ms": {k: float(np.mean(v)) for k, v in stages.items()},
        "init_ms": init_ms,
        "init_ms_warm": init_warm,
        "init_stages_ms": {k: float(v) for k, v in init_stages.items()},
        "peak_mem_mb": peak_memory_mb(device),
        "device": device,
        "frames": timed,
        "threads": _torch_threads(),
    }


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())
