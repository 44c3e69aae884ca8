"""vot-toolkit 0.9.0 reads our VOT export: list_sequences, read_sequence (and read_sequence_legacy fails)."""
import sys, os
from vot.dataset.common import list_sequences, read_sequence

root = sys.argv[1]
names = list_sequences(root)
print("list.txt:", names)
for name in names:
    seq = read_sequence(os.path.join(root, name))
    gt = [seq.groundtruth(i) for i in range(len(seq))]
    kinds = {type(r).__name__ for r in gt}
    frame = seq.frame(0).channel("color")
    print(name, "length", len(seq), "size", seq.size, "regions", kinds, "frame0", frame.shape,
          "empty", sum(r.is_empty() for r in gt), "label", seq.metadata("label"))
    assert len(gt) == len(seq) and frame.shape[:2] == seq.size[::-1]
