"""The Qt-free annotation document, its project file, and the import/export formats.

- :mod:`.document`: :class:`Document` (objects with sparse per-frame states, events, undo snapshots)
- :mod:`.project_io`: the versioned JSON project file, atomic saves, autosave and crash recovery
- :mod:`.formats`: LaSOT, GOT-10k, OTB, TrackingNet, MOT, CVAT for video 1.1 and the project JSON
"""

from .document import Document, ReplacePolicy, TrackedObject
from .events import ChangeEvent, ChangeKind
from .frame_state import Flag, FrameState, Source
from .snapshot import Snapshot
from .spans import DEFAULT_MIN_IOU, DEFAULT_MIN_SCORE, Span, SpanKind
from .video_ref import VideoRef

__all__ = [
    "ChangeEvent",
    "ChangeKind",
    "DEFAULT_MIN_IOU",
    "DEFAULT_MIN_SCORE",
    "Document",
    "Flag",
    "FrameState",
    "ReplacePolicy",
    "Snapshot",
    "Span",
    "SpanKind",
    "Source",
    "TrackedObject",
    "VideoRef",
]
