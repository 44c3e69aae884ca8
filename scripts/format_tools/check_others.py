"""OTB, TrackingNet and LaSOT exports read by vot-toolkit 0.9.0 and got10k 0.1.3."""
import os, sys
import numpy as np
import vot.dataset.otb as vot_otb
import vot.dataset.trackingnet as vot_tn
from got10k.datasets import TrackingNet, LaSOT

otb_seq = vot_otb.read_sequence(sys.argv[1])
print("vot-toolkit OTB:", otb_seq.name, len(otb_seq), "frames", otb_seq.size, type(otb_seq.groundtruth(0)).__name__)

# (vot-toolkit 0.9.0's TrackingNet reader cannot read any copy: it passes the dataset root to read_trajectory)
# got10k 0.1.3's TrackingNet class finds our annotations, but its __getitem__ looks for frames in TEST/<video>/
# (the official layout is TEST/frames/<video>/) and sorts them with int() of the whole path: it reads no copy.
tn = TrackingNet(sys.argv[2], subset="test")
for f in tn.anno_files:
    anno = np.loadtxt(f, delimiter=",")  # its annotation reading
    frames = len(os.listdir(os.path.join(os.path.join(sys.argv[2], "TEST", "frames"), os.path.basename(f)[:-4])))
    print("got10k TrackingNet annotations:", os.path.basename(f), anno.shape, "frames in frames/<video>/:", frames)

# got10k's LaSOT class cannot be built (its _check_integrity takes 2 arguments and is called with 3); its own
# reading code (__getitem__, _fetch_meta) is run on an instance pointed at our sequences instead.
lasot = LaSOT.__new__(LaSOT)
lasot.return_meta = True
lasot.seq_names = sys.argv[4].split(",")
lasot.seq_dirs = [os.path.join(sys.argv[3], n[:n.rfind("-")], n, "img") for n in lasot.seq_names]
lasot.anno_files = [os.path.join(os.path.dirname(d), "groundtruth.txt") for d in lasot.seq_dirs]
for i, name in enumerate(lasot.seq_names):
    img_files, anno, meta = lasot[i]
    assert len(img_files) == len(anno) == len(meta["out_of_view"]) == len(meta["full_occlusion"])
    print("got10k LaSOT reading:", name, len(img_files), anno.shape, "out_of_view", int(meta["out_of_view"].sum()),
          "min w,h", anno[:, 2:].min(axis=0), "min x,y", anno[:, :2].min(axis=0))
