"""Run `atom track` on benchmark sequences and report mean IoU and frames per second (for the issue notes).

    python scripts/track_sequences.py --dataset otb:../shared/data/OTB --preset multiscale --out out/track_ms

Each sequence goes through the real command line (`atom track ... --frames A:B`), then its groundtruth.txt is
compared with the benchmark's ground truth on the frames where the target is visible.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np

from tracker_core.atomic_files import atomic_write_text
from tracker_core.boxes import iou_matrix
from tracker_core.cli import main as atom_main
from tracker_core.datasets import list_images, load_datasets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", action="append", required=True)
    ap.add_argument("--preset", default="multiscale")
    ap.add_argument("--tracker", default="atom")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = {}
    for seq in load_datasets(args.dataset):
        folder = Path(seq.frames[0]).parent
        files = [str(p) for p in list_images(folder)]
        start = files.index(seq.frames[0])
        n = len(seq.frames) if args.max_frames is None else min(len(seq.frames), args.max_frames)
        x, y, w, h = seq.gt[0]
        out = args.out / seq.name
        cmd = ["track", str(folder), "--init", f"{x},{y},{w},{h}", "--out", str(out), "--tracker", args.tracker,
               "--preset", args.preset, "--device", args.device, "--frames", f"{start}:{start + n}",
               "--threads", str(args.threads), "--quiet"]
        if args.model:
            cmd += ["--model", args.model]
        buf = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            rc = atom_main(cmd)
        line = buf.getvalue().strip().splitlines()[-1] if buf.getvalue().strip() else ""
        pred = np.loadtxt(out / "groundtruth.txt", delimiter=",", ndmin=2).astype(float)
        pred[:, :2] -= 1.0  # LaSOT files are 1-based
        valid = seq.valid_mask()[:len(pred)]
        ious = iou_matrix(pred[1:], seq.gt[1:len(pred)])[valid[1:]]
        fps = float(line.split("(")[1].split(" frames/s")[0]) if "frames/s" in line else float("nan")
        rows[seq.name] = {"frames": len(pred), "mean_iou": float(ious.mean()), "fps": fps, "rc": rc,
                          "wall_s": time.perf_counter() - t0}
        print(f"{seq.name:16s} frames {len(pred):5d}  mean IoU {ious.mean():.3f}  {fps:6.1f} frames/s", flush=True)
    total = sum(r["frames"] for r in rows.values())
    mean_iou = float(np.mean([r["mean_iou"] for r in rows.values()]))
    fps = float(np.mean([r["fps"] for r in rows.values()]))
    print(f"{'ALL':16s} frames {total:5d}  mean IoU {mean_iou:.3f} (mean over sequences)  {fps:6.1f} frames/s (mean)")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "track_summary.json", json.dumps({"sequences": rows, "mean_iou": mean_iou,
                                                                  "mean_fps": fps, "preset": args.preset}, indent=1))


if __name__ == "__main__":
    main()
