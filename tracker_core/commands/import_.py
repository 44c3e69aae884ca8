"""``atom import``: turn an annotation file into a project.

    atom import LaSOT/airplane/airplane-1 --format lasot --video LaSOT/airplane/airplane-1/img --out a1.json
    atom import annotations.xml --format cvat --video clip.mp4 --out clip.json

Formats: lasot, got10k, otb, trackingnet, vot (a sequence folder or its groundtruth file), mot (gt.txt or the
sequence folder), cvat (annotations.xml), json. Imported absent frames become out-of-view flags; CVAT's
interpolated frames stay interpolated. ``--source tracked`` imports boxes as tracker output (so that re-tracking
may replace them) instead of manual keyframes. An existing project is never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from ..annotation.formats import FORMATS
from ..errors import AtomError, CommandError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("import", help="make a project from LaSOT, GOT-10k, OTB, TrackingNet, VOT, MOT, "
                                             "CVAT or project JSON annotations",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("file", metavar="FILE", help="the annotation file or sequence folder")
    p.add_argument("--format", required=True, choices=tuple(FORMATS), help="input format")
    p.add_argument("--video", metavar="V", help="the video file or frame folder the annotations belong to")
    p.add_argument("--out", required=True, metavar="PROJECT", help="the project file to write (.json)")
    p.add_argument("--source", choices=("manual", "tracked"), default="manual",
                   help="what imported keyframes become (default manual)")
    p.add_argument("--first-frame", type=int, default=0, metavar="N",
                   help="dense formats: the video frame (0-based) of the file's first line (default 0)")
    p.add_argument("--origin", type=int, choices=(0, 1), default=None,
                   help="mot: the box corner's origin, 1 (MOTChallenge, default) or 0 (files from CVAT, Datumaro)")
    p.add_argument("--force", action="store_true", help="overwrite PROJECT if it exists")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..annotation.formats import get_format
    from ..annotation.frame_state import Source
    from ..annotation.project_io import save_project
    from ..annotation.video_ref import probe_video

    out = Path(args.out)
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists; pass --force to overwrite it")
    if not Path(args.file).exists():
        raise CommandError(f"{args.file}: no such file or folder")
    if args.first_frame < 0:
        raise CommandError("--first-frame must be 0 or more")
    module = get_format(args.format)
    accepted = inspect.signature(module.import_).parameters
    options = {}
    if "source" in accepted:
        options["source"] = Source(args.source)
    if args.first_frame:
        if "first_frame" not in accepted:
            raise CommandError(f"--first-frame: {args.format} files number their frames themselves")
        options["first_frame"] = args.first_frame
    if args.origin is not None:
        if "origin" not in accepted:
            raise CommandError(f"--origin: the {args.format} format has no such option")
        options["origin"] = args.origin
    video = None
    if args.video:
        try:
            video = probe_video(args.video)
        except AtomError as exc:
            raise CommandError(str(exc)) from None
    try:
        document = module.import_(Path(args.file), video=video, **options)
    except AtomError as exc:
        raise CommandError(str(exc)) from None
    try:
        save_project(document, out)
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
    labels = ", ".join(f"{o.id}:{o.label}" for o in document.objects()) or "none"
    print(f"{out}: {len(document.object_ids)} object(s) ({labels}), {document.num_frames} frames")
    return 0
