"""motmetrics 1.4 and TrackEval 1.3 read our MOT export (origin 1): our gt.txt as ground truth and as a tracker's
results scores MOTA 1 / HOTA 1."""
import sys, os, shutil
import numpy as np
np.asfarray = getattr(np, "asfarray", lambda a, dtype=float: np.asarray(a, dtype))  # motmetrics 1.4 predates NumPy 2
import motmetrics as mm
seq_dir = sys.argv[1]  # <out>/<seq>
gt_file = os.path.join(seq_dir, "gt", "gt.txt")
gt = mm.io.loadtxt(gt_file, fmt="mot15-2D", min_confidence=1)
acc = mm.utils.compare_to_groundtruth(gt, gt, "iou", distth=0.5)
summary = mm.metrics.create().compute(acc, metrics=["num_frames", "mota", "idf1", "num_switches"], name="self")
print("motmetrics:", summary.to_dict("records")[0])

import trackeval
root = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "trackeval_data")  # scratch folder
shutil.rmtree(root, ignore_errors=True)
seq = os.path.basename(seq_dir.rstrip("/"))
gt_dst = os.path.join(root, "gt", "MOT17-train", seq)
shutil.copytree(os.path.join(seq_dir, "gt"), os.path.join(gt_dst, "gt"))
shutil.copy(os.path.join(seq_dir, "seqinfo.ini"), gt_dst)
os.makedirs(os.path.join(root, "seqmaps"))
with open(os.path.join(root, "seqmaps", "MOT17-train.txt"), "w") as f:
    f.write(f"name\n{seq}\n")
data = os.path.join(root, "trackers", "MOT17-train", "identity", "data")
os.makedirs(data)
shutil.copy(gt_file, os.path.join(data, f"{seq}.txt"))  # our file as a tracker's results, class column included
cfg = trackeval.Evaluator.get_default_eval_config()
cfg.update(PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False, OUTPUT_SUMMARY=False,
           OUTPUT_DETAILED=False, PLOT_CURVES=False, USE_PARALLEL=False)
dcfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
dcfg.update(GT_FOLDER=os.path.join(root, "gt"), TRACKERS_FOLDER=os.path.join(root, "trackers"),
            SEQMAP_FOLDER=os.path.join(root, "seqmaps"), BENCHMARK="MOT17", SPLIT_TO_EVAL="train",
            TRACKERS_TO_EVAL=["identity"], PRINT_CONFIG=False)
res, msg = trackeval.Evaluator(cfg).evaluate([trackeval.datasets.MotChallenge2DBox(dcfg)],
                                             [trackeval.metrics.HOTA(dict(PRINT_CONFIG=False)),
                                              trackeval.metrics.CLEAR(dict(PRINT_CONFIG=False))])
print("TrackEval:", msg)
r = res["MotChallenge2DBox"]["identity"]["COMBINED_SEQ"]["pedestrian"]
print("TrackEval: HOTA", float(r["HOTA"]["HOTA"].mean()), "MOTA", float(r["CLEAR"]["MOTA"]))
