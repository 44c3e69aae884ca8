"""The timeline: a state strip over the frames, a slider, transport buttons and a frame-number box.

The strip shows, per frame, where each box came from and how sure the tracker was: manual keyframes, tracked
spans coloured by status, interpolated spans, stale spans (an earlier run's boxes past a correction), occluded and
out-of-view spans, and a thin row of low-confidence
marks under it. On a long video many frames share a pixel column; the column shows the most important state
among them, so one lost frame in a thousand stays visible.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget

from tracker_core.annotation import DEFAULT_MIN_IOU, DEFAULT_MIN_SCORE
from tracker_core.result import Status

from . import palette
from .annotation_model import (
    FLAG_OCCLUDED,
    FLAG_OUT_OF_VIEW,
    SOURCE_INTERPOLATED,
    SOURCE_MANUAL,
    SOURCE_TRACKED,
    STATUS_CODE,
    TrackArrays,
)

# Strip codes, in increasing importance (a column covering several frames shows the highest).
EMPTY, TRACKED, INTERPOLATED, MANUAL, UNCERTAIN, HARD_NEGATIVE, NOT_FOUND, STALE, OCCLUDED, OUT_OF_VIEW = range(10)
CODE_COLORS = {
    EMPTY: palette.EMPTY_COLOR,
    TRACKED: palette.STATUS_COLORS[Status.NORMAL],
    INTERPOLATED: palette.INTERPOLATED_COLOR,
    MANUAL: palette.MANUAL_COLOR,
    UNCERTAIN: palette.STATUS_COLORS[Status.UNCERTAIN],
    HARD_NEGATIVE: palette.STATUS_COLORS[Status.HARD_NEGATIVE],
    NOT_FOUND: palette.STATUS_COLORS[Status.NOT_FOUND],
    STALE: palette.STALE_COLOR,
    OCCLUDED: palette.OCCLUDED_COLOR,
    OUT_OF_VIEW: palette.OUT_OF_VIEW_COLOR,
}
CODE_NAMES = {EMPTY: "no box", TRACKED: "tracked", INTERPOLATED: "interpolated", MANUAL: "manual keyframe",
              UNCERTAIN: "uncertain", HARD_NEGATIVE: "hard negative", NOT_FOUND: "not found",
              STALE: "stale (left out of exports)", OCCLUDED: "occluded", OUT_OF_VIEW: "out of view"}
_LUT = np.array([[QColor(CODE_COLORS[c]).red(), QColor(CODE_COLORS[c]).green(), QColor(CODE_COLORS[c]).blue(), 255]
                 for c in range(len(CODE_COLORS))], dtype=np.uint8)


def strip_codes(arrays: TrackArrays, min_score: float = DEFAULT_MIN_SCORE,
                min_iou: float = DEFAULT_MIN_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame strip codes and low-confidence marks of one object's track (vectorised: 10k frames < 1 ms)."""
    codes = np.zeros(len(arrays.source), np.int8)
    tracked = arrays.source == SOURCE_TRACKED
    codes[tracked] = TRACKED
    status_codes = {STATUS_CODE[Status.UNCERTAIN]: UNCERTAIN, STATUS_CODE[Status.HARD_NEGATIVE]: HARD_NEGATIVE,
                    STATUS_CODE[Status.NOT_FOUND]: NOT_FOUND}
    for status, code in status_codes.items():
        codes[tracked & (arrays.status == status)] = code
    codes[arrays.source == SOURCE_INTERPOLATED] = INTERPOLATED
    codes[arrays.source == SOURCE_MANUAL] = MANUAL
    codes[arrays.stale] = STALE
    codes[(arrays.flags & FLAG_OCCLUDED) != 0] = OCCLUDED
    codes[(arrays.flags & FLAG_OUT_OF_VIEW) != 0] = OUT_OF_VIEW
    return codes, arrays.low_confidence(min_score, min_iou)


def column_max(values: np.ndarray, columns: int) -> np.ndarray:
    """The maximum of ``values`` over each of ``columns`` equal spans of frames (each span gets >= 1 frame)."""
    n = len(values)
    if n == 0 or columns <= 0:
        return np.zeros(max(columns, 0), values.dtype)
    starts = np.minimum((np.arange(columns) * n) // columns, n - 1)
    return np.maximum.reduceat(values, starts)


class StateStrip(QWidget):
    """The coloured per-frame strip; click or drag on it to seek, Shift+drag to select a range of frames.

    frameRequested(int): the frame under the mouse.
    selectionChanged(first, last): the selected range (-1, -1 when cleared by a plain click).
    """

    frameRequested = Signal(int)
    selectionChanged = Signal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setMouseTracking(True)
        self._codes = np.zeros(0, np.int8)
        self._low = np.zeros(0, bool)
        self._keyframes = np.zeros(0, int)
        self._current = 0
        self._image: QImage | None = None
        self._anchor: int | None = None  # where a Shift+drag selection started
        self.selection: tuple[int, int] | None = None

    def sizeHint(self) -> QSize:
        return QSize(600, 34)

    @property
    def num_frames(self) -> int:
        return len(self._codes)

    def set_states(self, codes: np.ndarray, low: np.ndarray, keyframes: np.ndarray) -> None:
        self._codes, self._low, self._keyframes = codes, low, keyframes
        self._image = None  # rebuilt on the next paint, at the widget's width
        self.update()

    def set_current(self, index: int) -> None:
        if index != self._current:
            self._current = index
            self.update()

    def frame_at(self, x: float) -> int:
        n = max(1, self.num_frames)
        return int(np.clip(x / max(1, self.width()) * n, 0, n - 1))

    def x_of(self, index: int) -> float:
        return (index + 0.5) / max(1, self.num_frames) * self.width()

    def code_at(self, index: int) -> int:
        return int(self._codes[index]) if 0 <= index < len(self._codes) else EMPTY

    def _build_image(self) -> QImage:
        width = max(1, self.width())
        state = _LUT[column_max(self._codes, width)] if len(self._codes) else np.tile(_LUT[EMPTY], (width, 1))
        low = column_max(self._low.astype(np.uint8), width) if len(self._low) else np.zeros(width, np.uint8)
        low_row = np.where(low[:, None] > 0, np.array([255, 59, 59, 255], np.uint8),
                           np.array([21, 24, 28, 255], np.uint8))
        pixels = np.ascontiguousarray(np.stack([state, low_row]))  # (2, width, 4)
        image = QImage(pixels.data, width, 2, width * 4, QImage.Format.Format_RGBA8888)
        return image.copy()  # own the memory: the numpy buffer goes away

    def paintEvent(self, event) -> None:
        if self._image is None or self._image.width() != max(1, self.width()):
            self._image = self._build_image()
        painter = QPainter(self)
        h = self.height()
        low_h = max(4, h // 5)
        main_h = h - low_h - 2  # a 2-pixel gap keeps the low-confidence row apart from red "not found" spans
        painter.drawImage(QRect(0, 0, self.width(), main_h), self._image, QRect(0, 0, self._image.width(), 1))
        painter.fillRect(QRect(0, main_h, self.width(), 2), QColor("#0d1117"))
        painter.drawImage(QRect(0, main_h + 2, self.width(), low_h), self._image,
                          QRect(0, 1, self._image.width(), 1))
        # Keyframes as small white triangles on the top edge: visible on any span colour, even a blue one.
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#ffffff"))
        for k in self._keyframes:
            x = self.x_of(int(k))
            painter.drawPolygon(QPolygonF([QPointF(x - 4, 0), QPointF(x + 4, 0), QPointF(x, 6)]))
        if self.selection is not None:
            x0 = int(self.selection[0] / max(1, self.num_frames) * self.width())
            x1 = int((self.selection[1] + 1) / max(1, self.num_frames) * self.width())
            painter.fillRect(QRect(x0, 0, max(2, x1 - x0), h), QColor(255, 255, 255, 70))
            painter.setPen(QPen(QColor("#ffffff"), 1, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRect(x0, 0, max(2, x1 - x0) - 1, h - 1))
        if self.num_frames:
            x = int(self.x_of(self._current))
            painter.setPen(QPen(QColor(palette.CURRENT_FRAME_COLOR), 2))
            painter.drawLine(x, 0, x, h)
        painter.end()

    def set_selection(self, selection: tuple[int, int] | None) -> None:
        if selection != self.selection:
            self.selection = selection
            self.selectionChanged.emit(*(selection or (-1, -1)))
            self.update()

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.num_frames:
            return
        index = self.frame_at(event.position().x())
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._anchor = index
            self.set_selection((index, index))
        else:
            self._anchor = None
            self.set_selection(None)
        self.frameRequested.emit(index)

    def mouseMoveEvent(self, event) -> None:
        if not self.num_frames:
            return
        index = self.frame_at(event.position().x())
        self.setToolTip(f"frame {index}: {CODE_NAMES[self.code_at(index)]}")
        if event.buttons() & Qt.MouseButton.LeftButton:
            if self._anchor is not None:
                self.set_selection((min(self._anchor, index), max(self._anchor, index)))
            self.frameRequested.emit(index)


class Timeline(QWidget):
    """Strip, slider, transport buttons and the frame-number box.

    frameRequested(int): the person asked for a frame (slider, strip, or number box).
    """

    frameRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.strip = StateStrip()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setTracking(True)
        self.spin = QSpinBox()
        self.spin.setRange(0, 0)
        self.spin.setKeyboardTracking(False)  # typing "123" seeks once, not to 1, 12, then 123
        self.spin.setMinimumWidth(80)
        self.total = QLabel("/ 0")
        self.buttons = QHBoxLayout()
        self.buttons.setSpacing(2)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addLayout(self.buttons)
        row.addWidget(self.slider, 1)
        row.addWidget(self.spin)
        row.addWidget(self.total)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.strip)
        layout.addLayout(row)

        self.slider.valueChanged.connect(self.frameRequested)
        self.spin.valueChanged.connect(self.frameRequested)
        self.strip.frameRequested.connect(self.frameRequested)

    def add_actions(self, actions) -> None:
        """Transport buttons from the window's actions (one action: one shortcut, one button, one menu item)."""
        for action in actions:
            if action is None:
                self.buttons.addSpacing(8)
                continue
            button = QToolButton()
            button.setDefaultAction(action)
            button.setAutoRaise(True)
            self.buttons.addWidget(button)

    def set_num_frames(self, num_frames: int) -> None:
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setRange(0, max(0, num_frames - 1))
            widget.blockSignals(False)
        self.total.setText(f"/ {max(0, num_frames - 1)}")

    def set_current(self, index: int) -> None:
        """Move the slider and box to a frame without asking for it again."""
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
            widget.setValue(index)
            widget.blockSignals(False)
        self.strip.set_current(index)
