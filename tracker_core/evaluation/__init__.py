"""Benchmarks over the sequences of ``tracker_core.datasets``: OPE metrics, the simulated annotator, speed.

Modules:
- ``metrics``: per-sequence curves and scores with the pytracking / LaSOT-toolkit conventions.
- ``results_io``: pytracking's raw results format (``<tracker>/<seq>.txt`` and ``<seq>_time.txt``).
- ``parallel``: a crash-tolerant spawn process pool (one failing sequence never stops a run).
- ``runner``: OPE runs with resume, and scoring of result folders.
- ``annotate_sim``: the simulated annotator and the interpolation / copy baselines.
- ``speed``: tracking speed, per-stage time, peak memory and the backbone-only bound.
- ``plots`` and ``report``: PNG curves and markdown tables.

Nothing here imports Qt; heavy imports (cv2, matplotlib, the trackers) happen inside the functions that need them.
"""
