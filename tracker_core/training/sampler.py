"""Drawing reference/test frame groups from weighted sources (reference section 5.2, 'interval' mode).

A source is chosen with probability proportional to its weight.  For a video source: a random sequence, a random
visible base (reference) frame, and test frames drawn among the visible frames at most ``max_gap`` frames from the
base (before or after it; the base itself is allowed, as in the reference).  An image dataset (COCO) repeats its
image.  The synthetic source composes its own frames.

Everything is drawn from a ``numpy.random.Generator`` given by the caller, so a group is a pure function of the
generator's seed (that is what makes pools reproducible and resumable).
"""

from __future__ import annotations

import numpy as np

from .synthetic import FrameGroup

__all__ = ["GroupSampler", "sample_frame_indices"]

MAX_GAP = 50


def sample_frame_indices(visible: np.ndarray, rng: np.random.Generator, num_tests: int = 1,
                         max_gap: int = MAX_GAP) -> tuple[int, np.ndarray]:
    """A visible base frame and ``num_tests`` visible test frames with ``|test - base| <= max_gap``.

    Args:
        visible: (N,) bool, at least one True.
    Returns:
        (base index, (num_tests,) int64 test indices); test frames are drawn with replacement.
    """
    visible = np.asarray(visible, dtype=bool)
    candidates = np.flatnonzero(visible)
    if candidates.size == 0:
        raise ValueError("a sequence without visible frames cannot give a pair")
    base = int(candidates[rng.integers(candidates.size)])
    near = candidates[np.abs(candidates - base) <= max_gap]  # never empty: it holds the base itself
    return base, near[rng.integers(near.size, size=num_tests)].astype(np.int64)


class GroupSampler:
    """Draws :class:`FrameGroup` objects (1 reference + K test frames) from weighted sources.

    Sources are :class:`~tracker_core.training.sources.SequenceSource` (video or image datasets) or
    :class:`~tracker_core.training.synthetic.SyntheticSource`; each has a ``weight``.
    """

    def __init__(self, sources: list, max_gap: int = MAX_GAP, min_visible: int = 2):
        if not sources:
            raise ValueError("no training sources")
        self.sources = sources
        self.max_gap = int(max_gap)
        self.min_visible = int(min_visible)
        weights = np.array([float(s.weight) for s in sources], dtype=np.float64)
        self.probabilities = weights / weights.sum()

    def sample(self, rng: np.random.Generator, num_tests: int = 1) -> FrameGroup:
        source = self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]
        if getattr(source, "kind", "") == "synthetic":
            return source.make_group(rng, num_tests)
        for _ in range(100):
            seq = source.sequence(int(rng.integers(len(source))))
            if source.image_dataset or int(seq.visible.sum()) >= self.min_visible:
                break
        if source.image_dataset:
            image = seq.read(0)
            box = seq.boxes[0]
            return FrameGroup(image, box.copy(), [image] * num_tests, np.repeat(box[None], num_tests, 0),
                              origin=f"{source.kind}/{seq.name}")
        base, tests = sample_frame_indices(seq.visible, rng, num_tests, self.max_gap)
        ref = seq.read(base)
        cache = {base: ref}
        images = []
        for t in tests.tolist():
            if t not in cache:
                cache[t] = seq.read(t)
            images.append(cache[t])
        origin = f"{source.kind}/{seq.name}/{base}:{','.join(str(t) for t in tests.tolist())}"
        return FrameGroup(ref, seq.boxes[base].copy(), images, seq.boxes[tests].copy(), origin=origin)
