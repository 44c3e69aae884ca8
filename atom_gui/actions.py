"""Every command of the app, declared once as data: its text, default key, menu, toolbar and timeline place, when
it is enabled, and what it does.

The window builds its QActions, menus, toolbar and transport buttons from :data:`ACTION_SPECS` and enables them
from an :class:`ActionContext` (napari's declared actions with enablement rules are the model). A command is a
function of the window, so this table reads as the app's command list; the keys follow CVAT where it has the same
command (F/D, V/C, K, O, Q, R/E, N, Ctrl+Z/Y), and issue 6 for the rest (Space tracks or pauses: tracking is this
app's main loop, as playback is CVAT's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QStyle, QToolBar, QWidget

from tracker_core.annotation import Flag


@dataclass(frozen=True)
class ActionContext:
    """What enabling depends on (Qt-free: the window fills it from its state)."""

    always: bool = True
    video: bool = False  # a video is open
    tracking: bool = False  # a tracking run is going
    can_undo: bool = False
    can_redo: bool = False
    review_idle: bool = False  # a video is open and no review video is being written


CONDITIONS = tuple(f.name for f in fields(ActionContext))


@dataclass(frozen=True)
class ActionSpec:
    """One command.

    key: the default shortcut ("" for none). menu: the menu it is in ("" for none); ``section`` groups a menu's
    items (a separator between sections). toolbar / transport: its place on the toolbar / among the timeline's
    buttons (0: not there); a new tens digit starts a new toolbar group. when: the ActionContext field that
    enables it. run(window): what it does. setting: for a check box, the AppSettings field it shows and sets
    (``run`` is then not used). submenu: the action opens a menu that the window fills.
    """

    name: str
    text: str
    key: str
    menu: str
    run: Callable | None = None
    when: str = "video"
    section: int = 0
    tip: str = ""
    short: str = ""  # the label on a toolbar button ("" = the menu text)
    icon: str = ""  # a QStyle.StandardPixmap name, for toolbar and timeline buttons
    toolbar: int = 0
    transport: int = 0
    setting: str = ""
    submenu: bool = False

    @property
    def group(self) -> str:
        """The heading the shortcut dialog and the cheat sheet list it under."""
        return self.menu


def _flag(flag: Flag) -> Callable:
    return lambda w: w.correction.toggle_flag(flag)


ACTION_SPECS: tuple[ActionSpec, ...] = (
    # ---- File
    ActionSpec("open", "&Open video…", "Ctrl+O", "File", lambda w: w.files.choose_video(), when="always",
               short="Open", icon="SP_DialogOpenButton", toolbar=10),
    ActionSpec("open_folder", "Open frame &folder…", "Ctrl+Shift+O", "File", lambda w: w.files.choose_folder(),
               when="always"),
    ActionSpec("recent", "Open &recent", "", "File", when="always", submenu=True),
    ActionSpec("open_project", "Open &project…", "Ctrl+P", "File", lambda w: w.files.choose_project(),
               when="always", section=1),
    ActionSpec("save", "&Save project", "Ctrl+S", "File", lambda w: w.save_project(), section=1),
    ActionSpec("save_as", "Save project &as…", "Ctrl+Shift+S", "File", lambda w: w.files.save_project_as(),
               section=1),
    ActionSpec("import", "&Import annotations", "", "File", section=2, submenu=True),
    ActionSpec("export", "&Export annotations", "", "File", section=2, submenu=True),
    ActionSpec("export_review", "Export a review &video…", "", "File", lambda w: w.files.export_review_video(),
               when="review_idle", section=2),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "File", lambda w: w.close(), when="always", section=3),
    # ---- Edit
    ActionSpec("undo", "&Undo", "Ctrl+Z", "Edit", lambda w: w.correction.undo(), when="can_undo", short="Undo",
               icon="SP_ArrowBack", toolbar=50),
    ActionSpec("redo", "&Redo", "Ctrl+Y", "Edit", lambda w: w.correction.redo(), when="can_redo", short="Redo",
               icon="SP_ArrowForward", toolbar=51),
    ActionSpec("settings", "Se&ttings…", "Ctrl+,", "Edit", lambda w: w.edit_settings(), when="always", section=1,
               short="Settings", toolbar=52),
    ActionSpec("shortcuts", "&Keyboard shortcuts…", "", "Edit", lambda w: w.edit_shortcuts(), when="always",
               section=1),
    # ---- Navigate
    ActionSpec("next_frame", "Next frame", "F", "Navigate", lambda w: w.step(1), icon="SP_MediaSeekForward",
               transport=5),
    ActionSpec("prev_frame", "Previous frame", "D", "Navigate", lambda w: w.step(-1), icon="SP_MediaSeekBackward",
               transport=3),
    ActionSpec("step_forward", "Forward a big step", "V", "Navigate", lambda w: w.step(w.settings.step_frames),
               tip="the big step is set in the settings", short="+N", transport=6),
    ActionSpec("step_back", "Back a big step", "C", "Navigate", lambda w: w.step(-w.settings.step_frames),
               short="−N", transport=2),
    ActionSpec("first_frame", "First frame", "Home", "Navigate", lambda w: w.go_to(0)),
    ActionSpec("last_frame", "Last frame", "End", "Navigate", lambda w: w.go_to(w.num_frames - 1)),
    ActionSpec("next_keyframe", "Next keyframe", "R", "Navigate", lambda w: w.jump_keyframe(1),
               icon="SP_MediaSkipForward", transport=7),
    ActionSpec("prev_keyframe", "Previous keyframe", "E", "Navigate", lambda w: w.jump_keyframe(-1),
               icon="SP_MediaSkipBackward", transport=1),
    ActionSpec("next_low", "Next low-confidence frame", "L", "Navigate", lambda w: w.jump_low_confidence(1)),
    ActionSpec("prev_low", "Previous low-confidence frame", "Shift+L", "Navigate",
               lambda w: w.jump_low_confidence(-1)),
    ActionSpec("play", "Play / pause playback", "P", "Navigate", lambda w: w.toggle_play(), icon="SP_MediaPlay",
               transport=4),
    # ---- Track
    ActionSpec("track_backward", "Track backward / pause", "Shift+Space", "Track",
               lambda w: w.correction.toggle_tracking(-1), short="◀ Track", toolbar=30),
    ActionSpec("track", "Track forward / pause", "Space", "Track", lambda w: w.correction.toggle_tracking(1),
               tip="from this frame's box, up to the next keyframe (or the end, per the settings); after an "
                   "auto-pause, Space again continues through the low confidence", short="Track ▶", toolbar=31),
    ActionSpec("track_through", "Track on through low confidence", "Ctrl+Space", "Track",
               lambda w: w.correction.track_through_low_confidence(),
               tip="track forward without pausing on low confidence until the run ends (Space pauses it)"),
    ActionSpec("track_n", "Track N frames forward", "T", "Track",
               lambda w: w.correction.toggle_tracking(1, w.settings.track_frames), tip="N is set in the settings"),
    ActionSpec("track_n_backward", "Track N frames backward", "Shift+T", "Track",
               lambda w: w.correction.toggle_tracking(-1, w.settings.track_frames)),
    ActionSpec("fill", "Fill between the keyframes around (track both ways)", "B", "Track",
               lambda w: w.correction.fill_between_keyframes(),
               tip="forward from one keyframe, backward from the next; per frame the more confident result wins, "
                   "and weak stretches are interpolated", short="Fill ⇄", toolbar=32),
    ActionSpec("stop", "Stop tracking", "Esc", "Track", lambda w: w.correction.stop(), when="tracking",
               tip="keeps every box tracked so far", short="Stop", icon="SP_MediaStop", toolbar=33),
    # ---- Annotate
    ActionSpec("draw_box", "Draw a new box", "N", "Annotate", lambda w: w.correction.start_drawing(),
               tip="then drag on the frame"),
    ActionSpec("keyframe", "Make this frame a keyframe", "K", "Annotate", lambda w: w.correction.make_keyframe(),
               short="Keyframe", toolbar=40),
    ActionSpec("out_of_view", "Toggle out of view", "O", "Annotate", _flag(Flag.OUT_OF_VIEW),
               tip="on the selected range of the timeline (Shift+drag on it), else on this frame",
               short="Out of view", toolbar=41),
    ActionSpec("occluded", "Toggle occluded", "Q", "Annotate", _flag(Flag.OCCLUDED),
               tip="on the selected range, else on this frame", short="Occluded", toolbar=42),
    ActionSpec("delete_box", "Delete the box (marks out of view)", "Del", "Annotate",
               lambda w: w.correction.delete_box()),
    ActionSpec("interpolate", "Interpolate between the keyframes around", "I", "Annotate",
               lambda w: w.correction.interpolate(), short="Interpolate", toolbar=43),
    ActionSpec("keep_stale", "Keep the stale boxes", "Shift+K", "Annotate", lambda w: w.correction.keep_stale(),
               tip="an earlier run's boxes past a correction (brown): on the selected range, else the stale stretch "
                   "around this frame; kept boxes are exported again"),
    ActionSpec("new_object", "New object", "Ctrl+N", "Annotate", lambda w: w.correction.new_object(), section=1,
               short="+ Object", toolbar=21),
    ActionSpec("next_object", "Next object", "Tab", "Annotate", lambda w: w.next_object(), section=1),
    ActionSpec("object_properties", "Object label and description…", "F2", "Annotate",
               lambda w: w.correction.edit_object(), section=1),
    ActionSpec("delete_object", "Delete the object and all its boxes", "Ctrl+Shift+Del", "Annotate",
               lambda w: w.correction.delete_object(), section=1, tip="one undo step: Ctrl+Z brings it back"),
    # ---- View
    ActionSpec("follow", "Follow the tracked frame", "", "View", when="always", setting="follow_tracking"),
    ActionSpec("overlay", "Confidence map over the frame", "", "View", when="always",
               setting="show_confidence_overlay"),
    ActionSpec("fit", "Fit the frame in the view", "Ctrl+0", "View", lambda w: w.frame_view.fit()),
    ActionSpec("evidence", "Tracker evidence panels", "", "View", when="always", setting="show_evidence"),
    # ---- Help
    ActionSpec("cheat_sheet", "Cheat sheet", "F1", "Help", lambda w: w.toggle_cheat_sheet(), when="always",
               short="Keys", toolbar=53),
)
SPECS_BY_NAME = {spec.name: spec for spec in ACTION_SPECS}
MENUS = ("File", "Edit", "Navigate", "Track", "Annotate", "View", "Help")
assert all(spec.when in CONDITIONS for spec in ACTION_SPECS), "an action's 'when' names no ActionContext field"
assert all(spec.menu in MENUS for spec in ACTION_SPECS)


def make_actions(window: QWidget, keys: dict[str, str]) -> dict[str, QAction]:
    """One QAction per spec, parented to (and active in) ``window``, connected to its command."""
    actions = {}
    for spec in ACTION_SPECS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.tip:
            action.setStatusTip(spec.tip)
        if spec.short:
            action.setIconText(spec.short)
        if spec.icon:
            action.setIcon(window.style().standardIcon(getattr(QStyle.StandardPixmap, spec.icon)))
        if spec.submenu:
            action.setMenu(QMenu(spec.text, window))
        elif spec.setting:
            action.setCheckable(True)
            action.setChecked(bool(getattr(window.settings, spec.setting)))
            action.toggled.connect(lambda on, s=spec: window.set_setting(s.setting, on))
        elif spec.run is not None:
            action.triggered.connect(lambda _checked=False, s=spec: s.run(window))
        window.addAction(action)  # shortcuts work even for actions in no menu
        actions[spec.name] = action
    apply_keys(actions, keys)
    return actions


def build_menus(bar: QMenuBar, actions: dict[str, QAction]) -> None:
    """The menu bar: one menu per MENUS entry, its actions in declaration order, sections apart."""
    for title in MENUS:
        menu = bar.addMenu(f"&{title}")
        section = None
        for spec in ACTION_SPECS:
            if spec.menu != title:
                continue
            if section is not None and spec.section != section:
                menu.addSeparator()
            section = spec.section
            menu.addAction(actions[spec.name])


def build_toolbar(toolbar: QToolBar, actions: dict[str, QAction], widgets: dict[int, list[QWidget]]) -> None:
    """The toolbar: actions by their ``toolbar`` place, with ``widgets`` (place -> widgets) put at theirs."""
    places = sorted([(spec.toolbar, spec.name) for spec in ACTION_SPECS if spec.toolbar]
                    + [(place, None) for place in widgets])
    group = None
    for place, name in places:
        if group is not None and place // 10 != group:
            toolbar.addSeparator()
        group = place // 10
        if name is None:
            for widget in widgets[place]:
                toolbar.addWidget(widget)
        else:
            toolbar.addAction(actions[name])


def transport_actions(actions: dict[str, QAction]) -> list[QAction]:
    """The timeline's transport buttons, in their order."""
    return [actions[spec.name] for spec in sorted(ACTION_SPECS, key=lambda s: s.transport) if spec.transport]


def update_enabled(actions: dict[str, QAction], context: ActionContext) -> None:
    for spec in ACTION_SPECS:
        actions[spec.name].setEnabled(bool(getattr(context, spec.when)))


def apply_keys(actions: dict[str, QAction], keys: dict[str, str]) -> None:
    """Give each action its key (none where the key is empty) and a tooltip that names the key."""
    for name, action in actions.items():
        key = keys.get(name, "")
        action.setShortcut(QKeySequence(key) if key else QKeySequence())
        spec = SPECS_BY_NAME[name]
        tip = spec.text.replace("&", "").replace("…", "")
        action.setToolTip(f"{tip} ({QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)})"
                          if key else tip)
