"""Datumaro 1.13 reads our CVAT for video 1.1 and our MOT (origin 0) exports, boxes equal to the project's."""
import sys, json
from datumaro.components.dataset import Dataset
from datumaro.components.annotation import AnnotationType
cvat_dir, mot_dir, project = sys.argv[1:4]
proj = json.load(open(project))
want = {}
for o in proj["objects"]:
    for e in o["frames"]:
        if "box" in e and not e.get("out_of_view"):
            want[(o["id"], e["frame"])] = e["box"]
for fmt, path in (("cvat", cvat_dir), ("mot_seq", mot_dir)):
    ds = Dataset.import_from(path, fmt)
    labels = [l.name for l in ds.categories()[AnnotationType.label]]
    n, worst = 0, 0.0
    for item in ds:
        for ann in item.annotations:
            if ann.type != AnnotationType.bbox or ann.attributes.get("outside"):
                continue
            frame = int(item.attributes.get("frame", item.id)) if fmt == "cvat" else int(item.id) - 1
            track = ann.attributes.get("track_id")
            obj = track + 1 if fmt == "cvat" else track
            x, y, w, h = want[(obj, frame)]
            worst = max(worst, abs(ann.x - x), abs(ann.y - y), abs(ann.w - w), abs(ann.h - h))
            n += 1
    print(fmt, "items", len(ds), "boxes", n, "labels", labels[:4], "max |error| px", round(worst, 4))
