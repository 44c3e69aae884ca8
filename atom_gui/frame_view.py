"""The frame view: the video frame, the boxes, and the tracker's confidence map over its search region.

A pyqtgraph ImageItem in an aspect-locked, y-down ViewBox, so one view unit is one image pixel and a box's
``(x, y, w, h)`` is drawn as is (the project's continuous 0-based convention). The wheel zooms, a drag pans;
in draw mode (no box on this frame, or Shift held) a drag draws a new box instead. The current object's box is
a ROI with eight handles: moving or resizing it is a correction, reported once when the mouse is released. On a
frame flagged occluded or out of view, the box that exports still carry is drawn dashed (not editable).

Text over the view (the hint, and notices such as "Undone: …") are widgets on the viewport, not scene items:
they keep their size and place at any zoom and any video resolution, at the top and bottom edges, off the subject.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsSimpleTextItem, QLabel

from tracker_core.boxes import Box
from tracker_core.result import TrackResult

from . import palette

MIN_BOX_SIDE = 3.0  # a drag smaller than this is a click, not a box
CONFIDENCE_COLORMAP = "inferno"  # a heat map: dark red through orange to pale yellow at the peak
NOTICE_MS = 6000
OVERLAY_TEXT_STYLE = ("color: #e6edf3; background: rgba(13, 17, 23, 215); border: 1px solid #30363d; "
                      "border-radius: 6px; padding: 6px 10px; font-size: 13px;")


def overlay_lookup_table() -> np.ndarray:
    """The heat map with an alpha ramp: scores under about 0.2 are clear and the colour thickens towards the peak,
    so the map reads as heat over the frame (only where the classifier believes) rather than as a tinted wash
    over the whole search region. The dark low end of the map is never drawn."""
    lut = pg.colormap.get(CONFIDENCE_COLORMAP).getLookupTable(start=0.35, stop=1.0, nPts=256, alpha=True)
    ramp = np.clip((np.linspace(0.0, 1.0, 256) - 0.2) / 0.6, 0, 1)
    lut[:, 3] = (ramp ** 1.3 * 200).astype(np.uint8)
    return lut


def smooth_for_display(scores: np.ndarray, side: int = 192) -> np.ndarray:
    """A coarse score map resized bilinearly for the overlay: stretched over a search region of hundreds of
    pixels, an 18x18 (or stored 64x64) map would show as blocks, which reads as structure that is not there."""
    scores = np.asarray(scores, dtype=np.float32)
    h, w = scores.shape
    if max(h, w) >= side:
        return scores
    scale = side / max(h, w)
    return cv2.resize(scores, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)


def score_peak(score_map: np.ndarray, rect: Box) -> tuple[float, float]:
    """Image (x, y) of the score map's maximum, the cell centre mapped into the rectangle the map covers."""
    hs, ws = score_map.shape
    i, j = np.unravel_index(int(np.nanargmax(score_map)), score_map.shape)
    return rect.x + (j + 0.5) * rect.w / ws, rect.y + (i + 0.5) * rect.h / hs


class _FrameViewBox(pg.ViewBox):
    """A ViewBox whose left drag draws a box while drawing is on (otherwise it pans, as usual)."""

    def __init__(self, owner: FrameView):
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self._owner = owner
        self._rubber = QGraphicsRectItem()
        pen = QPen(palette.qcolor(palette.MANUAL_COLOR))
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._rubber.setPen(pen)
        self._rubber.setZValue(30)
        self._rubber.hide()
        self.addItem(self._rubber, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None):
        drawing = self._owner.draw_mode or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != Qt.MouseButton.LeftButton or not drawing or not self._owner.has_image:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapToView(ev.buttonDownPos())
        end = self.mapToView(ev.pos())
        rect = QRectF(start, end).normalized().intersected(self._owner.image_rect())
        if ev.isFinish():
            self._rubber.hide()
            if rect.width() >= MIN_BOX_SIDE and rect.height() >= MIN_BOX_SIDE:
                self._owner.boxDrawn.emit(Box(rect.x(), rect.y(), rect.width(), rect.height()))
        else:
            self._rubber.setRect(rect)
            self._rubber.show()


class FrameView(pg.GraphicsView):
    """The frame with its boxes and evidence overlays.

    boxDrawn(Box): the person drew a new box by dragging.
    boxEdited(Box): the person moved or resized the current box (emitted on release).
    editStarted(): the person grabbed the current box (the window pauses tracking).
    """

    boxDrawn = Signal(object)
    boxEdited = Signal(object)
    editStarted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent, background="#15181c")
        self.draw_mode = False
        self.has_image = False
        self._image_size = (0, 0)  # (width, height)
        self._programmatic = False  # True while the code (not the mouse) moves the ROI

        self.view = _FrameViewBox(self)
        self.setCentralItem(self.view)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)

        self.confidence_item = pg.ImageItem(axisOrder="row-major")
        self.confidence_item.setLookupTable(overlay_lookup_table())
        self.confidence_item.setZValue(5)
        self.confidence_item.hide()
        self.view.addItem(self.confidence_item, ignoreBounds=True)
        self.search_region = QGraphicsRectItem()
        self.search_region.setPen(_cosmetic_pen("#9aa4b1", 1, Qt.PenStyle.DotLine))
        self.search_region.setZValue(6)
        self.search_region.hide()
        self.view.addItem(self.search_region, ignoreBounds=True)
        self.peak_marks = pg.ScatterPlotItem(pxMode=True)
        self.peak_marks.setZValue(25)
        self.view.addItem(self.peak_marks, ignoreBounds=True)
        self.show_confidence = True

        # The current object's box on a flagged frame: dashed, with its reason, not editable.
        self.flagged_box = QGraphicsRectItem()
        self.flagged_box.setPen(_cosmetic_pen(palette.OCCLUDED_COLOR, 2, Qt.PenStyle.DashLine))
        self.flagged_box.setZValue(18)
        self.flagged_box.hide()
        self.view.addItem(self.flagged_box, ignoreBounds=True)
        self.flagged_label = pg.TextItem(anchor=(0, 1), color="#d0d0d0", fill=pg.mkBrush(0, 0, 0, 140))
        self.flagged_label.setZValue(18)
        self.flagged_label.hide()
        self.view.addItem(self.flagged_label, ignoreBounds=True)

        self.roi = pg.ROI([0, 0], [10, 10], pen=_cosmetic_pen(palette.MANUAL_COLOR, 2),
                          hoverPen=_cosmetic_pen("#ffffff", 2), rotatable=False, resizable=False,
                          removable=False, movable=True)
        for handle, anchor in (([0, 0], [1, 1]), ([1, 1], [0, 0]), ([1, 0], [0, 1]), ([0, 1], [1, 0]),
                               ([0.5, 0], [0.5, 1]), ([0.5, 1], [0.5, 0]), ([0, 0.5], [1, 0.5]),
                               ([1, 0.5], [0, 0.5])):
            self.roi.addScaleHandle(handle, anchor)
        self.roi.setZValue(20)
        self.roi.hide()
        self.roi.sigRegionChangeStarted.connect(self._roi_started)
        self.roi.sigRegionChangeFinished.connect(self._roi_finished)
        self.view.addItem(self.roi, ignoreBounds=True)
        self.roi_label = pg.TextItem(anchor=(0, 1), color="#ffffff", fill=pg.mkBrush(0, 0, 0, 140))
        self.roi_label.setZValue(21)
        self.roi_label.hide()
        self.view.addItem(self.roi_label, ignoreBounds=True)

        self._other_items: list = []  # boxes of the objects that are not being edited

        # A dark plate under the text: hints and notices sit on video of any brightness.
        self.hint = self._overlay_label()
        self.notice = self._overlay_label()
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.hide)
        self.set_hint("Open a video (File ▸ Open, or drop a file here)")

    def _overlay_label(self) -> QLabel:
        label = QLabel(self.viewport())
        label.setStyleSheet(OVERLAY_TEXT_STYLE)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        label.hide()
        return label

    # ---- the frame ----------------------------------------------------------------------------------------

    def set_frame(self, frame: np.ndarray | None) -> None:
        """Show a frame ((H, W, 3) uint8 RGB); None keeps the previous one (the next is being decoded)."""
        if frame is None:
            return
        first = not self.has_image or self._image_size != (frame.shape[1], frame.shape[0])
        # uint8 without levels takes pyqtgraph's direct QImage path (no per-pixel scaling): fast at 1080p.
        self.image_item.setImage(frame, autoLevels=False)
        self.has_image = True
        self._image_size = (frame.shape[1], frame.shape[0])
        if first:
            self.roi.maxBounds = self.image_rect()
            self.fit()

    def fit(self) -> None:
        """Fit the whole frame in the view (Ctrl+0)."""
        if self.has_image:
            self.view.setRange(self.image_rect(), padding=0.02)

    def clear_frame(self) -> None:
        self.image_item.clear()
        self.has_image = False
        self.roi.hide()
        self.roi_label.hide()
        self.clear_evidence()
        self.set_other_boxes([])
        self.set_flagged_box(None)

    def image_rect(self) -> QRectF:
        return QRectF(0, 0, *self._image_size)

    def set_hint(self, text: str) -> None:
        """A line of text at the top of the view, off the subject (empty text hides it)."""
        self.hint.setText(text)
        self.hint.setVisible(bool(text))
        self._place_overlay_text()

    def show_notice(self, text: str, timeout_ms: int = NOTICE_MS) -> None:
        """A passing message at the bottom of the view ("Undone: …"), gone after ``timeout_ms``."""
        self.notice.setText(text)
        self.notice.show()
        self._place_overlay_text()
        self._notice_timer.start(timeout_ms)

    def hide_notice(self) -> None:
        self._notice_timer.stop()
        self.notice.hide()

    def _place_overlay_text(self) -> None:
        """Hint at the top, notice at the bottom, centred; as wide as their text up to the view's width (less a
        margin), wrapped beyond it, so that no resolution or window size cuts them."""
        width, height = self.viewport().width(), self.viewport().height()
        for label, top in ((self.hint, True), (self.notice, False)):
            if not label.text():
                continue
            margins = label.contentsMargins().left() + label.contentsMargins().right() + 24
            natural = label.fontMetrics().horizontalAdvance(label.text()) + margins
            label.setFixedWidth(max(120, min(natural, width - 40, 760)))
            label.setFixedHeight(label.heightForWidth(label.width()))
            y = 12 if top else height - label.height() - 12
            label.move(max(0, (width - label.width()) // 2), max(0, y))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "notice"):  # pyqtgraph's constructor resizes before ours has run
            self._place_overlay_text()

    # ---- boxes --------------------------------------------------------------------------------------------

    def set_flagged_box(self, box: Box | None, label: str = "") -> None:
        """The current object's box on a frame flagged occluded or out of view (None hides it)."""
        if box is None:
            self.flagged_box.hide()
            self.flagged_label.hide()
            return
        self.flagged_box.setRect(QRectF(box.x, box.y, box.w, box.h))
        self.flagged_box.show()
        self.flagged_label.setText(label)
        self.flagged_label.setPos(box.x, box.y)
        self.flagged_label.setVisible(bool(label))

    def set_box(self, box: Box | None, color: str = palette.MANUAL_COLOR, label: str = "") -> None:
        """Show the current object's box (None hides it) without reporting it as an edit."""
        if box is None:
            self.roi.hide()
            self.roi_label.hide()
            return
        self._programmatic = True
        try:
            self.roi.setPos((box.x, box.y), update=False, finish=False)
            self.roi.setSize((box.w, box.h), update=True, finish=False)
        finally:
            self._programmatic = False
        self.roi.setPen(_cosmetic_pen(color, 2))
        self.roi.show()
        self.roi_label.setText(label)
        self.roi_label.setColor(color)
        self.roi_label.setPos(box.x, box.y)
        self.roi_label.setVisible(bool(label))

    def current_box(self) -> Box | None:
        if not self.roi.isVisible():
            return None
        pos, size = self.roi.pos(), self.roi.size()
        return Box(pos.x(), pos.y(), size.x(), size.y())

    def set_other_boxes(self, boxes: list[tuple[Box, str, str]]) -> None:
        """Boxes of the other objects, drawn thin and not editable: (box, colour, label) each."""
        for item in self._other_items:
            self.view.removeItem(item)
        self._other_items = []
        for box, color, label in boxes:
            rect = QGraphicsRectItem(box.x, box.y, box.w, box.h)
            rect.setPen(_cosmetic_pen(color, 1, Qt.PenStyle.DashLine))
            rect.setZValue(15)
            self.view.addItem(rect, ignoreBounds=True)
            self._other_items.append(rect)
            if label:
                text = QGraphicsSimpleTextItem(label)
                text.setBrush(palette.qcolor(color))
                text.setFlag(text.GraphicsItemFlag.ItemIgnoresTransformations)
                text.setPos(QPointF(box.x, box.y))
                text.setZValue(15)
                self.view.addItem(text, ignoreBounds=True)
                self._other_items.append(text)

    def _roi_started(self) -> None:
        if not self._programmatic:
            self.editStarted.emit()

    def _roi_finished(self) -> None:
        if not self._programmatic and self.roi.isVisible():
            self.boxEdited.emit(self.current_box())

    # ---- evidence -----------------------------------------------------------------------------------------

    def set_evidence(self, result: TrackResult | None) -> None:
        """Overlay the score map on its search region, with the peak (+) and any distractor (x) marked. Both are
        cut to the image: the search region often reaches past the frame's edge, where there is nothing to see."""
        if result is None or result.score_map is None or result.score_map_rect is None:
            self.clear_evidence()
            return
        rect = result.score_map_rect
        shown = QRectF(rect.x, rect.y, rect.w, rect.h).intersected(self.image_rect()) if self.has_image else \
            QRectF(rect.x, rect.y, rect.w, rect.h)
        if shown.isEmpty():
            self.clear_evidence()
            return
        if self.show_confidence:
            scores = smooth_for_display(result.score_map)
            hs, ws = scores.shape
            # The part of the map over the image: rows and columns in proportion to the visible rectangle.
            c0 = int(np.floor((shown.left() - rect.x) / rect.w * ws))
            c1 = int(np.ceil((shown.right() - rect.x) / rect.w * ws))
            r0 = int(np.floor((shown.top() - rect.y) / rect.h * hs))
            r1 = int(np.ceil((shown.bottom() - rect.y) / rect.h * hs))
            c0, r0 = max(0, c0), max(0, r0)
            c1, r1 = min(ws, max(c1, c0 + 1)), min(hs, max(r1, r0 + 1))
            self.confidence_item.setImage(np.ascontiguousarray(scores[r0:r1, c0:c1]), autoLevels=False,
                                          levels=(0.0, 1.0))
            self.confidence_item.setRect(QRectF(rect.x + c0 * rect.w / ws, rect.y + r0 * rect.h / hs,
                                                (c1 - c0) * rect.w / ws, (r1 - r0) * rect.h / hs))
            self.confidence_item.show()
        else:
            self.confidence_item.hide()
        self.search_region.setRect(shown)
        self.search_region.show()
        spots = [dict(pos=score_peak(result.score_map, rect), symbol="+", size=16,
                      pen=pg.mkPen("#ffffff", width=2), brush=None)]
        if result.distractor is not None:
            spots.append(dict(pos=tuple(result.distractor), symbol="x", size=14,
                              pen=pg.mkPen(palette.LOW_CONFIDENCE_COLOR, width=2), brush=None))
        self.peak_marks.setData(spots)

    def clear_evidence(self) -> None:
        self.confidence_item.hide()
        self.search_region.hide()
        self.peak_marks.clear()


def _cosmetic_pen(color: str, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen whose width is in screen pixels whatever the zoom (a zoomed-in box keeps a thin outline)."""
    pen = QPen(palette.qcolor(color))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    return pen
