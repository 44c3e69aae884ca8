"""got10k 0.1.3 reads our GOT-10k export: GOT10k(root, subset='val', return_meta=True), then ExperimentGOT10k."""
import sys
import numpy as np
from got10k.datasets import GOT10k
root = sys.argv[1]
ds = GOT10k(root, subset="val", return_meta=True)
for i in range(len(ds)):
    img_files, anno, meta = ds[i]
    print(ds.seq_names[i], len(img_files), "frames", anno.shape, "resolution", meta["resolution"],
          "cut_by_image", int(meta["cut_by_image"].sum()), "absence", int(meta["absence"].sum()),
          "cover>0", int((meta["cover"] > 0).sum()))
    assert len(img_files) == len(anno) == len(meta["cover"]) == len(meta["cut_by_image"])
# the evaluation: our own boxes as a tracker's results must score AO 1
import os, shutil
from got10k.experiments import ExperimentGOT10k
res = os.path.join(root, "_results")  # identity results and the report, beside the split
shutil.rmtree(res, ignore_errors=True)
for i, name in enumerate(ds.seq_names):
    _, anno, _ = ds[i]
    d = os.path.join(res, "GOT-10k", "identity", name)
    os.makedirs(d, exist_ok=True)
    np.savetxt(os.path.join(d, f"{name}_001.txt"), anno, fmt="%.4f", delimiter=",")
    np.savetxt(os.path.join(d, f"{name}_time.txt"), np.full(len(anno), 0.01), fmt="%.4f")
exp = ExperimentGOT10k(root, subset="val", result_dir=res, report_dir=res + "_report")
report = exp.report(["identity"])
print("AO", report["identity"]["overall"]["ao"], "SR50", report["identity"]["overall"]["sr"])
