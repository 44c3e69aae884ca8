"""The tracker's one typed configuration: every default in one place, presets by name.

Values follow the paper and pytracking's ``pytracking/parameter/atom/default.py``;
where the reference has a hidden code default that differs from its parameter file (``iounet_k`` 5 vs 3), the
parameter file wins, as that is what the published results used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class SampleConfig:
    """The crops: the tracker's search region and the training crops of the IoU-Net (``atom train``), one
    definition.  A model file written by ``atom train`` stores the :data:`CROP_GEOMETRY` it was trained with, and
    the tracker takes it from there (files without it: these defaults)."""

    search_area_scale: float = 5.0  # search region side = sqrt(w*h) * scale
    image_sample_size: int = 288  # crop side in pixels (18 cells at stride 16)
    feature_stride: int = 16  # stride of the classifier features


# The SampleConfig fields a trained IoU-Net depends on (the backbone fixes the stride).
CROP_GEOMETRY = ("search_area_scale", "image_sample_size")


@dataclass
class AugmentationConfig:
    enabled: bool = True
    fliplr: bool = True
    rotate: tuple[float, ...] = (5, -5, 10, -10, 20, -20, 30, -30, 45, -45, -60, 60)
    blur: tuple[tuple[float, float], ...] = ((2, 0.2), (0.2, 2), (3, 1), (1, 3), (2, 2))  # (sigma_y, sigma_x)
    relative_shift: tuple[tuple[float, float], ...] = ((0.6, 0.6), (-0.6, 0.6), (0.6, -0.6), (-0.6, -0.6))
    dropout_copies: int = 7
    dropout_p: float = 0.2
    expansion_factor: float = 2.0  # the augmentation crop is this much larger, then centre-cropped
    random_shift_factor: float = 1.0 / 3.0  # random shift of flip/blur/rotate, fraction of the crop side


@dataclass
class ClassifierConfig:
    compressed_dim: int = 64
    kernel_size: int = 4
    filter_reg: float = 0.1
    projection_reg: float = 1e-4
    mlu_alpha: float = 0.05  # output activation; 0 disables it
    output_sigma_factor: float = 0.25  # Gaussian label sigma relative to the target size
    normalize_power: float = 2.0
    init_gn_iter: int = 6
    init_cg_iter: int = 60  # total over the Gauss-Newton iterations
    update_cg_iter: int = 5
    train_skipping: int = 10  # optimise every N-th frame
    learning_rate: float = 0.01
    sample_memory_size: int = 250
    init_samples_minimum_weight: float = 0.25
    projection_init_std_scale: float = 1.0  # P ~ randn / sqrt(in_channels) * scale


@dataclass
class LocalizationConfig:
    score_upsample: bool = True  # Fourier-series interpolation of the 18x18 scores to the crop resolution
    target_not_found_threshold: float = 0.25
    distractor_threshold: float = 0.8
    hard_negative_threshold: float = 0.5
    target_neighborhood_scale: float = 2.2
    displacement_scale: float = 0.8
    hard_negative_learning_rate: float = 0.02
    hard_negative_cg_iter: int = 5
    update_scale_when_uncertain: bool = True
    scale_factors: tuple[float, ...] = (1.0,)  # >1 entries: multi-scale search (used without the IoU-Net)
    max_center_outside: float = 0.3  # the centre may leave the image by this fraction of the target size


@dataclass
class RefinementConfig:
    use_iou_net: bool = True
    num_init_random_boxes: int = 9
    box_jitter_pos: float = 0.1
    box_jitter_sz: float = 0.5
    maximal_aspect_ratio: float = 6.0
    iterations: int = 5
    step_length: float = 1.0
    step_decay: float = 1.0
    top_k: int = 3
    # Beyond the paper (issue 11's ablations; the defaults are the paper's method):
    # the largest factor by which refinement may change the box's width or height in one frame (None: unbounded);
    max_scale_change: float | None = None
    # below this predicted IoU the refined centre is kept but the previous size too (0: always take the size);
    keep_size_below_iou: float = 0.0
    # the fraction of refinement's log-size change applied per frame (1: all of it, as the paper);
    scale_update_rate: float = 1.0
    # an alpha-beta filter on the log size: the share of refinement's surprise (its log-size change beyond the
    # per-frame trend) that moves the trend, while scale_update_rate is the share applied to the size (0: no trend,
    # plain damping, which lags a steady growth g by g (1 - rate) / rate; lost on the validation split, RESULTS.md)
    scale_trend_gain: float = 0.0
    # the fraction of refinement's move of the centre (from where the classifier put it) applied per frame (1: all;
    # 0.5 with damped was level with damped alone on the validation split, RESULTS.md)
    center_update_rate: float = 1.0
    # keep the starting box unless refinement raises the predicted IoU by at least this much (None: always take the
    # refined box, as the paper; a good box is otherwise moved to where the predictor's maximum is, issue 11 item 6).
    keep_start_below_gain: float | None = None


@dataclass
class TrackerConfig:
    name: str = "default"
    sample: SampleConfig = field(default_factory=SampleConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)
    seed: int = 1
    device: str = "auto"  # "auto" = CUDA when available, else CPU
    # What the tracker does after a person corrects a box: "reinitialize" (fresh model from the corrected box)
    # or "update" (keep the model, train on the corrected sample). Chosen with `atom bench annotate`.
    correction_policy: str = "reinitialize"
    trace_backbone: bool = True  # run the frozen backbone as a traced, BN-folded graph (same numbers, faster)

    def replace(self, **changes) -> TrackerConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _default() -> TrackerConfig:
    return TrackerConfig()


def _multiscale() -> TrackerConfig:
    """The paper's ablation: no IoU-Net, 5 scales of ratio 1.02 searched by the classifier."""
    cfg = TrackerConfig(name="multiscale")
    cfg.refinement = RefinementConfig(use_iou_net=False)
    cfg.localization = LocalizationConfig(scale_factors=tuple(1.02**k for k in (-2, -1, 0, 1, 2)))
    return cfg


def _fast() -> TrackerConfig:
    """Fewer iterations and augmentations: for slow machines and long videos."""
    cfg = TrackerConfig(name="fast")
    cfg.augmentation = AugmentationConfig(
        rotate=(10, -10, 30, -30), blur=((2, 0.2), (0.2, 2)), dropout_copies=3
    )
    cfg.classifier = ClassifierConfig(init_gn_iter=4, init_cg_iter=32, update_cg_iter=3, train_skipping=15,
                                      sample_memory_size=120)
    cfg.refinement = RefinementConfig(num_init_random_boxes=5, iterations=3)
    return cfg


#: The ``damped`` preset's ``refinement.scale_update_rate`` (validation split, 5 runs each: 0.3, 0.5, 0.7 tried).
DAMPED_SCALE_UPDATE_RATE = 0.5


def _damped() -> TrackerConfig:
    """Full ATOM with refinement's size change damped (beyond the paper; issue 11 item 3): each frame keeps only a
    fraction of the log-size change that refinement proposes, an exponential smoother of the box size.

    Why: where refinement's answer is not the truth, it is noise around it (refining the exact box moves the log
    size by a spread of 0.10-0.13 a frame, resources/models/MODEL_CARD.md), and the classifier then learns from the
    wrong extent.  Were its answers independent noise around the truth, applying a fraction ``r`` of each change
    would leave ``r / (2 - r)`` of that noise's variance, for a lag of about ``(1 - r) / r`` frames behind a real
    size change.  The rate was chosen on the validation split over 5 runs (docs/RESULTS.md, "Issue 11: the damped
    size")."""
    cfg = TrackerConfig(name="damped")
    cfg.refinement = RefinementConfig(scale_update_rate=DAMPED_SCALE_UPDATE_RATE)
    return cfg


PRESETS = {"default": _default, "multiscale": _multiscale, "fast": _fast, "damped": _damped}


def preset(name: str) -> TrackerConfig:
    """A fresh configuration for a preset name (``default``, ``multiscale``, ``fast`` or ``damped``), optionally
    followed by ``:`` and comma-separated overrides of single fields, e.g.
    ``default:refinement.max_scale_change=1.1`` (how ablations are named on the command line: ``atom eval --preset
    ...``)."""
    base, _, overrides = name.partition(":")
    try:
        cfg = PRESETS[base.strip()]()
    except KeyError:
        raise ValueError(f"unknown preset {base!r}; choose one of {', '.join(PRESETS)}") from None
    for item in (o.strip() for o in overrides.split(",")):
        if item:
            _override(cfg, item)
    if overrides.strip():
        cfg.name = name
    return cfg


def _override(cfg: TrackerConfig, item: str) -> None:
    """Set one ``group.field=value`` (or top-level ``field=value``) of ``cfg``, parsed as the field's type."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not 1 <= len(parts) <= 2:
        raise ValueError(f"a preset override is GROUP.FIELD=VALUE, got {item!r}")
    owner = getattr(cfg, parts[0], None) if len(parts) == 2 else cfg
    field_name = parts[-1]
    if owner is None or not dataclasses.is_dataclass(owner) or field_name not in {
            f.name for f in dataclasses.fields(owner)}:
        raise ValueError(f"unknown configuration field {key.strip()!r}")
    current = getattr(owner, field_name)
    text = text.strip()
    if text.lower() in ("none", "null"):
        value = None
    elif isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{key.strip()} expects true or false, got {text!r}")
        value = text.lower() in ("true", "1")
    elif isinstance(current, int) and not isinstance(current, bool):
        value = int(text)
    elif isinstance(current, str):
        value = text
    elif isinstance(current, tuple):
        value = tuple(float(v) for v in text.replace(";", " ").split())
    else:  # float, or an optional float that is None today
        value = float(text)
    setattr(owner, field_name, value)
