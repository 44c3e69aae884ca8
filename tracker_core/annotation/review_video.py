"""A review video: every frame with each object's box drawn in the colour of its state, written as H.264.

Colours follow the app: manual keyframes green, tracked boxes blue (orange when uncertain or hard negative,
red when not found or the confidence is low), interpolated boxes purple; occluded boxes are dashed, stale boxes
(an earlier run's, left behind by a correction) grey and dashed, and
out-of-view frames show the label crossed out in the corner.  OpenCV cannot write H.264, so frames go to
imageio-ffmpeg's bundled ffmpeg (libx264, yuv420p: plays everywhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..atomic_files import atomic_files
from ..errors import AtomError
from .frame_state import FrameState, Source

# BGR-free: colours are RGB because frames are RGB.
COLOURS = {
    "manual": (40, 200, 80),
    "tracked": (60, 140, 255),
    "uncertain": (255, 165, 0),
    "lost": (230, 40, 40),
    "interpolated": (170, 90, 220),
    "stale": (150, 150, 150),
}


def state_colour(state: FrameState, min_score: float = 0.25, min_iou: float = 0.5) -> tuple[int, int, int]:
    if state.source is Source.MANUAL:
        return COLOURS["manual"]
    if state.stale:
        return COLOURS["stale"]
    if state.source is Source.INTERPOLATED:
        return COLOURS["interpolated"]
    if state.status == "not_found" or (state.score is not None and state.score < min_score):
        return COLOURS["lost"]
    if state.status in ("uncertain", "hard_negative") or (state.iou is not None and state.iou < min_iou):
        return COLOURS["uncertain"]
    return COLOURS["tracked"]


def _dashed_rect(img, p1, p2, colour, thickness=2, dash=8):
    x1, y1 = p1
    x2, y2 = p2
    for xa in range(x1, x2, 2 * dash):
        cv2.line(img, (xa, y1), (min(xa + dash, x2), y1), colour, thickness)
        cv2.line(img, (xa, y2), (min(xa + dash, x2), y2), colour, thickness)
    for ya in range(y1, y2, 2 * dash):
        cv2.line(img, (x1, ya), (x1, min(ya + dash, y2)), colour, thickness)
        cv2.line(img, (x2, ya), (x2, min(ya + dash, y2)), colour, thickness)


def draw_frame(frame: np.ndarray, document, frame_index: int, obj_ids=None) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame with the document's boxes for ``frame_index`` drawn on a copy."""
    img = np.ascontiguousarray(frame).copy()
    scale = max(img.shape[0] / 480.0, 0.6)
    thick = max(int(round(2 * scale)), 2)  # 1-px lines lose their colour to 4:2:0 chroma subsampling
    corner_y = int(22 * scale)
    for obj in document.objects():
        if obj_ids is not None and obj.id not in obj_ids:
            continue
        state = obj.states.get(frame_index)
        if state is None:
            continue
        label = obj.label or f"#{obj.id}"
        if state.out_of_view:
            cv2.putText(img, f"{label}: out of view", (8, corner_y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                        COLOURS["lost"], thick, cv2.LINE_AA)
            corner_y += int(20 * scale)
            continue
        if state.box is None:
            continue
        colour = state_colour(state)
        x, y, w, h = state.box
        p1 = (int(round(x)), int(round(y)))  # OpenCV's integer pixel corners, at the edge
        p2 = (int(round(x + w)) - 1, int(round(y + h)) - 1)
        if state.occluded or state.stale:
            _dashed_rect(img, p1, p2, colour, thick)
        else:
            cv2.rectangle(img, p1, p2, colour, thick)
        text = label
        if state.stale:
            text += " stale"
        elif state.source is Source.TRACKED and state.iou is not None:
            text += f" {state.iou:.2f}"
        cv2.putText(img, text, (p1[0], max(p1[1] - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, colour, thick,
                    cv2.LINE_AA)
    cv2.putText(img, str(frame_index), (img.shape[1] - int(70 * scale), int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                0.55 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


def export_review_video(document, video_source, out_path: str | os.PathLike, obj_ids=None, fps: float | None = None,
                        first: int = 0, last: int | None = None, progress=None) -> Path:
    """Write frames ``first..last`` (inclusive) with boxes drawn to an H.264 .mp4 (atomically: temp file, rename)."""
    import imageio_ffmpeg

    out_path = Path(out_path)
    last = video_source.num_frames - 1 if last is None else last
    fps = fps or getattr(video_source, "fps", None) or 25.0
    w, h = video_source.width, video_source.height
    # libx264 with yuv420p needs even sizes: pad by one pixel where needed.
    pw, ph = w + (w % 2), h + (h % 2)
    try:
        with atomic_files(make_folders=True) as files:  # the folder is made (and removed again on failure)
            tmp = files.path(out_path)
            writer = imageio_ffmpeg.write_frames(str(tmp), (pw, ph), fps=fps, codec="libx264",
                                                 pix_fmt_out="yuv420p", macro_block_size=1, quality=7,
                                                 ffmpeg_log_level="error")
            writer.send(None)
            try:
                for i in range(first, last + 1):
                    img = draw_frame(video_source.read(i), document, i, obj_ids)
                    if (pw, ph) != (w, h):
                        img = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
                    writer.send(np.ascontiguousarray(img))
                    if progress is not None:
                        progress(1)
            finally:
                writer.close()
    except AtomError:
        raise
    except Exception as exc:
        # One line: imageio-ffmpeg's messages go on with the whole ffmpeg command and its output.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else next(iter(str(exc).splitlines()), "")
        raise AtomError(f"cannot write the review video {out_path}: {why or type(exc).__name__}") from exc
    return out_path
