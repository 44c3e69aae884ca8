"""Benchmarks: dataset loaders, OPE metrics, the simulated annotator and speed measurements.

Modules:
- ``datasets``: ``load_dataset(kind, path)`` for otb, lasot, got10k, vot, trackingnet, uav123, nfs -> ``Sequence``.
- ``metrics``: per-sequence curves and scores with the pytracking / LaSOT-toolkit conventions.
- ``results_io``: pytracking's raw results format (``<tracker>/<seq>.txt`` and ``<seq>_time.txt``).
- ``parallel``: a crash-tolerant spawn process pool (one failing sequence never stops a run).
- ``runner``: OPE runs with resume, and scoring of result folders.
- ``annotate_sim``: the simulated annotator and the interpolation / copy baselines.
- ``speed``: tracking speed, per-stage time, peak memory and the backbone-only bound.
- ``plots`` and ``report``: PNG curves and markdown tables.

Nothing here imports Qt; heavy imports (cv2, matplotlib, the trackers) happen inside the functions that need them.
"""
