"""The ATOM tracking loop (paper section 3; pytracking's ``tracker/atom/atom.py``), split the way the data flows.

Per sequence: the IoU-Net's reference modulation and the classifier's projection are computed once, from the first
frame.  Per frame: one crop, one backbone pass, the classifier scores, the localisation, then box refinement that
runs only the IoU-Net's RoI head.

State is kept in image coordinates, in the project's box convention: ``self.center`` (x, y) and ``self.size``
(w, h), floats.  The search region is a square of side ``5 * sqrt(w * h)`` around the current centre (no rounding
of the centre, so the crop/label geometry is exact — the reference rounds it and lives with up to half a pixel of
inconsistency, see ``sample_patch`` in pytracking's ``features/preprocessing.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from contextlib import contextmanager

import numpy as np
import torch

from .augmentation import augment, dropout_copies
from .backbones.inference import InferenceBackbone
from .boxes import Box, box_problem
from .classifier import OnlineClassifier, normalize_features
from .config import CROP_GEOMETRY, TrackerConfig, preset
from .crops import CropTransform, image_to_tensor, sample_patch, search_side
from .fourier import fourier_upsample
from .model_io import AtomModel
from .refinement import choose_box, jittered_boxes, optimize_boxes
from .refinement_head import RefinementHead
from .result import Status, TrackResult

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, otherwise CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def with_model_geometry(config: TrackerConfig, model: AtomModel) -> TrackerConfig:
    """``config`` with the crop geometry the model's IoU-Net was trained with (``model.info["sample"]``, stored by
    ``atom train``), so the tracker crops as training did; a model without one leaves ``config`` as it is.  The
    caller's ``config`` is never modified."""
    geometry = (model.info or {}).get("sample")
    if not geometry:
        return config
    sample = dataclasses.replace(config.sample, **{k: geometry[k] for k in CROP_GEOMETRY})
    if sample == config.sample:
        return config
    log.info("crop geometry of the model file: %s", geometry)
    return config.replace(sample=sample)


class _StageTimer:
    """Milliseconds per named stage; synchronises CUDA so the figures are real."""

    def __init__(self, device: torch.device):
        self.device = device
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1000.0


class AtomTracker:
    """ATOM: IoU-Net target estimation + online classifier target localisation.

    ``initialize(frame, box)`` then ``track(frame) -> TrackResult`` for each following frame.  Frames are
    (H, W, 3) uint8 RGB arrays; boxes are :class:`Box` (float x, y, w, h, 0-based).
    """

    name = "atom"

    def __init__(self, model: AtomModel, config: TrackerConfig | None = None, device: str | None = None):
        self.config = config if config is not None else preset("default")
        self.warning: str | None = None
        if self.config.refinement.use_iou_net and model.iounet is None:
            # Never track with a randomly initialised IoU-Net: fall back to the paper's multi-scale ablation.
            self.warning = ("no trained IoU-Net in this model: tracking with the 'multiscale' preset "
                            "(classifier-only scale search) instead of full ATOM")
            log.warning(self.warning)
            # Keep every other setting of the caller; take the ablation's refinement and scale search.
            ablation = preset("multiscale")
            fallback = copy.deepcopy(self.config)
            fallback.refinement = ablation.refinement
            fallback.localization.scale_factors = ablation.localization.scale_factors
            fallback.name = f"{self.config.name}->multiscale"
            self.config = fallback
        self.config = with_model_geometry(self.config, model)
        self.device = resolve_device(device or self.config.device)
        self.model = model.to(self.device)
        self.backbone = InferenceBackbone(self.model.backbone.eval(), enabled=self.config.trace_backbone)
        self.iounet = self.model.iounet.eval() if (self.model.iounet is not None
                                                  and self.config.refinement.use_iou_net) else None
        # What runs per frame, BatchNorm folded and the box gradient written out (the modulation, once per
        # sequence, comes from the network itself).
        self.refinement_head = RefinementHead(self.iounet) if self.iounet is not None else None
        self.correction_policy = self.config.correction_policy
        self.out_size = self.config.sample.image_sample_size
        self.feat_size = self.out_size // self.config.sample.feature_stride
        self.initialized = False

    # ---- geometry ---------------------------------------------------------------------------------------------
    def _side(self) -> float:
        return search_side(self.size[0], self.size[1], self.config.sample.search_area_scale)

    def _crops(self, image: torch.Tensor, scales: tuple[float, ...]) -> tuple[torch.Tensor, list[CropTransform]]:
        patches, tfs = [], []
        side = self._side()
        for s in scales:
            p, tf = sample_patch(image, self.center[0], self.center[1], side * s, self.out_size)
            patches.append(p)
            tfs.append(tf)
        return torch.cat(patches), tfs

    def _clamp_center(self, cx: float, cy: float) -> tuple[float, float]:
        # The centre may leave the image by a fraction of the target size (reference update_state).
        m = self.config.localization.max_center_outside
        w, h = self.size
        cx = min(max(cx, -m * w), self.image_size[0] + m * w)
        cy = min(max(cy, -m * h), self.image_size[1] + m * h)
        return cx, cy

    def _bounded_scale(self, w: float, h: float) -> tuple[float, float]:
        """The multi-scale search's size, bounded as the reference bounds its scale: relative to the box the tracker
        started from, at least 10 px on the side that reaches it last and at most the image in both directions.
        (The IoU-Net path is unbounded, as in the reference; a per-side clamp there changed no box on the
        validation split, issue 11.)"""
        iw, ih = self.start_size
        W, H = self.image_size
        ratio = w / iw
        low, high = max(10.0 / iw, 10.0 / ih), min(W / iw, H / ih)
        ratio = min(max(ratio, low), max(high, low))
        return iw * ratio, ih * ratio

    def _new_size(self, w: float, h: float, predicted_iou: float) -> tuple[float, float]:
        """The size to keep after refinement proposed (w, h); the paper takes it as it is (see RefinementConfig's
        options beyond the paper: a per-frame limit, keeping the size at low predicted IoU, a partial update)."""
        rc = self.config.refinement
        pw, ph = self.size
        if predicted_iou < rc.keep_size_below_iou:
            return pw, ph
        if rc.scale_trend_gain:
            # Alpha-beta filter on the log size: predict with the trend, correct by a share of the residual.
            vw, vh = self.size_trend
            ew, eh = math.log(w / pw) - vw, math.log(h / ph) - vh
            w = pw * math.exp(vw + rc.scale_update_rate * ew)
            h = ph * math.exp(vh + rc.scale_update_rate * eh)
            self.size_trend = (vw + rc.scale_trend_gain * ew, vh + rc.scale_trend_gain * eh)
        elif rc.scale_update_rate != 1.0:
            w = pw * (w / pw) ** rc.scale_update_rate
            h = ph * (h / ph) ** rc.scale_update_rate
        if rc.max_scale_change is not None:
            r = rc.max_scale_change
            w = min(max(w, pw / r), pw * r)
            h = min(max(h, ph / r), ph * r)
        return w, h

    @property
    def box(self) -> Box:
        return Box.from_center(self.center[0], self.center[1], self.size[0], self.size[1])

    # ---- first frame ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _extract(self, patches: torch.Tensor, chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        f8s, f16s = [], []
        for i in range(0, patches.shape[0], chunk):
            f8, f16 = self.backbone(patches[i:i + chunk])
            f8s.append(f8)
            f16s.append(f16)
        return torch.cat(f8s), torch.cat(f16s)

    def initialize(self, frame: np.ndarray, box: Box) -> TrackResult:
        """Start tracking ``box`` in ``frame``: augmentation, joint classifier optimisation, IoU-Net modulation."""
        box = Box.from_seq(tuple(box))
        problem = box_problem(box)
        if problem is not None:
            raise ValueError(f"the initial box {box.as_tuple()} cannot be tracked: {problem}")
        timer = _StageTimer(self.device)
        cfg = self.config
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.image_size = (frame.shape[1], frame.shape[0])
        self.center = box.center
        self.size = self.start_size = (box.w, box.h)
        self.size_trend = (0.0, 0.0)  # log-size change per frame (refinement.scale_trend_gain)
        self.frame_num = 1
        image = image_to_tensor(frame, self.device)
        with timer("backbone"):
            side = self._side()
            big, big_tf = sample_patch(image, self.center[0], self.center[1],
                                       side * cfg.augmentation.expansion_factor,
                                       int(round(self.out_size * cfg.augmentation.expansion_factor)))
            aug = augment(big, self.out_size, cfg.augmentation, self.generator)
            f8, f16 = self._extract(aug.patches)
        with timer("classifier_update"):
            feats = normalize_features(f16, cfg.classifier.normalize_power)
            offsets = aug.offsets.to(self.device) / cfg.sample.feature_stride
            if cfg.augmentation.enabled and cfg.augmentation.dropout_copies > 0:
                drop = dropout_copies(feats[:1], cfg.augmentation.dropout_copies, cfg.augmentation.dropout_p,
                                      self.generator)
                feats = torch.cat([feats, drop])
                offsets = torch.cat([offsets, offsets[:1].expand(drop.shape[0], 2)])
            sigma = cfg.classifier.output_sigma_factor * self.feat_size / cfg.sample.search_area_scale
            self.classifier = OnlineClassifier(cfg.classifier, feats.shape[1], (self.feat_size, self.feat_size),
                                               sigma, self.device, self.generator)
            self.init_losses = self.classifier.initialize(feats, offsets)
        if self.iounet is not None:
            with timer("iou_modulation"):
                # The identity augmentation is the plain search-region crop centred on the target.
                tf = CropTransform.around(self.center[0], self.center[1], side, self.out_size)
                ref_box = torch.tensor([tf.box_to_crop(box).as_tuple()], dtype=torch.float32, device=self.device)
                with torch.no_grad():
                    self.modulation = tuple(m.detach() for m in self.iounet.get_modulation(
                        (f8[:1], f16[:1]), ref_box))
        self.initialized = True
        return TrackResult(box=box, status=Status.NORMAL, max_score=1.0, iou=1.0 if self.iounet else None,
                           timings=timer.ms)

    # ---- every frame ------------------------------------------------------------------------------------------
    def track(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next frame."""
        if not self.initialized:
            raise RuntimeError("call initialize(frame, box) before track(frame)")
        cfg = self.config
        timer = _StageTimer(self.device)
        self.frame_num += 1
        self.image_size = (frame.shape[1], frame.shape[0])
        image = image_to_tensor(frame, self.device)
        scales = cfg.localization.scale_factors
        with timer("backbone"), torch.no_grad():
            patches, tfs = self._crops(image, scales)
            f8, f16 = self.backbone(patches)
        with timer("localisation"), torch.no_grad():
            test_x = self.classifier.project(normalize_features(f16, cfg.classifier.normalize_power))
            raw = self.classifier.scores(test_x)  # (S, 1, 18, 18)
            if cfg.localization.score_upsample:
                scores = fourier_upsample(raw, (self.out_size, self.out_size))[:, 0]
            else:
                scores = torch.nn.functional.interpolate(raw, size=(self.out_size, self.out_size),
                                                         mode="nearest")[:, 0]
            scores_np = scores.cpu().numpy()
            disp, scale_ind, status, s1, distractor = self._localize(scores_np, tfs)
        result = TrackResult(box=self.box, status=status, max_score=float(s1),
                             score_map=scores_np[scale_ind].astype(np.float32),
                             score_map_rect=tfs[scale_ind].image_rect)
        if distractor is not None:
            result.distractor = distractor
        if status == Status.NOT_FOUND:
            with timer("classifier_update"):
                self._train_filter(hard=False)
            result.timings = timer.ms
            return result

        tf = tfs[scale_ind]
        sample_center = self.center
        new_center = self._clamp_center(sample_center[0] + disp[0], sample_center[1] + disp[1])
        if self.iounet is not None:
            with timer("iou_features"), torch.no_grad():
                # IoU features of the unscaled crop (scale index of 1.0; the only one with the IoU-Net).
                one = slice(scale_ind, scale_ind + 1)
                iou_feat = self.refinement_head.get_iou_feat((f8[one], f16[one]))
            with timer("refinement"):
                self.center = new_center
                result.refine_start = self.box
                refined = self._refine(iou_feat, tf)
            if refined is not None:
                (cx, cy, w, h), iou_pred, props, prop_ious = refined
                self.size = self._new_size(w, h, iou_pred)
                r = cfg.refinement.center_update_rate
                if r != 1.0:  # (a + (b - a) is not always b in floating point: the paper's path stays exact)
                    cx, cy = new_center[0] + r * (cx - new_center[0]), new_center[1] + r * (cy - new_center[1])
                self.center = self._clamp_center(cx, cy)
                result.iou, result.proposals, result.proposal_ious = iou_pred, props, prop_ious
        else:
            self.center = new_center
            s = scales[scale_ind]
            self.size = self._bounded_scale(self.size[0] * s, self.size[1] * s)
        result.box = self.box

        with timer("classifier_update"):
            hard = status == Status.HARD_NEGATIVE
            if status in (Status.NORMAL, Status.HARD_NEGATIVE):
                # Only confident frames become samples; the label sits where the (refined) target is, relative
                # to the crop the sample came from.
                lr = cfg.localization.hard_negative_learning_rate if hard else cfg.classifier.learning_rate
                u, v = tf.point_to_crop(self.center[0], self.center[1])
                c = self.out_size / 2.0
                offset = torch.tensor([(v - c) / cfg.sample.feature_stride, (u - c) / cfg.sample.feature_stride],
                                      device=self.device)
                self.classifier.update(test_x[scale_ind:scale_ind + 1].detach(), offset, lr, False)
            self._train_filter(hard)
        result.timings = timer.ms
        return result

    def _train_filter(self, hard: bool) -> None:
        """The filter's CG step (reference 3.4 item 8): at once on a hard negative, else every ``train_skipping``-th
        frame whatever the frame's status (uncertain and not-found frames add no sample but still train)."""
        cfg = self.config
        if hard:
            self.classifier.optimize_filter(cfg.localization.hard_negative_cg_iter, report_losses=False)
        elif (self.frame_num - 1) % cfg.classifier.train_skipping == 0:
            self.classifier.optimize_filter(cfg.classifier.update_cg_iter, report_losses=False)

    def _localize(self, scores: np.ndarray, tfs: list[CropTransform]):
        """Advanced localisation (paper 3.2; pytracking's ``localize_advanced``) on upsampled scores (S, N, N).

        Returns (displacement (dx, dy) in image pixels, scale index, status, peak score, distractor (x, y) or None).
        """
        lc = self.config.localization
        S, N, _ = scores.shape
        flat = int(np.argmax(scores))
        scale_ind, py, px = np.unravel_index(flat, scores.shape)
        s1 = float(scores[scale_ind, py, px])
        c = N // 2
        tf = tfs[scale_ind]
        to_img = 1.0 / tf.scale * (self.out_size / N)
        d1 = np.array([px - c, py - c], dtype=np.float64)
        disp1 = tuple(d1 * to_img)
        if s1 < lc.target_not_found_threshold:
            return disp1, scale_ind, Status.NOT_FOUND, s1, None
        # Suppress the target's neighbourhood, then look for a second peak.
        tsz = np.array(self.size) * tf.scale * (N / self.out_size) * lc.target_neighborhood_scale
        x0, x1 = max(int(round(px - tsz[0] / 2)), 0), min(int(round(px + tsz[0] / 2)) + 1, N)
        y0, y1 = max(int(round(py - tsz[1] / 2)), 0), min(int(round(py + tsz[1] / 2)) + 1, N)
        masked = scores[scale_ind].copy()
        masked[y0:y1, x0:x1] = -np.inf
        flat2 = int(np.argmax(masked))
        qy, qx = np.unravel_index(flat2, masked.shape)
        s2 = float(masked[qy, qx]) if np.isfinite(masked[qy, qx]) else -np.inf
        d2 = np.array([qx - c, qy - c], dtype=np.float64)
        disp2 = tuple(d2 * to_img)
        distractor_xy = tf.point_to_image(qx * self.out_size / N, qy * self.out_size / N)
        thr = lc.displacement_scale * math.sqrt(N * N) / 2.0
        if s2 > lc.distractor_threshold * s1:
            n1, n2 = float(np.linalg.norm(d1)), float(np.linalg.norm(d2))
            if n1 <= thr < n2:
                return disp1, scale_ind, Status.HARD_NEGATIVE, s1, distractor_xy
            if n2 <= thr < n1:
                # The second peak is near the previous position and the first is far: trust the near one.
                return disp2, scale_ind, Status.HARD_NEGATIVE, s1, distractor_xy
            return disp1, scale_ind, Status.UNCERTAIN, s1, distractor_xy
        if s2 > lc.hard_negative_threshold * s1 and s2 > lc.target_not_found_threshold:
            return disp1, scale_ind, Status.HARD_NEGATIVE, s1, distractor_xy
        return disp1, scale_ind, Status.NORMAL, s1, None

    def _refine(self, iou_feat, tf: CropTransform):
        """IoU maximisation (paper 3.3): jittered boxes, gradient ascent on the predicted IoU, mean of the top k.

        Returns ((cx, cy, w, h) image, predicted IoU in [0, 1], proposals (P, 4) image xywh, their IoUs) or None.
        """
        rc = self.config.refinement
        init = torch.tensor(tf.box_to_crop(self.box).as_tuple(), dtype=torch.float32)
        boxes = jittered_boxes(init, rc.num_init_random_boxes, rc.box_jitter_pos, rc.box_jitter_sz, self.generator)
        # Inference mode: nothing here is ever differentiated (the head writes its gradient out), and skipping
        # autograd's bookkeeping takes about a seventh off the hundreds of small operations.
        with torch.inference_mode():
            boxes, ious, start_scores = optimize_boxes(self.refinement_head, self.modulation, iou_feat,
                                                       boxes.to(self.device).unsqueeze(0), rc.iterations,
                                                       rc.step_length, rc.step_decay, with_start_scores=True)
        boxes, ious = boxes[0].cpu(), ious[0].cpu()
        chosen = choose_box(boxes, ious, init, start_scores[0, 0].cpu(), rc)
        if chosen is None:
            return None
        best, best_iou = chosen
        pred_iou = float(((best_iou + 1) / 2).clamp(0, 1))
        img_box = tf.box_to_image(best.tolist())
        props = tf.boxes_to_image(boxes).numpy().astype(np.float32)
        prop_ious = ((ious.numpy() + 1) / 2).clip(0, 1).astype(np.float32)
        cx, cy = img_box.center
        return (cx, cy, img_box.w, img_box.h), pred_iou, props, prop_ious

    def warm_up(self) -> None:
        """Pay now the first frame's one-time costs that do not depend on the frame (about 0.6 s on a 2-core CPU):
        tracing the backbone's per-frame graph (one crop; crop by crop for the multi-scale search on a CPU, its
        batch on a GPU) and the imports torch makes on its first ``autograd.grad`` with output gradients (sympy,
        for the first frame's double backprop).  The app calls this while the person draws the box."""
        n = len(self.config.localization.scale_factors)
        self.backbone(torch.zeros(n, 3, self.out_size, self.out_size, device=self.device))
        x = torch.zeros(1, requires_grad=True)
        with torch.enable_grad():
            torch.autograd.grad(x * 2, x, grad_outputs=torch.ones(1))

    def backbone_only_fps(self, min_seconds: float = 1.0, max_reps: int = 200) -> float:
        """Forward passes per second of the backbone alone on one crop, run exactly as tracking runs it (traced
        graph, same device): the physical limit of a tracker that needs one backbone pass per frame."""
        x = torch.rand(1, 3, self.out_size, self.out_size, device=self.device) * 255.0
        sync = (lambda: torch.cuda.synchronize(self.device)) if self.device.type == "cuda" else (lambda: None)
        for _ in range(3):
            self.backbone(x)
        sync()
        reps, t0 = 0, time.perf_counter()
        while reps < max_reps and (reps < 5 or time.perf_counter() - t0 < min_seconds):
            self.backbone(x)
            reps += 1
        sync()
        return reps / (time.perf_counter() - t0)

    # ---- corrections ------------------------------------------------------------------------------------------
    def update_with_box(self, frame: np.ndarray, box: Box) -> None:
        """Continue from a box the person corrected in ``frame``.

        ``reinitialize``: start afresh from the corrected box (new classifier, new modulation).
        ``update``: keep the learnt model, move the state to the box and train on the corrected sample at once
        with the hard-negative learning rate.
        """
        if not self.initialized or self.correction_policy == "reinitialize":
            self.initialize(frame, box)
            return
        cfg = self.config
        box = Box.from_seq(tuple(box))
        self.center, self.size = box.center, (box.w, box.h)
        self.start_size = self.size
        self.size_trend = (0.0, 0.0)
        self.image_size = (frame.shape[1], frame.shape[0])
        image = image_to_tensor(frame, self.device)
        with torch.no_grad():
            patch, tf = sample_patch(image, self.center[0], self.center[1], self._side(), self.out_size)
            f8, f16 = self.backbone(patch)
            x = self.classifier.project(normalize_features(f16, cfg.classifier.normalize_power))
        self.classifier.update(x, torch.zeros(2, device=self.device), cfg.localization.hard_negative_learning_rate,
                               True, cfg.localization.hard_negative_cg_iter)
