"""Keyboard-first control: the app's actions, their CVAT-like default keys, remapping, and the cheat sheet.

Every command of the app is one QAction made here from an :class:`ActionSpec`; the menus, the timeline buttons
and the keyboard all trigger the same action, so a remapped key is remapped everywhere. Keys are saved in
QSettings under ``shortcuts/<action name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QMessageBox,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import palette
from .timeline import CODE_COLORS, CODE_NAMES

SHORTCUTS_GROUP = "shortcuts"


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    key: str  # the default (CVAT's where CVAT has one); "" for none
    group: str
    tip: str = ""
    short: str = ""  # the label on a toolbar button ("" = the menu text)
    icon: str = ""  # a QStyle.StandardPixmap name, for toolbar and timeline buttons


# The defaults follow CVAT where it has the same command (F/D, V/C, K, O, Q, R/E, N, Ctrl+Z/Y), and issue 6
# for the rest (Space tracks or pauses: tracking is this app's main loop, as playback is CVAT's).
ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open video…", "Ctrl+O", "File", short="Open", icon="SP_DialogOpenButton"),
    ActionSpec("open_folder", "Open frame &folder…", "Ctrl+Shift+O", "File"),
    ActionSpec("save", "&Save project", "Ctrl+S", "File"),
    ActionSpec("save_as", "Save project &as…", "Ctrl+Shift+S", "File"),
    ActionSpec("open_project", "Open &project…", "Ctrl+P", "File"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "File"),
    ActionSpec("undo", "&Undo", "Ctrl+Z", "Edit", short="Undo", icon="SP_ArrowBack"),
    ActionSpec("redo", "&Redo", "Ctrl+Y", "Edit", short="Redo", icon="SP_ArrowForward"),
    ActionSpec("settings", "Se&ttings…", "Ctrl+,", "Edit", short="Settings"),
    ActionSpec("shortcuts", "&Keyboard shortcuts…", "", "Edit"),
    ActionSpec("next_frame", "Next frame", "F", "Navigate", icon="SP_MediaSeekForward"),
    ActionSpec("prev_frame", "Previous frame", "D", "Navigate", icon="SP_MediaSeekBackward"),
    ActionSpec("step_forward", "Forward a big step", "V", "Navigate", "the big step is set in the settings",
               short="+N"),
    ActionSpec("step_back", "Back a big step", "C", "Navigate", short="−N"),
    ActionSpec("first_frame", "First frame", "Home", "Navigate"),
    ActionSpec("last_frame", "Last frame", "End", "Navigate"),
    ActionSpec("next_keyframe", "Next keyframe", "R", "Navigate", icon="SP_MediaSkipForward"),
    ActionSpec("prev_keyframe", "Previous keyframe", "E", "Navigate", icon="SP_MediaSkipBackward"),
    ActionSpec("next_low", "Next low-confidence frame", "L", "Navigate"),
    ActionSpec("prev_low", "Previous low-confidence frame", "Shift+L", "Navigate"),
    ActionSpec("play", "Play / pause playback", "P", "Navigate", icon="SP_MediaPlay"),
    ActionSpec("track", "Track forward / pause", "Space", "Track",
               "from this frame's box, up to the next keyframe (or the end, per the settings)", short="Track ▶"),
    ActionSpec("track_backward", "Track backward / pause", "Shift+Space", "Track", short="◀ Track"),
    ActionSpec("track_n", "Track N frames forward", "T", "Track", "N is set in the settings"),
    ActionSpec("track_n_backward", "Track N frames backward", "Shift+T", "Track"),
    ActionSpec("fill", "Fill between the keyframes around (track both ways)", "B", "Track",
               "forward from one keyframe, backward from the next; per frame the more confident result wins, "
               "and weak stretches are interpolated", short="Fill ⇄"),
    ActionSpec("stop", "Stop tracking", "Esc", "Track", "keeps every box tracked so far", short="Stop",
               icon="SP_MediaStop"),
    ActionSpec("draw_box", "Draw a new box", "N", "Annotate", "then drag on the frame"),
    ActionSpec("keyframe", "Make this frame a keyframe", "K", "Annotate", short="Keyframe"),
    ActionSpec("out_of_view", "Toggle out of view", "O", "Annotate",
               "on the selected range of the timeline (Shift+drag on it), else on this frame", short="Out of view"),
    ActionSpec("occluded", "Toggle occluded", "Q", "Annotate", "on the selected range, else on this frame",
               short="Occluded"),
    ActionSpec("delete_box", "Delete the box (marks out of view)", "Del", "Annotate"),
    ActionSpec("interpolate", "Interpolate between the keyframes around", "I", "Annotate", short="Interpolate"),
    ActionSpec("keep_stale", "Keep the stale boxes", "Shift+K", "Annotate",
               "an earlier run's boxes past a correction (brown): on the selected range, else the stale stretch "
               "around this frame; kept boxes are exported again"),
    ActionSpec("new_object", "New object", "Ctrl+N", "Annotate", short="+ Object"),
    ActionSpec("next_object", "Next object", "Tab", "Annotate"),
    ActionSpec("object_properties", "Object label and description…", "F2", "Annotate"),
    ActionSpec("delete_object", "Delete the object and all its boxes", "Ctrl+Shift+Del", "Annotate",
               "one undo step: Ctrl+Z brings it back"),
    ActionSpec("export_review", "Export a review &video…", "", "File"),
    ActionSpec("follow", "Follow the tracked frame", "", "View"),
    ActionSpec("overlay", "Confidence map over the frame", "", "View"),
    ActionSpec("fit", "Fit the frame in the view", "Ctrl+0", "View"),
    ActionSpec("cheat_sheet", "Cheat sheet", "F1", "Help", short="Keys"),
)
SPECS_BY_NAME = {spec.name: spec for spec in ACTION_SPECS}


def load_keys(qsettings: QSettings) -> dict[str, str]:
    """The key of every action: the saved one where the person remapped it, else the default."""
    keys = {}
    qsettings.beginGroup(SHORTCUTS_GROUP)
    try:
        for spec in ACTION_SPECS:
            saved = qsettings.value(spec.name)
            keys[spec.name] = spec.key if saved is None else str(saved)
    finally:
        qsettings.endGroup()
    return keys


def save_keys(qsettings: QSettings, keys: dict[str, str]) -> None:
    qsettings.beginGroup(SHORTCUTS_GROUP)
    for name, key in keys.items():
        if key == SPECS_BY_NAME[name].key:
            qsettings.remove(name)  # defaults are not stored, so a later change of default reaches the person
        else:
            qsettings.setValue(name, key)
    qsettings.endGroup()


def make_actions(parent: QWidget, keys: dict[str, str]) -> dict[str, QAction]:
    """One QAction per spec, parented to (and active in) ``parent``."""
    actions = {}
    for spec in ACTION_SPECS:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.tip:
            action.setStatusTip(spec.tip)
        if spec.short:
            action.setIconText(spec.short)
        if spec.icon:
            action.setIcon(parent.style().standardIcon(getattr(QStyle.StandardPixmap, spec.icon)))
        parent.addAction(action)  # shortcuts work even for actions in no menu
        actions[spec.name] = action
    apply_keys(actions, keys)
    return actions


def apply_keys(actions: dict[str, QAction], keys: dict[str, str]) -> None:
    for name, action in actions.items():
        key = keys.get(name, "")
        action.setShortcut(QKeySequence(key) if key else QKeySequence())
        spec = SPECS_BY_NAME[name]
        tip = spec.text.replace("&", "").replace("…", "")
        action.setToolTip(f"{tip} ({QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)})"
                          if key else tip)


def conflicts(keys: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Keys bound to more than one action: (key, [action texts])."""
    by_key: dict[str, list[str]] = {}
    for name, key in keys.items():
        if key:
            normal = QKeySequence(key).toString()
            by_key.setdefault(normal, []).append(SPECS_BY_NAME[name].text.replace("&", ""))
    return [(key, names) for key, names in by_key.items() if len(names) > 1]


class ShortcutDialog(QDialog):
    """A table of actions with an editable key each; warns about a key used twice."""

    def __init__(self, keys: dict[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 640)
        self.table = QTableWidget(len(ACTION_SPECS), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Key"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self._edits: dict[str, QKeySequenceEdit] = {}
        for row, spec in enumerate(ACTION_SPECS):
            for col, text in ((0, spec.group), (1, spec.text.replace("&", ""))):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(row, col, item)
            edit = QKeySequenceEdit(QKeySequence(keys.get(spec.name, "")))
            edit.setMaximumSequenceLength(1)
            self.table.setCellWidget(row, 2, edit)
            self._edits[spec.name] = edit
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._defaults)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Click a key cell and press the new key. Esc in a cell keeps Esc as the key."))
        layout.addWidget(self.table)
        layout.addWidget(buttons)

    def keys(self) -> dict[str, str]:
        return {name: edit.keySequence().toString() for name, edit in self._edits.items()}

    def _defaults(self) -> None:
        for name, edit in self._edits.items():
            edit.setKeySequence(QKeySequence(SPECS_BY_NAME[name].key))

    def _accept(self) -> None:
        clashes = conflicts(self.keys())
        if clashes:
            text = "\n".join(f"{key}: {', '.join(names)}" for key, names in clashes)
            QMessageBox.warning(self, "Keys used twice", f"Give each key to one action only:\n\n{text}")
            return
        self.accept()


def cheat_sheet_html(keys: dict[str, str]) -> str:
    """The on-screen cheat sheet: keys by group (two rows of two, to fit beside the evidence panels), and what
    the timeline colours mean."""
    groups: dict[str, list[str]] = {}
    for spec in ACTION_SPECS:
        key = keys.get(spec.name, "")
        if not key or spec.group in ("File", "View"):
            continue
        shown = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
        groups.setdefault(spec.group, []).append(
            f"<tr><td style='padding-right:10px'><b><code>{shown}</code></b></td>"
            f"<td>{spec.text.replace('&', '')}</td></tr>")

    def cell(group: str) -> str:
        rows = "".join(groups.get(group, []))
        return (f"<td valign='top' style='padding-right:22px; padding-bottom:8px'><h4 style='margin:2px'>{group}"
                f"</h4><table>{rows}</table></td>")

    layout = "".join(f"<tr>{cell(a)}{cell(b)}</tr>" for a, b in (("Track", "Annotate"), ("Navigate", "Edit")))
    legend = " ".join(f"<span style='color:{CODE_COLORS[c]}'>■</span> {CODE_NAMES[c]}&nbsp;&nbsp;"
                      for c in sorted(CODE_COLORS) if c)
    return (f"<div style='color:#e6edf3'><table>{layout}</table>"
            f"<p style='margin-top:4px'>Timeline: {legend}<br>"
            f"<span style='color:{palette.LOW_CONFIDENCE_COLOR}'>▁</span> low confidence (lower row)&nbsp;&nbsp;"
            f"white tick: keyframe&nbsp;&nbsp;Shift+drag on it: select a range for O, Q and Del</p>"
            f"<p>The first box: drag on the frame. Another box: N (or Shift) and drag. Correct a box: drag it or "
            f"its handles; tracking carries on from it. F1 closes this.</p></div>")
