"""The tracker's evidence, live: the confidence map, the IoU proposals, and score curves over the frames.

These panels are what sets the app apart: they show why the tracker believes what it draws. Each panel is a
view: it is handed a TrackResult (and the frame) or the model's arrays, and keeps no state of its own beyond
what it draws.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QSplitter, QVBoxLayout, QWidget

from tracker_core.boxes import Box
from tracker_core.result import TrackResult

from . import palette
from .frame_view import CONFIDENCE_COLORMAP, score_peak

# IoU colours: red for a poor proposal, yellow in between, green for a good one.
IOU_COLORMAP = pg.ColorMap([0.0, 0.5, 1.0], [palette.LOW_CONFIDENCE_COLOR, "#ffd33d", "#3ddc84"])
LABELLED_PROPOSALS = 3  # the best few get their IoU written next to them; more would be clutter


def _title(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: #c9d1d9; font-weight: 600; padding: 2px 4px;")
    label.setWordWrap(True)  # a narrow dock wraps a long caption instead of cutting it at its edge
    return label


class FrameAxis(pg.AxisItem):
    """An axis of frame numbers: ticks on whole frames only (a short video would otherwise get 0.5, 1.5, ...)."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not levels and maxVal >= minVal:
            levels = [(1.0, list(range(int(np.ceil(minVal)), int(np.floor(maxVal)) + 1)))]
        return levels


def _colorbar(color_map: pg.ColorMap) -> pg.ColorBarItem:
    """A thin colour bar with three ticks (0, 0.5, 1): more would overlap in a small window."""
    bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=color_map, interactive=False, width=10)
    bar.axis.setTicks([[(0.0, "0"), (0.5, ".5"), (1.0, "1")], []])
    bar.axis.setStyle(tickFont=_small_font(), tickTextOffset=2)
    return bar


def _small_font() -> QFont:
    font = QFont()
    font.setPointSizeF(7.5)
    return font


def _image_plot() -> tuple[pg.GraphicsLayoutWidget, pg.PlotItem]:
    """A dark, fixed (no mouse), aspect-locked plot with image rows going down, for the evidence images."""
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("#15181c")
    plot = widget.addPlot()
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.setMouseEnabled(False, False)
    return widget, plot


class ConfidencePanel(QWidget):
    """The classifier's score map with a colour bar, the peak (+) and any distractor (x) marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.caption = _title("Confidence map")
        self.plot_widget, self.plot = _image_plot()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = _colorbar(pg.colormap.get(CONFIDENCE_COLORMAP))
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.marks = pg.ScatterPlotItem(pxMode=True)
        self.marks.setZValue(10)
        self.plot.addItem(self.marks)
        self.placeholder = pg.TextItem(anchor=(0.5, 0.5), color="#8b949e")
        self.plot.addItem(self.placeholder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot_widget)
        self.show_result(None)

    def show_result(self, result: TrackResult | None, tracker_name: str = "", why: str = "") -> None:
        """The result's score map; without one, ``why`` says why (the window knows: a keyframe, not tracked…)."""
        if result is None or result.score_map is None or result.score_map_rect is None:
            self.image.clear()
            self.marks.clear()
            if result is not None and tracker_name:
                why = f"{tracker_name.upper()} has no score map"
            self.placeholder.setText(_wrapped(why or "No score map for this frame"))
            self.placeholder.setPos(9, 9)
            self.placeholder.show()
            self.plot.setRange(QRectF(0, 0, 18, 18), padding=0)
            self.caption.setText("Confidence map")
            return
        self.placeholder.hide()
        scores = np.asarray(result.score_map, dtype=np.float32)
        hs, ws = scores.shape
        self.image.setImage(scores, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(0, 0, ws, hs))
        rect = result.score_map_rect
        px, py = score_peak(scores, rect)

        def to_map(x: float, y: float) -> tuple[float, float]:
            return (x - rect.x) / rect.w * ws, (y - rect.y) / rect.h * hs

        spots = [dict(pos=to_map(px, py), symbol="+", size=16, pen=pg.mkPen("#ffffff", width=2), brush=None)]
        if result.distractor is not None:
            spots.append(dict(pos=to_map(*result.distractor), symbol="x", size=14,
                              pen=pg.mkPen(palette.LOW_CONFIDENCE_COLOR, width=2), brush=None))
        self.marks.setData(spots)
        self.plot.setRange(QRectF(0, 0, ws, hs), padding=0)
        status = result.status.value.replace("_", " ")
        self.caption.setText(f"Confidence map · peak {result.max_score:.2f} · {status}")


class IoUPanel(QWidget):
    """The search region of the frame with the IoU-Net's proposals coloured and labelled by predicted IoU."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.caption = _title("IoU proposals")
        self.plot_widget, self.plot = _image_plot()
        self.crop = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.crop)
        self.colorbar = _colorbar(IOU_COLORMAP)
        # The bar only explains the proposal colours; it drives no image, so give it a hidden dummy one.
        self._bar_image = pg.ImageItem()
        self.colorbar.setImageItem(self._bar_image, insert_in=self.plot)
        self.placeholder = pg.TextItem(anchor=(0.5, 0.5), color="#8b949e")
        self.plot.addItem(self.placeholder)
        self._items: list = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot_widget)
        self.show_result(None, None)

    def show_result(self, result: TrackResult | None, frame: np.ndarray | None, tracker_name: str = "",
                    why: str = "") -> None:
        """The proposals of ``result`` over the frame; without them, ``why`` says why."""
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        region = self._region(result, frame)
        if result is None or frame is None or region is None:
            self.crop.clear()
            self.placeholder.setText(_wrapped(why or "No tracker result for this frame"))
            self.placeholder.setPos(50, 50)
            self.placeholder.show()
            self.plot.setRange(QRectF(0, 0, 100, 100), padding=0)
            self.caption.setText("IoU proposals")
            return
        self.placeholder.hide()
        x0, y0, x1, y1 = region
        self.crop.setImage(frame[y0:y1, x0:x1], autoLevels=False)
        self.crop.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        if result.proposals is not None and result.proposal_ious is not None and len(result.proposals):
            ious = np.asarray(result.proposal_ious, dtype=np.float64)
            order = np.argsort(ious)  # best drawn last, on top
            for k in order:
                x, y, w, h = (float(v) for v in result.proposals[k])
                self._add_rect(Box(x, y, w, h), IOU_COLORMAP.map(float(np.clip(ious[k], 0, 1)), mode="qcolor"), 1.5)
            # Labels for the best few, skipping any that would sit on one already written (near-equal boxes).
            placed: list[tuple[float, float]] = []
            min_gap = 0.08 * max(x1 - x0, y1 - y0)
            for k in order[::-1][:LABELLED_PROPOSALS]:
                x, y, w, h = (float(v) for v in result.proposals[k])
                if any(abs(x + w - px) < min_gap and abs(y - py) < min_gap for px, py in placed):
                    continue
                placed.append((x + w, y))
                text = pg.TextItem(f"{ious[k]:.2f}", color=IOU_COLORMAP.map(float(np.clip(ious[k], 0, 1)),
                                                                            mode="qcolor"), anchor=(0, 0))
                text.setPos(x + w, y)
                self.plot.addItem(text)
                self._items.append(text)
        self._add_rect(result.box, palette.qcolor("#ffffff"), 2.5)
        self.plot.setRange(QRectF(x0, y0, x1 - x0, y1 - y0), padding=0)
        if result.iou is None:
            name = tracker_name.upper() or "This tracker"
            self.caption.setText(f"IoU proposals · {name} predicts no IoU")
        else:
            count = 0 if result.proposals is None else len(result.proposals)
            self.caption.setText(f"IoU proposals · final box IoU {result.iou:.2f} · {count} proposals")

    def _add_rect(self, box: Box, color, width: float) -> None:
        item = QGraphicsRectItem(box.x, box.y, box.w, box.h)
        pen = QPen(color)
        pen.setWidthF(width)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(10)
        self.plot.addItem(item)
        self._items.append(item)

    @staticmethod
    def _region(result: TrackResult | None, frame: np.ndarray | None) -> tuple[int, int, int, int] | None:
        """Integer crop (x0, y0, x1, y1) around the final box and every proposal, with a margin, inside the frame.

        Not the whole search region: ATOM's is five times the target, where proposals would be a few pixels.
        """
        if result is None or frame is None:
            return None
        boxes = [result.box.as_tuple()]
        if result.proposals is not None and len(result.proposals):
            boxes.extend(np.asarray(result.proposals, dtype=np.float64).reshape(-1, 4).tolist())
        b = np.asarray(boxes, dtype=np.float64)
        lo, hi = b[:, :2].min(axis=0), (b[:, :2] + b[:, 2:]).max(axis=0)
        margin = 0.6 * max(result.box.w, result.box.h, 8.0)
        h, w = frame.shape[:2]
        x0, y0 = max(0, int(np.floor(lo[0] - margin))), max(0, int(np.floor(lo[1] - margin)))
        x1, y1 = min(w, int(np.ceil(hi[0] + margin))), min(h, int(np.ceil(hi[1] + margin)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        return x0, y0, x1, y1


class ScoreCurvesPanel(QWidget):
    """Max score and predicted IoU over the frames, with the lines the frame states are decided by.

    Only rules on these two values are drawn, each labelled with its rule: the tracker calls a frame "not found"
    when its peak score is under its threshold, and the app marks a tracked frame "low confidence" (the strip's
    red row, L / Shift+L) under the settings' score and IoU thresholds. Hard negative and uncertain compare the
    second peak with the first, which no curve here shows, so they get no line. The legend is the caption: a
    legend box inside the plot would hide the curves.

    frameRequested(int): the person dragged the current-frame line.
    """

    frameRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.caption = _title(f"<span style='color:{palette.MAX_SCORE_CURVE_COLOR}'>━ max score</span>&nbsp;&nbsp;"
                              f"<span style='color:{palette.IOU_CURVE_COLOR}'>━ predicted IoU</span>"
                              f"&nbsp;&nbsp;over frames")
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.plot = pg.PlotWidget(background="#15181c", axisItems={"bottom": FrameAxis("bottom")})
        self.plot.setYRange(0, 1.05, padding=0)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.getAxis("bottom").setLabel("frame")
        self.plot.getAxis("left").setTicks([[(0.0, "0"), (0.5, ".5"), (1.0, "1")], []])
        self.plot.setXRange(0, 100, padding=0)
        self.score_curve = self.plot.plot(pen=pg.mkPen(palette.MAX_SCORE_CURVE_COLOR, width=1.5), connect="finite")
        self.iou_curve = self.plot.plot(pen=pg.mkPen(palette.IOU_CURVE_COLOR, width=1.5), connect="finite")
        # Score rules labelled at the right end, the IoU rule at the left: apart even in a narrow dock.
        self.not_found_line = self._rule_line(palette.LOW_CONFIDENCE_COLOR, right=True)
        self.low_score_line = self._rule_line(palette.MAX_SCORE_CURVE_COLOR, right=True)
        self.low_iou_line = self._rule_line(palette.IOU_CURVE_COLOR, right=False)
        self.current_line = pg.InfiniteLine(0, angle=90, movable=True,
                                            pen=pg.mkPen(palette.CURRENT_FRAME_COLOR, width=1),
                                            hoverPen=pg.mkPen("#4da3ff", width=2))
        self.current_line.sigDragged.connect(lambda line: self.frameRequested.emit(int(round(line.value()))))
        self.plot.addItem(self.current_line)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot)
        self._num_frames = 0

    def _rule_line(self, color: str, right: bool) -> pg.InfiniteLine:
        """A dashed threshold line with its rule written just above it, on a dark plate (over the curves)."""
        anchor = (1, 1) if right else (0, 1)
        line = pg.InfiniteLine(0, angle=0, movable=False, pen=pg.mkPen(color, style=Qt.PenStyle.DashLine),
                               label="", labelOpts=dict(position=0.99 if right else 0.01, color=color,
                                                        fill=pg.mkBrush(21, 24, 28, 200), anchors=[anchor, anchor]))
        line.label.textItem.setFont(_small_font())
        self.plot.addItem(line)
        return line

    def set_rules(self, not_found: float | None, low_score: float, low_iou: float) -> None:
        """The thresholds: the tracker's "not found" peak score (None: the tracker has none), and the app's
        low-confidence score and IoU. A low-confidence score equal to the not-found one shares its line."""
        lines = ((self.not_found_line, not_found, f"not found: peak < {not_found:.2f}" if not_found is not None
                  else ""),
                 (self.low_score_line, low_score, f"low: score < {low_score:.2f}"),
                 (self.low_iou_line, low_iou, f"low: IoU < {low_iou:.2f}"))
        for line, value, text in lines:
            line.setVisible(value is not None)
            if value is not None:
                line.setValue(value)
                line.label.setFormat(text)
        if not_found is not None and abs(low_score - not_found) < 1e-6:
            self.low_score_line.setVisible(False)
            self.not_found_line.label.setFormat(f"not found, low: peak < {not_found:.2f}")

    def set_curves(self, score: np.ndarray | None, iou: np.ndarray | None) -> None:
        """The whole track's curves (NaN where a frame has no value: gaps, not zeros)."""
        if score is None:
            self.score_curve.clear()
            self.iou_curve.clear()
            return
        frames = np.arange(len(score))
        if len(score) != self._num_frames:
            self._num_frames = len(score)
            self.plot.setXRange(0, max(1, len(score) - 1), padding=0.01)
            self.current_line.setBounds((0, max(0, len(score) - 1)))
        self.score_curve.setData(frames, np.clip(score, -0.05, 1.05), connect="finite")
        self.iou_curve.setData(frames, iou, connect="finite")

    def set_current_frame(self, index: int) -> None:
        self.current_line.blockSignals(True)
        self.current_line.setValue(index)
        self.current_line.blockSignals(False)


class EvidencePanels(QSplitter):
    """The three panels stacked; the main window puts them in a dock beside the frame."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.confidence = ConfidencePanel()
        self.iou = IoUPanel()
        self.curves = ScoreCurvesPanel()
        for panel in (self.confidence, self.iou, self.curves):
            self.addWidget(panel)
        self.setSizes([300, 300, 220])

    def show_result(self, result: TrackResult | None, frame: np.ndarray | None, tracker_name: str = "",
                    why: str = "") -> None:
        """A frame's evidence; ``why``: the reason there is none, for the placeholders."""
        self.confidence.show_result(result, tracker_name, why)
        self.iou.show_result(result, frame, tracker_name, why)


def _wrapped(text: str, width: int = 28) -> str:
    """Placeholder text in lines of about ``width`` characters (a narrow panel would cut one long line)."""
    return "\n".join(textwrap.wrap(text, width)) or text
