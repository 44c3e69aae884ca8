"""The app's settings (tracker, model, preset, device, correction and auto-pause rules) and their dialog.

Settings are a plain dataclass so that the rest of the app reads attributes, not QSettings keys; they persist
through QSettings between sessions.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tracker_core.annotation import DEFAULT_MIN_IOU, DEFAULT_MIN_SCORE, ReplacePolicy
from tracker_core.config import PRESETS
from tracker_core.trackers import ATOM_NAMES, ATOM_PRESET_NAMES, CLASSIC_NAMES, TrackerSpec, is_atom_tracker

APP_NAME = "ATOM Annotator"
DEVICES = ("auto", "cpu", "cuda")
SETTINGS_GROUP = "settings"


def user_qsettings() -> QSettings:
    """The person's settings file, named once: ``~/.config/ATOM Annotator.conf`` on Linux (the application name
    is not repeated as an organisation folder). Settings from the old ``ATOM Annotator/ATOM Annotator.conf``
    are carried over the first time."""
    qsettings = QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, APP_NAME)
    old = QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, APP_NAME, APP_NAME)
    if not qsettings.allKeys() and old.allKeys():
        for key in old.allKeys():
            qsettings.setValue(key, old.value(key))
        qsettings.sync()
    return qsettings


def default_project_dir() -> Path:
    """Projects of videos opened without one: the app's data folder (never the video's own folder), e.g.
    ``~/.local/share/ATOM Annotator/projects``. Projects in the old doubled folder are moved there."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    root = Path(base) / APP_NAME if base else Path.home() / ".atom-annotator"
    projects, old = root / "projects", root / APP_NAME / "projects"
    if old.is_dir() and not projects.exists():
        try:
            shutil.move(str(old), str(projects))
        except OSError:
            return old  # keep using the old folder rather than lose sight of its projects
    return projects


@dataclass
class AppSettings:
    """Everything the person can set; defaults are the ones a first start uses."""

    tracker: str = "atom"
    model_path: str = ""  # empty: the embedded default model
    preset: str = "default"
    device: str = "auto"
    correction_policy: str = ""  # empty: the tracker's default (chosen with `atom bench annotate`)
    replace_policy: str = ReplacePolicy.UNTIL_KEYFRAME.value
    auto_pause: bool = True
    pause_below: float = DEFAULT_MIN_SCORE  # max score under which tracking pauses for a look
    low_score: float = DEFAULT_MIN_SCORE  # timeline's low-confidence marks and "next low-confidence frame"
    low_iou: float = DEFAULT_MIN_IOU
    follow_tracking: bool = True  # the view follows the tracked frame (else it stays where the person is)
    show_confidence_overlay: bool = True
    show_evidence: bool = True  # the evidence panels beside the frame
    step_frames: int = 10  # the big step of the transport buttons
    track_frames: int = 50  # "track N frames"

    def tracker_choice(self) -> TrackerSpec:
        is_atom = is_atom_tracker(self.tracker)
        return TrackerSpec(name=self.tracker, model_path=(self.model_path or None) if is_atom else None,
                             preset=self.preset if is_atom and self.tracker == "atom" else None,
                             device=self.device, correction_policy=self.correction_policy or None)

    @classmethod
    def load(cls, qsettings: QSettings) -> AppSettings:
        """Saved settings, falling back to the default for any missing or unreadable value."""
        values = {}
        qsettings.beginGroup(SETTINGS_GROUP)
        try:
            for f in dataclasses.fields(cls):
                raw = qsettings.value(f.name)
                if raw is None:
                    continue
                try:
                    values[f.name] = _coerce(raw, type(f.default))
                except (TypeError, ValueError):
                    continue
        finally:
            qsettings.endGroup()
        return cls(**values)

    def save(self, qsettings: QSettings) -> None:
        qsettings.beginGroup(SETTINGS_GROUP)
        for name, value in dataclasses.asdict(self).items():
            qsettings.setValue(name, value)
        qsettings.endGroup()


def _coerce(raw, kind):
    """QSettings gives strings back on some platforms: turn them into the field's type."""
    if kind is bool:
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
    return kind(raw)


class SettingsDialog(QDialog):
    """Tracker, model, preset, device, correction policy, and the auto-pause and review thresholds."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.tracker = QComboBox()
        for name in ATOM_PRESET_NAMES:
            self.tracker.addItem(f"{name} (ATOM)", name)
        for name in CLASSIC_NAMES:
            self.tracker.addItem(f"{name.upper()} (OpenCV, fast, no evidence panels)", name)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("embedded default model")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_path, 1)
        model_row.addWidget(browse)
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        # The preset the person chose for the plain "atom" tracker; the other ATOM names imply their own, which the
        # (then disabled) combo shows instead without forgetting this choice.
        self._atom_preset = AppSettings.preset
        self.preset.currentTextChanged.connect(self._preset_chosen)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.correction = QComboBox()
        self.correction.addItem("tracker default", "")
        self.correction.addItem("re-initialise from the corrected box", "reinitialize")
        self.correction.addItem("update the model with the corrected box", "update")
        self.replace = QComboBox()
        self.replace.addItem("up to the next keyframe", ReplacePolicy.UNTIL_KEYFRAME.value)
        self.replace.addItem("to the end (keyframes are kept)", ReplacePolicy.TO_END.value)
        self.auto_pause = QCheckBox("pause when the max score drops below")
        self.pause_below = _spin(0.0, 1.0)
        pause_row = QHBoxLayout()
        pause_row.addWidget(self.auto_pause)
        pause_row.addWidget(self.pause_below)
        self.low_score = _spin(0.0, 1.0)
        self.low_iou = _spin(0.0, 1.0)
        self.follow = QCheckBox("the view follows the tracked frame")
        self.overlay = QCheckBox("overlay the confidence map on the frame")
        self.step_frames = QSpinBox()
        self.step_frames.setRange(2, 1000)
        self.track_frames = QSpinBox()
        self.track_frames.setRange(1, 100000)

        form = QFormLayout()
        form.addRow("Tracker", self.tracker)
        form.addRow("Model file", model_row)
        form.addRow("Preset", self.preset)
        form.addRow("Device", self.device)
        form.addRow("After a correction", self.correction)
        form.addRow("Re-tracking replaces", self.replace)
        form.addRow("Auto-pause", pause_row)
        form.addRow("Low confidence: score below", self.low_score)
        form.addRow("Low confidence: IoU below", self.low_iou)
        form.addRow("", self.follow)
        form.addRow("", self.overlay)
        form.addRow("Big step (frames)", self.step_frames)
        form.addRow("Track N frames: N", self.track_frames)
        note = QLabel("A new tracker, model, preset or device takes effect at the next tracking run.")
        note.setStyleSheet("color: #8b949e;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.tracker.currentIndexChanged.connect(self._update_enabled)
        self.auto_pause.toggled.connect(self._update_enabled)
        self.set_settings(settings)

    def set_settings(self, s: AppSettings) -> None:
        self._shown = s
        _select(self.tracker, s.tracker)
        self.model_path.setText(s.model_path)
        self._atom_preset = s.preset
        self.preset.setCurrentText(s.preset)
        self.device.setCurrentText(s.device)
        _select(self.correction, s.correction_policy)
        _select(self.replace, s.replace_policy)
        self.auto_pause.setChecked(s.auto_pause)
        self.pause_below.setValue(s.pause_below)
        self.low_score.setValue(s.low_score)
        self.low_iou.setValue(s.low_iou)
        self.follow.setChecked(s.follow_tracking)
        self.overlay.setChecked(s.show_confidence_overlay)
        self.step_frames.setValue(s.step_frames)
        self.track_frames.setValue(s.track_frames)
        self._update_enabled()

    def settings(self) -> AppSettings:
        """The dialog's values over the settings it was opened with (those it does not show are kept)."""
        return dataclasses.replace(
            self._shown, tracker=self.tracker.currentData(), model_path=self.model_path.text().strip(),
            preset=self._atom_preset, device=self.device.currentText(),
            correction_policy=self.correction.currentData(), replace_policy=self.replace.currentData(),
            auto_pause=self.auto_pause.isChecked(), pause_below=self.pause_below.value(),
            low_score=self.low_score.value(), low_iou=self.low_iou.value(),
            follow_tracking=self.follow.isChecked(), show_confidence_overlay=self.overlay.isChecked(),
            step_frames=self.step_frames.value(), track_frames=self.track_frames.value())

    def _update_enabled(self) -> None:
        is_atom = is_atom_tracker(self.tracker.currentData() or "")
        for widget in (self.model_path, self.preset, self.device):
            widget.setEnabled(is_atom)
        name = self.tracker.currentData() or ""
        self.preset.setEnabled(name == "atom")
        if name == "atom":
            self.preset.setCurrentText(self._atom_preset)
        elif name in ATOM_NAMES:  # the preset the name runs; a classic tracker has none and leaves the box as it is
            self.preset.setCurrentText(ATOM_NAMES[name][0])
        self.pause_below.setEnabled(self.auto_pause.isChecked())

    def _preset_chosen(self, text: str) -> None:
        if self.tracker.currentData() == "atom":
            self._atom_preset = text

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "",
                                              "Models (*.pth *.pt *.pth.tar *.safetensors);;All files (*)")
        if path:
            self.model_path.setText(path)


def _spin(lo: float, hi: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    return spin


def _select(combo: QComboBox, data) -> None:
    index = combo.findData(data)
    if index >= 0:
        combo.setCurrentIndex(index)
