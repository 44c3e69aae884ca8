"""``atom export``: write a project's annotations in a benchmark or tool format.

    atom export clip.json --format lasot --out exported/ [--object 1 --object 3] [--missing absent] [--frames]

Formats: lasot, got10k, otb, trackingnet, vot, mot, cvat (CVAT for video 1.1), json (our project file), review
(an H.264 video with the boxes drawn; OUT may name the .mp4). Dense
formats (lasot, got10k, otb, trackingnet, vot) need a box or a flag in every frame: ``--missing absent`` writes
the frames that have neither as out of view. ``--frames`` also writes the video's frames as JPEGs where the
format has them (LaSOT img/, GOT-10k, OTB img/, TrackingNet frames/, VOT color/, MOT img1/). Stale boxes (an
earlier run's, left behind by a correction) are left out unless ``--keep-stale``. Every file of an export is
written, or none (a full disk leaves nothing half-written).
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from ..annotation.formats import FORMATS
from ..errors import AtomError, CommandError

# every annotation format, plus the review video (export only)
FORMAT_CHOICES = (*FORMATS, "review")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a project to LaSOT, GOT-10k, OTB, TrackingNet, VOT, MOT, "
                                             "CVAT or project JSON",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("project", metavar="PROJECT", help="the project file (.json)")
    p.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="output format")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--object", type=int, action="append", metavar="ID", dest="objects",
                   help="export only this object id (repeatable; default: every object)")
    p.add_argument("--missing", choices=("error", "absent"), default="error",
                   help="dense formats: frames with neither box nor flag are an error (default) or absent")
    p.add_argument("--frames", action="store_true", help="also write the video frames as JPEG files")
    p.add_argument("--name", help="the sequence's name (default: the video's; a frame folder named img, color or "
                                  "img1 is named after the folder holding it)")
    p.add_argument("--keep-stale", action="store_true",
                   help="export stale boxes (an earlier run's, left behind by a correction) as tracked boxes")
    p.add_argument("--origin", type=int, choices=(0, 1), default=None,
                   help="mot: the box corner's origin, 1 (MOTChallenge, default) or 0 (CVAT, Datumaro)")
    p.add_argument("--mot-classes", choices=("mot", "labels"), default=None,
                   help="mot: the class column holds MOTChallenge's class table (default) or indexes labels.txt")
    p.set_defaults(func=run)
    return p


def _options(function, wanted: dict) -> dict:
    """The options the format's export accepts (``missing`` means nothing to MOT or CVAT, for instance)."""
    accepted = inspect.signature(function).parameters
    return {k: v for k, v in wanted.items() if k in accepted}


def run(args) -> int:
    from ..annotation.formats import IncompleteAnnotationError, get_format
    from ..annotation.project_io import load_project

    try:
        document = load_project(args.project)
    except AtomError as exc:
        raise CommandError(str(exc)) from None
    if args.format == "review":
        return _export_review(document, args)
    module = get_format(args.format)
    unknown = [i for i in (args.objects or []) if i not in document]
    if unknown:
        raise CommandError(f"no object with id {', '.join(map(str, unknown))} in {args.project} "
                           f"(ids: {', '.join(map(str, document.object_ids)) or 'none'})")
    if args.keep_stale:
        for obj_id in document.object_ids:
            document.keep_stale(obj_id)
    wanted = {"missing": args.missing}
    for option, key in (("name", "name"), ("origin", "origin"), ("mot_classes", "classes")):
        value = getattr(args, option)
        if value is None:
            continue
        if key not in inspect.signature(module.export).parameters:
            raise CommandError(f"--{option.replace('_', '-')}: the {args.format} format has no such option")
        wanted[key] = value
    video = None
    if args.frames:
        if "video_source" not in inspect.signature(module.export).parameters:
            raise CommandError(f"--frames: the {args.format} format has no frame images")
        if not document.video.path:
            raise CommandError("--frames: the project has no video path")
        from ..video import open_video

        try:
            video = open_video(document.video.path)
        except AtomError as exc:
            raise CommandError(f"--frames: {exc}") from None
        wanted["video_source"] = video
    try:
        paths = module.export(document, args.objects, Path(args.out), **_options(module.export, wanted))
    except IncompleteAnnotationError as exc:
        raise CommandError(f"{exc} (--missing absent)") from None
    except AtomError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    finally:
        if video is not None:
            video.close()
    for path in paths:
        print(path)
    return 0


def _export_review(document, args) -> int:
    """``--format review``: an H.264 video with every box drawn in its state's colour (OUT may be a .mp4 path)."""
    from ..annotation.review_video import export_review_video
    from ..video import open_video

    if not document.video.path:
        raise CommandError("the project has no video path to draw on")
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        out = out / f"{document.video.name or 'review'}_review.mp4"
    try:
        with open_video(document.video.path) as video:
            path = export_review_video(document, video, out, obj_ids=args.objects)
    except AtomError as exc:
        raise CommandError(str(exc)) from None
    print(path)
    return 0
