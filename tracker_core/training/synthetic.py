"""The synthetic composite source: objects cut out of natural images, pasted onto other natural images.

Nothing is downloaded: the images are those of :mod:`tracker_core.training.natural_images`.  A *group* is one
reference frame and a few test frames of the same scene:

* the object is a patch of a natural image cut with a random shape (ellipse, star-shaped polygon, rounded
  rectangle or smooth blob), pasted on a background view of another image;
* between the reference and each test frame it moves, changes scale and aspect ratio, rotates, gets blurred
  (Gaussian or motion blur) and changes brightness; the camera (background view) moves a little too;
* occluders (other cut-outs) cover part of the object in test frames, and look-alike distractors (re-coloured
  copies of the object, or other cut-outs of its source image) appear around it.

The ground-truth box is the tight box of the whole object's mask (also under occlusion, as benchmark annotators
box the full object), clipped to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .natural_images import load_natural_images

__all__ = ["FrameGroup", "SyntheticSource", "random_shape_mask"]


@dataclass
class FrameGroup:
    """One reference frame and K test frames of the same target.

    ref_image: (H, W, 3) uint8 RGB; ref_box: (4,) xywh.  test_images: K arrays (H', W', 3);
    test_boxes: (K, 4) xywh.  ``origin`` names where it came from (source, sequence, frame numbers).
    """

    ref_image: np.ndarray
    ref_box: np.ndarray
    test_images: list[np.ndarray]
    test_boxes: np.ndarray
    origin: str = ""


def random_shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random filled shape spanning most of an ``h x w`` patch: (h, w) float32 in [0, 1]."""
    mask = np.zeros((h, w), np.uint8)
    kind = rng.choice(4, p=[0.25, 0.3, 0.2, 0.25])
    if kind == 0:  # ellipse
        axes = (w * rng.uniform(0.85, 1.0), h * rng.uniform(0.85, 1.0))
        cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), axes, 0.0), 255, -1)
    elif kind == 1:  # star-shaped polygon with 5..12 vertices
        n = int(rng.integers(5, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.55, 1.0, n)
        pts = np.stack([(w - 1) / 2 * (1 + radii * np.cos(angles)), (h - 1) / 2 * (1 + radii * np.sin(angles))], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    elif kind == 2:  # (rounded) rectangle
        r = int(rng.uniform(0, 0.35) * min(h, w))
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 255, -1)
    else:  # smooth blob: low-frequency noise plus a radial bump, thresholded
        g = rng.normal(size=(6, 6)).astype(np.float32)
        noise = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        bump = 1.0 - ((xx - (w - 1) / 2) / (w / 2)) ** 2 - ((yy - (h - 1) / 2) / (h / 2)) ** 2
        mask[(1.6 * bump + 0.5 * noise) > 0.4] = 255
    if mask.max() == 0:
        mask[h // 4: h - h // 4, w // 4: w - w // 4] = 255
    return mask.astype(np.float32) / 255.0


@dataclass
class _Layer:
    """A cut-out: RGB patch (h, w, 3) float32 and its mask (h, w) float32."""

    rgb: np.ndarray
    mask: np.ndarray


@dataclass
class _Pose:
    """Where a layer sits in a frame: centre (x, y), size (sqrt of its area, px), aspect (w/h), angle (deg)."""

    cx: float
    cy: float
    size: float
    aspect: float
    angle: float


class SyntheticSource:
    """Composite frame groups from natural images (see the module docstring).

    ``images``: list of (H, W, 3) uint8 RGB natural images (backgrounds and object textures).
    """

    kind = "synthetic"
    image_dataset = False

    def __init__(self, images: list[np.ndarray], weight: float = 1.0, name: str = "builtin",
                 occluder_prob: float = 0.35, distractor_prob: float = 0.4):
        if len(images) < 2:
            raise ValueError("the synthetic source needs at least two natural images")
        self.images = images
        self.weight = float(weight)
        self.name = name
        self.occluder_prob = occluder_prob
        self.distractor_prob = distractor_prob

    @classmethod
    def from_spec(cls, path: str, weight: float = 1.0) -> SyntheticSource:
        """``path``: comma-separated items, each ``builtin`` (the installed registry images) or an image folder."""
        from ..errors import CommandError

        items = [p.strip() for p in (path or "builtin").split(",") if p.strip()]
        folders = [p for p in items if p.lower() != "builtin"]
        images = load_natural_images(folders, builtin=len(folders) < len(items))
        if len(images) < 2:
            raise CommandError(f"synthetic: fewer than two natural images found in {path!r}")
        return cls(images, weight, name=path or "builtin")

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> str:
        return f"synthetic:{self.name} ({len(self.images)} natural images, weight {self.weight:g})"

    # ---- building blocks ----------------------------------------------------------------------------------
    def _view(self, rng: np.random.Generator, image: np.ndarray, w: int, h: int, zoom: float = 1.0,
              shift: tuple[float, float] = (0.0, 0.0), base: tuple | None = None) -> tuple[np.ndarray, tuple]:
        """A (h, w, 3) float32 view of ``image``: a random window resized to w x h (``base`` reuses a window,
        moved by ``shift`` (fraction of its size) and zoomed by ``zoom``, for camera motion)."""
        ih, iw = image.shape[:2]
        if base is None:
            frac = rng.uniform(0.45, 1.0)
            ww = min(iw, ih * w / h) * frac
            wh = ww * h / w
            x0 = rng.uniform(0, iw - ww)
            y0 = rng.uniform(0, ih - wh)
            flip = bool(rng.random() < 0.5)
            base = (x0, y0, ww, wh, flip)
        x0, y0, ww, wh, flip = base
        cx, cy = x0 + ww / 2 + shift[0] * ww, y0 + wh / 2 + shift[1] * wh
        ww, wh = ww / zoom, wh / zoom
        sx, sy = w / ww, h / wh
        m = np.array([[sx, 0, -(cx - ww / 2) * sx], [0, sy, -(cy - wh / 2) * sy]], np.float32)
        view = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if flip:
            view = view[:, ::-1]
        return view.astype(np.float32), base

    def _cutout(self, rng: np.random.Generator, image: np.ndarray) -> _Layer:
        """A random-shaped patch of ``image`` (aspect ratio e^U(-0.9, 0.9))."""
        ih, iw = image.shape[:2]
        side = rng.uniform(0.2, 0.7) * min(ih, iw)
        aspect = math.exp(rng.uniform(-0.9, 0.9))
        pw = int(max(8, min(iw, side * math.sqrt(aspect))))
        ph = int(max(8, min(ih, side / math.sqrt(aspect))))
        x0 = int(rng.integers(0, iw - pw + 1))
        y0 = int(rng.integers(0, ih - ph + 1))
        rgb = image[y0:y0 + ph, x0:x0 + pw].astype(np.float32)
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        return _Layer(np.ascontiguousarray(rgb), random_shape_mask(rng, ph, pw))

    @staticmethod
    def _affine(layer: _Layer, pose: _Pose) -> np.ndarray:
        """2x3 matrix mapping patch pixels to frame pixels for ``pose``."""
        ph, pw = layer.mask.shape
        tw, th = pose.size * math.sqrt(pose.aspect), pose.size / math.sqrt(pose.aspect)
        sx, sy = tw / pw, th / ph
        a = math.radians(pose.angle)
        c, s = math.cos(a), math.sin(a)
        lin = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
        centre_src = np.array([pw / 2, ph / 2])
        t = np.array([pose.cx, pose.cy]) - lin @ centre_src
        return np.hstack([lin, t[:, None]]).astype(np.float32)

    def _paste(self, frame: np.ndarray, layer: _Layer, pose: _Pose, blur: float = 0.0,
               motion: tuple[float, float] = (0.0, 0.0), gain: np.ndarray | None = None) -> np.ndarray:
        """Alpha-blend ``layer`` at ``pose`` into ``frame`` in place; returns the layer's (h, w) alpha in the
        frame before blurring (the box is measured on the sharp object).  ``motion`` = (length px, angle deg)."""
        h, w = frame.shape[:2]
        m = self._affine(layer, pose)
        rgb = cv2.warpAffine(layer.rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(layer.mask, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        sharp = alpha.copy()
        if gain is not None:
            rgb = rgb * gain
        # A one-pixel feather: hard binary edges would be a cue no real frame has.
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)
        if blur > 0:
            rgb = cv2.GaussianBlur(rgb, (0, 0), blur)
            alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
        if motion[0] > 1:
            n = int(motion[0]) | 1
            k = np.zeros((n, n), np.float32)
            k[n // 2] = 1.0
            k = cv2.warpAffine(k, cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), motion[1], 1.0), (n, n))
            k /= max(k.sum(), 1e-6)
            rgb = cv2.filter2D(rgb, -1, k)
            alpha = cv2.filter2D(alpha, -1, k)
        frame *= 1.0 - alpha[:, :, None]
        frame += rgb * alpha[:, :, None]
        return sharp

    @staticmethod
    def _box_of(alpha: np.ndarray) -> np.ndarray | None:
        """Tight xywh box of ``alpha > 0.5`` (continuous: pixel k spans [k, k+1)); None when empty."""
        rows = np.flatnonzero((alpha > 0.5).any(axis=1))
        cols = np.flatnonzero((alpha > 0.5).any(axis=0))
        if rows.size == 0 or cols.size == 0:
            return None
        return np.array([cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]], np.float64)

    # ---- a group --------------------------------------------------------------------------------------------
    def make_group(self, rng: np.random.Generator, num_tests: int = 1, max_tries: int = 20) -> FrameGroup:
        """One reference frame and ``num_tests`` test frames (see the module docstring)."""
        for _ in range(max_tries):
            group = self._try_group(rng, num_tests)
            if group is not None:
                return group
        raise RuntimeError("synthetic source: could not place an object (images too small?)")

    def _try_group(self, rng: np.random.Generator, num_tests: int) -> FrameGroup | None:
        n = len(self.images)
        bg_image = self.images[int(rng.integers(n))]
        obj_image = self.images[int(rng.integers(n))]
        w = int(rng.integers(320, 641))
        h = int(round(w * rng.uniform(0.55, 0.9)))
        target = self._cutout(rng, obj_image)
        # Object sizes (sqrt of area) log-uniform in 4 %..25 % of the frame's, as most benchmark targets: larger ones
        # would make the 5x search crop mostly padding.
        size0 = math.exp(rng.uniform(math.log(0.04), math.log(0.25))) * math.sqrt(w * h)
        ph, pw = target.mask.shape
        pose0 = _Pose(rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, size0, pw / ph * math.exp(
            rng.normal(0, 0.15)), rng.normal(0, 10))
        distractors = []
        if rng.random() < self.distractor_prob:
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.5:  # a look-alike: the same cut-out, re-coloured and re-shaped
                    layer = _Layer(target.rgb, random_shape_mask(rng, ph, pw))
                    gain = np.exp(rng.normal(0, 0.12, 3)).astype(np.float32)
                else:  # another cut-out of the object's own image (same textures)
                    layer = self._cutout(rng, obj_image)
                    gain = None
                lh, lw = layer.mask.shape
                pose = _Pose(rng.uniform(0.05, 0.95) * w, rng.uniform(0.05, 0.95) * h,
                             size0 * math.exp(rng.normal(0, 0.25)), lw / lh, rng.normal(0, 15))
                distractors.append((layer, pose, gain))

        ref, ref_box, base = self._render(rng, bg_image, w, h, target, pose0, distractors, None, clean=True)
        if ref_box is None:
            return None
        tests, boxes = [], []
        for _ in range(num_tests):
            # Motion between the frames: up to about an object size of translation, scale, aspect, rotation.
            pose = _Pose(pose0.cx + rng.normal(0, 0.35) * size0, pose0.cy + rng.normal(0, 0.35) * size0,
                         size0 * math.exp(rng.normal(0, 0.2)), pose0.aspect * math.exp(rng.normal(0, 0.12)),
                         pose0.angle + rng.normal(0, 10))
            moved = [(layer, _Pose(p.cx + rng.normal(0, 0.2) * size0, p.cy + rng.normal(0, 0.2) * size0, p.size,
                                   p.aspect, p.angle + rng.normal(0, 5)), g) for layer, p, g in distractors]
            frame, box, _ = self._render(rng, bg_image, w, h, target, pose, moved, base, clean=False)
            if box is None:
                return None
            tests.append(frame)
            boxes.append(box)
        return FrameGroup(ref, ref_box, tests, np.stack(boxes), origin="synthetic")

    def _render(self, rng, bg_image, w, h, target, pose, distractors, base, clean: bool):
        """One frame; returns (uint8 frame, target box or None, background window)."""
        if base is None:
            frame, base = self._view(rng, bg_image, w, h)
        else:  # camera motion: a small pan and zoom of the same background window
            frame, _ = self._view(rng, bg_image, w, h, zoom=math.exp(rng.normal(0, 0.05)),
                                  shift=(rng.normal(0, 0.03), rng.normal(0, 0.03)), base=base)
        for layer, p, gain in distractors:
            self._paste(frame, layer, p, gain=gain)
        blur = 0.0 if clean or rng.random() > 0.3 else rng.uniform(0.5, 2.5)
        motion = (0.0, 0.0) if clean or rng.random() > 0.15 else (rng.uniform(3, 11), rng.uniform(0, 180))
        gain = None if clean else np.full(3, math.exp(rng.normal(0, 0.15)), np.float32)
        alpha = self._paste(frame, target, pose, blur=blur, motion=motion, gain=gain)
        full = alpha.sum()
        box = self._box_of(alpha)
        # The object must be mostly inside the frame (its mask area there vs. its total area).
        expected = pose.size ** 2 * float(target.mask.mean())
        if box is None or full < 0.6 * expected or min(box[2], box[3]) < 4:
            return None, None, base
        if not clean and rng.random() < self.occluder_prob:
            occ = self._cutout(rng, self.images[int(rng.integers(len(self.images)))])
            oh, ow = occ.mask.shape
            bx, by, bw, bh = box
            # Centre the occluder on the object's border region so it covers a part, not all, of it.
            u, v = rng.uniform(0.4, 1.0, 2) * rng.choice([-1, 1], 2)
            occ_pose = _Pose(bx + bw / 2 + u * bw / 2, by + bh / 2 + v * bh / 2,
                             math.sqrt(bw * bh) * rng.uniform(0.3, 0.7), ow / oh, rng.normal(0, 20))
            self._paste(frame, occ, occ_pose)
        return np.clip(frame, 0, 255).astype(np.uint8), box, base
