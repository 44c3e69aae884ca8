"""CVAT for video 1.1: ``annotations.xml`` with one ``<track>`` of ``<box>`` shapes per object.

A box: ``<box frame="12" keyframe="1" outside="0" occluded="0" xtl=".." ytl=".." xbr=".." ybr=".." z_order="0">``
in 0-based frames and continuous corner coordinates (two decimals, as CVAT writes them). CVAT interpolates
between keyframes, and ``outside="1"`` ends the object's presence until the next keyframe.

Export: manual and tracked boxes are keyframes (CVAT could not reproduce tracked boxes by interpolation);
interpolated boxes are written with ``keyframe="0"``; out-of-view frames are ``outside="1"`` keyframes; a track
that ends before the video does gets a final ``outside="1"`` keyframe, as CVAT writes it. Each box also carries
a mutable ``atom_source`` attribute (declared in the labels) holding our source, so that a project sent through
CVAT comes back with its tracked frames still tracked rather than turned into keyframes.

Import keeps the file sparse: only the frames it lists get states. Keyframes become manual (or their
``atom_source``), CVAT's interpolated frames (``keyframe="0"``) come back as interpolated, never as manual.
``outside="1"`` becomes an out-of-view frame; CVAT's own box there is meaningless and dropped, while a box our
export tagged with its source (a box kept under an out-of-view flag) comes back. Frame numbers are the video's
own (CVAT writes absolute numbers for a task that starts at ``start_frame`` with a ``step``): they are bounded
by ``<stop_frame>``, not by ``<size>``.

Boxes are written unclipped (CVAT keeps shapes that reach past the image), with two decimals and at least
0.01 px wide and high. Stale boxes are not written; where a track has a gap (no state, or a stale box), an
``outside="1"`` keyframe tagged ``end`` stops CVAT from carrying the previous box on over it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...atomic_files import atomic_files
from ...boxes import Box
from ..document import Document
from ..frame_state import FrameState, Source
from ..video_ref import VideoRef
from ._common import (
    ParsedObject,
    apply_parsed,
    check_frame,
    checked_box,
    decode_text,
    fail,
    parse_int,
    parse_number,
    select_objects,
    target_limit,
)
from .xml_tree import Element, escape_attribute, escape_text, parse_xml

NAME = "cvat"
SOURCE_ATTRIBUTE = "atom_source"
NO_BOX = "none"  # atom_source of a flag-only frame: CVAT needs coordinates, we had none
TRACK_END = "end"  # atom_source of the final outside keyframe that only marks where the track stops
SOURCES = {s.value for s in Source}
SHAPE_TAGS = {"box", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton", "tag"}


def _label_xml(labels: list[str], source_attribute: bool) -> str:
    out = ["      <labels>\n"]
    for label in labels:
        out.append(f"        <label>\n          <name>{escape_text(label)}</name>\n          <attributes>\n")
        if source_attribute:
            values = "\n".join([s.value for s in Source] + [NO_BOX, TRACK_END])
            out.append(f"            <attribute>\n              <name>{SOURCE_ATTRIBUTE}</name>\n"
                       "              <mutable>True</mutable>\n              <input_type>select</input_type>\n"
                       f"              <default_value>{Source.MANUAL.value}</default_value>\n"
                       f"              <values>{values}</values>\n            </attribute>\n")
        out.append("          </attributes>\n        </label>\n")
    out.append("      </labels>\n")
    return "".join(out)


def _corners(box: Box) -> tuple[str, str, str, str]:
    """xtl, ytl, xbr, ybr with two decimals; a box narrower than 0.01 px keeps a 0.01 px size (CVAT needs
    xbr > xtl). An empty box (the placeholder of a frame with no box) stays empty."""
    x1, y1 = round(box.x, 2), round(box.y, 2)
    x2, y2 = round(box.x + box.w, 2), round(box.y + box.h, 2)
    if box.w > 0:
        x2 = max(x2, x1 + 0.01)
    if box.h > 0:
        y2 = max(y2, y1 + 0.01)
    return tuple(f"{v:.2f}" for v in (x1, y1, x2, y2))


def _box_xml(frame: int, box: Box, keyframe: bool, outside: bool, occluded: bool, tag: str | None) -> str:
    xtl, ytl, xbr, ybr = _corners(box)
    attrs = (f'frame="{frame}" keyframe="{int(keyframe)}" outside="{int(outside)}" occluded="{int(occluded)}" '
             f'xtl="{xtl}" ytl="{ytl}" xbr="{xbr}" ybr="{ybr}" z_order="0"')
    if tag is None:
        return f"    <box {attrs}>\n    </box>\n"
    return (f'    <box {attrs}>\n      <attribute name="{SOURCE_ATTRIBUTE}">{tag}</attribute>\n'
            "    </box>\n")


def _track_xml(document: Document, obj_id: int, track_id: int, source_attribute: bool) -> str:
    obj = document.object(obj_id)
    # A stale box is left out (no box there); a frame with neither a box nor a flag writes nothing.
    states = [(f, s, s.exported_box) for f, s in document.states(obj_id)]
    states = [(f, s, box) for f, s, box in states if box is not None or s.flagged]
    boxes = [(f, box) for f, _, box in states if box is not None]
    out = [f'  <track id="{track_id}" label="{escape_attribute(obj.label)}" source="manual">\n']
    last_box, written_last, last_frame = None, None, None

    def end_marker(frame: int) -> str:
        """CVAT carries a shape on to the next keyframe: an outside keyframe stops it where ours stops."""
        return _box_xml(frame, last_box or Box(0, 0, 0, 0), True, True, False, TRACK_END if source_attribute else None)

    for frame, state, box in states:
        if written_last is not None and not written_last.out_of_view and frame > last_frame + 1:
            out.append(end_marker(last_frame + 1))  # a gap (no state, or a stale box) inside the track
        shown = box or last_box or next((b for f, b in boxes if f > frame), None) or Box(0, 0, 0, 0)
        tag = state.source.value if box is not None else NO_BOX
        keyframe = state.out_of_view or state.source is not Source.INTERPOLATED
        out.append(_box_xml(frame, shown, keyframe, state.out_of_view, state.occluded,
                            tag if source_attribute else None))
        if box is not None:
            last_box = box
        written_last, last_frame = state, frame
    if written_last is not None and not written_last.out_of_view:
        end = last_frame + 1
        if document.num_frames and end < document.num_frames:  # unknown length: the track ends the video
            out.append(end_marker(end))
    out.append("  </track>\n")
    return "".join(out)


def export(document: Document, obj_ids: Iterable[int] | None, out_dir: str | Path, *,
           filename: str = "annotations.xml", source_attribute: bool = True, name: str | None = None) -> list[Path]:
    """Write ``out_dir/annotations.xml`` with one track per object; returns ``[that file]``. ``name``: the
    task's name (default: the video's)."""
    ids = select_objects(document, obj_ids)
    video = document.video
    labels: list[str] = []
    for obj_id in ids:
        if document.object(obj_id).label not in labels:
            labels.append(document.object(obj_id).label)
    size = video.num_frames or max((document.frames(o)[-1] + 1 for o in ids if document.frames(o)), default=0)
    head = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n'
            f"    <task>\n      <id>0</id>\n      <name>{escape_text(name or video.name or 'atom')}</name>\n"
            f"      <size>{size}</size>\n      <mode>interpolation</mode>\n      <overlap>0</overlap>\n"
            f"      <start_frame>0</start_frame>\n      <stop_frame>{max(size - 1, 0)}</stop_frame>\n"
            "      <frame_filter></frame_filter>\n", _label_xml(labels, source_attribute)]
    if video.size is not None:
        head.append(f"      <original_size>\n        <width>{video.width}</width>\n"
                    f"        <height>{video.height}</height>\n      </original_size>\n")
    head.append("    </task>\n")
    if video.path:
        head.append(f"    <source>{escape_text(Path(video.path).name)}</source>\n")
    head.append("  </meta>\n")
    tracks = [_track_xml(document, obj_id, k, source_attribute) for k, obj_id in enumerate(ids)]
    with atomic_files(make_folders=True) as files:
        path = files.write_text(Path(out_dir) / filename, "".join(head + tracks) + "</annotations>\n")
    return [path]


# ---- import -----------------------------------------------------------------------------------------------

def _flag(element: Element, key: str, default: str, name: Path) -> bool:
    value = element.attrib.get(key, default)
    if value not in ("0", "1"):
        raise fail(name, element.line, f'{key}: expected "0" or "1", got {value[:20]!r}')
    return value == "1"


def _number(element: Element, key: str, name: Path) -> float:
    if key not in element.attrib:
        raise fail(name, element.line, f"<{element.tag}> needs the attribute {key}")
    return parse_number(element.attrib[key].strip(), name, element.line, f"a number for {key}")


def _file_video(root: Element, name: Path) -> VideoRef | None:
    meta = root.find("meta")
    task = None if meta is None else (meta.find("task") or meta.find("job"))
    if task is None:
        return None
    size = task.findtext("size")
    num_frames = 0
    if size:
        num_frames = parse_int(size, name, task.find("size").line, "a frame count for <size>", minimum=0)
    stop = task.findtext("stop_frame")
    if stop:
        # Frame numbers are the video's (absolute): a task from frame 10 with a step of 3 has <size> frames, but
        # numbers up to <stop_frame>.
        stop_frame = parse_int(stop, name, task.find("stop_frame").line, "a frame number for <stop_frame>", 0)
        num_frames = max(num_frames, stop_frame + 1)
    width, height = task.findtext("original_size/width"), task.findtext("original_size/height")
    if width and height:
        node = task.find("original_size")
        w = parse_int(width, name, node.line, "a width", minimum=1)
        h = parse_int(height, name, node.line, "a height", minimum=1)
        return VideoRef(None, num_frames, None, w, h)
    return VideoRef(None, num_frames)


def _parse_track(track: Element, name: Path, limit: int, source: Source) -> ParsedObject | None:
    label = track.attrib.get("label")
    if label is None:
        raise fail(name, track.line, "<track> needs a label attribute")
    track_id = None
    if "id" in track.attrib:
        track_id = parse_int(track.attrib["id"].strip(), name, track.line, "a track id", minimum=0)
    shapes = [c for c in track.children if c.tag in SHAPE_TAGS]
    if any(c.tag != "box" for c in shapes):
        return None  # polygons, points...: not something a box tracker can hold
    obj = ParsedObject(label, preferred_id=None if track_id is None else track_id + 1)
    for box in shapes:
        frame = parse_int(box.attrib.get("frame", "").strip(), name, box.line, "a frame number", minimum=0)
        check_frame(frame, limit, name, box.line)
        if frame in obj.states:
            raise fail(name, box.line, f"track {track_id} has a second box for frame {frame}")
        outside = _flag(box, "outside", "0", name)
        occluded = _flag(box, "occluded", "0", name)
        keyframe = _flag(box, "keyframe", "1", name)
        x1, y1, x2, y2 = (_number(box, key, name) for key in ("xtl", "ytl", "xbr", "ybr"))
        tag = next((a.text.strip() for a in box.findall("attribute") if a.attrib.get("name") == SOURCE_ATTRIBUTE),
                   None)
        if outside:
            if tag in SOURCES and x2 > x1 and y2 > y1:  # our own export: the box kept under the flag
                box_ = checked_box(Box(x1, y1, x2 - x1, y2 - y1), name, box.line)
                obj.states[frame] = FrameState(box_, Source(tag), occluded=occluded, out_of_view=True)
            elif tag != TRACK_END:
                obj.states[frame] = FrameState(occluded=occluded, out_of_view=True)
            continue
        if tag == NO_BOX:
            obj.states[frame] = FrameState(occluded=occluded)
            continue
        if not (x2 > x1 and y2 > y1):
            raise fail(name, box.line, f"the box needs xbr > xtl and ybr > ytl, got ({x1:g},{y1:g})-({x2:g},{y2:g})")
        if not keyframe:
            this_source = Source.INTERPOLATED
        elif tag in SOURCES:
            this_source = Source(tag)
        else:
            this_source = Source(source)
        box_ = checked_box(Box(x1, y1, x2 - x1, y2 - y1), name, box.line)
        obj.states[frame] = FrameState(box_, this_source, occluded=occluded)
    return obj


def parse(path: str | Path, *, limit: int = 0, source: Source = Source.MANUAL
          ) -> tuple[list[ParsedObject], VideoRef | None]:
    """Parse a CVAT for video 1.1 file: the box tracks (other shape types are skipped) and the task's size."""
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.xml"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(path, None, f"cannot read the file ({exc.strerror or exc})") from None
    if not data.lstrip().startswith(b"<"):
        decode_text(data, path)  # a clearer message for a non-XML text file than expat's
    root = parse_xml(data, path)
    if root.tag != "annotations":
        raise fail(path, root.line, f"expected <annotations> (CVAT for video 1.1), found <{root.tag[:40]}>")
    version = root.findtext("version")
    if version is not None and version not in ("1.0", "1.1"):
        raise fail(path, root.find("version").line, f"CVAT format version {version[:20]!r}; expected 1.1")
    tracks = root.findall("track")
    if not tracks and root.findall("image"):
        raise fail(path, root.findall("image")[0].line,
                   "this is CVAT for images; export the task as 'CVAT for video 1.1' to keep the tracks")
    file_video = _file_video(root, path)
    if not limit and file_video is not None:
        limit = file_video.num_frames
    objects = [obj for t in tracks if (obj := _parse_track(t, path, limit, source)) is not None]
    return objects, file_video


def import_(path: str | Path, *, video: VideoRef | None = None, document: Document | None = None,
            source: Source = Source.MANUAL) -> Document:
    """Import the box tracks of a CVAT for video 1.1 file (or a folder holding annotations.xml)."""
    parsed, file_video = parse(path, limit=target_limit(video, document), source=source)
    return apply_parsed(parsed, video, document, file_video)
