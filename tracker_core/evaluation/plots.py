"""Success, precision and normalised-precision plots as PNG (matplotlib's Agg canvas, no display needed).

The figures are built with ``matplotlib.figure.Figure`` and an Agg canvas directly instead of pyplot, so plotting
neither depends on nor changes the process-wide backend (the GUI may be running Qt in the same process).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic_files import atomic_path
from . import metrics

_PLOTS = (
    # file, curve key, x values, score key, x label, title, legend format
    ("success_plot.png", "success", metrics.SUCCESS_THRESHOLDS, "auc", "Overlap threshold",
     "Success plot", "AUC {:.1f}"),
    ("precision_plot.png", "precision", metrics.PRECISION_THRESHOLDS, "precision", "Location error threshold [px]",
     "Precision plot", "P@20 {:.1f}"),
    ("norm_precision_plot.png", "norm_precision", metrics.NORM_PRECISION_THRESHOLDS, "norm_precision",
     "Normalised location error threshold", "Normalised precision plot", "P@0.2 {:.1f}"),
)


def plot_curves(entries: dict[str, tuple[dict[str, np.ndarray], dict[str, float]]], out_dir: str | Path,
                title_suffix: str = "") -> list[Path]:
    """``entries``: {tracker: (mean curves in percent, scores)}.  Writes the three PNGs; returns their paths.

    Trackers are listed best first in each legend (by the plot's own score), as the toolkits do.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, key, xs, score_key, xlabel, title, fmt in _PLOTS:
        fig = Figure(figsize=(6, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        order = sorted(entries.items(), key=lambda kv: _rank(kv[1][1].get(score_key)))
        for name, (curves, scores) in order:
            ax.plot(xs, curves[key], linewidth=2, label=f"{name} [{fmt.format(_finite(scores.get(score_key)))}]")
        ax.set_xlim(float(xs[0]), float(xs[-1]))
        ax.set_ylim(0, 100)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Success rate [%]" if key == "success" else "Precision [%]")
        ax.set_title(title + title_suffix)
        ax.grid(True, alpha=0.3)
        if entries:
            ax.legend(loc="lower left" if key == "success" else "lower right", fontsize=8)
        fig.tight_layout()
        path = out_dir / fname
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
        paths.append(path)
    return paths


def _finite(v) -> float:
    return float(v) if v is not None and np.isfinite(v) else float("nan")


def _rank(v) -> tuple[bool, float]:
    """Sort key: best score first, unknown scores last."""
    v = _finite(v)
    return (bool(np.isnan(v)), -v if not np.isnan(v) else 0.0)
