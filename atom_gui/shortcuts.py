"""Keyboard-first control: remapping the actions' keys, and the cheat sheet.

Every command is one QAction made from its :class:`~atom_gui.actions.ActionSpec`; the menus, the timeline
buttons and the keyboard all trigger the same action, so a remapped key is remapped everywhere. Keys are saved in
QSettings under ``shortcuts/<action name>``.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import palette
from .actions import ACTION_SPECS, SPECS_BY_NAME
from .timeline import CODE_COLORS, CODE_NAMES

SHORTCUTS_GROUP = "shortcuts"
KEYED_SPECS = tuple(spec for spec in ACTION_SPECS if not spec.submenu)  # a submenu opens with its menu's key


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
        self.table = QTableWidget(len(KEYED_SPECS), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Key"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self._edits: dict[str, QKeySequenceEdit] = {}
        for row, spec in enumerate(KEYED_SPECS):
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
