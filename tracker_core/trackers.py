"""Trackers by name, for the CLI, the benchmarks and the app: ``atom``, ``atom-multiscale``, ``atom-fast``,
``csrt``, ``kcf``, ``mil``; ``atom-update`` and ``atom-reinit`` are ``atom`` with an explicit correction policy
(to compare them with ``atom bench annotate``)."""

from __future__ import annotations

from pathlib import Path

from .errors import CommandError

# name -> (preset, correction policy or None for the preset's own)
ATOM_NAMES = {"atom": ("default", None), "atom-multiscale": ("multiscale", None), "atom-fast": ("fast", None),
              "atom-update": ("default", "update"), "atom-reinit": ("default", "reinitialize")}
CLASSIC_NAMES = ("csrt", "kcf", "mil")
TRACKER_NAMES = tuple(ATOM_NAMES) + CLASSIC_NAMES

_model_cache: dict = {}


def load_model_cached(model_path: str | Path | None):
    """Load a model file once per process (trackers share the frozen networks read-only)."""
    from .model_io import load_model

    key = None if model_path is None else str(Path(model_path).resolve())
    if key not in _model_cache:
        _model_cache[key] = load_model(model_path)
    return _model_cache[key]


def make_tracker(name: str, model_path: str | Path | None = None, preset: str | None = None,
                 device: str = "auto", seed: int | None = None, correction_policy: str | None = None):
    """A fresh tracker. ``preset`` overrides the one implied by an ``atom*`` name."""
    if name in CLASSIC_NAMES:
        from .classic import ClassicTracker

        return ClassicTracker(name)
    if name not in ATOM_NAMES:
        raise CommandError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKER_NAMES)}")
    from .config import preset as make_preset
    from .tracker import AtomTracker

    preset_name, policy = ATOM_NAMES[name]
    try:
        cfg = make_preset(preset or preset_name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if seed is not None:
        cfg.seed = seed
    if correction_policy is not None or policy is not None:
        cfg.correction_policy = correction_policy or policy
    cfg.device = device
    tracker = AtomTracker(load_model_cached(model_path), cfg)
    tracker.name = name
    return tracker
