"""A crash-tolerant task runner: inline for one job, a spawn process pool for several.

Why spawn: forked workers inherit the parent's torch/OpenMP and CUDA state, which deadlocks or fails with CUDA;
spawn starts clean interpreters.  Each worker is limited to one torch and one OpenCV thread, because N workers
with N threads each would oversubscribe the cores and make every sequence slower (and timings meaningless).

Failure policy: an exception inside a task becomes a :class:`TaskFailure` result, never an exception in the
caller, so one bad sequence is reported and the others finish.  A worker that dies outright (segfault, out of
memory) breaks the whole pool; the tasks that were in flight are then retried one by one, each in a fresh
single-worker pool, so only the task that really crashes is reported as failed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any


@dataclass
class TaskFailure:
    """What went wrong in one task: a one-line message and the traceback (for a log file)."""

    message: str
    details: str = ""


def limit_threads(threads: int | None) -> None:
    """Set torch's and OpenCV's thread counts (None leaves the libraries' defaults).

    torch is configured through ``OMP_NUM_THREADS`` when it is not imported yet (it reads the variable when it
    starts), so a worker that never needs torch does not pay for importing it.
    """
    if threads is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(int(threads))
    try:
        import cv2

        cv2.setNumThreads(int(threads))
    except Exception:  # noqa: BLE001 - OpenCV missing or built without threading support
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(threads))


def _init_worker(threads: int | None) -> None:
    limit_threads(threads)


def _guarded(fn: Callable[[Any], Any], task: Any) -> Any:
    try:
        return fn(task)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure of one task is reported, not fatal
        return TaskFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc())


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any], jobs: int = 1,
              on_result: Callable[[Any, Any], None] | None = None, threads_per_worker: int | None = 1,
              isolate: bool = False) -> list:
    """Run ``fn(task)`` for every task; returns the results in task order (``TaskFailure`` for failed ones).

    ``fn`` must be a module-level function and tasks picklable when ``jobs > 1``.  ``on_result(task, result)``
    is called in the parent as each task finishes (progress lines, incremental writes).  ``isolate`` runs even a
    single job in a child process (fresh memory statistics and thread settings, e.g. for speed measurements).
    ``threads_per_worker=None`` keeps the libraries' default thread counts in the workers.
    """
    tasks = list(tasks)
    results: list = [None] * len(tasks)

    def finish(i: int, result: Any) -> None:
        results[i] = result
        if on_result is not None:
            on_result(tasks[i], result)

    if not tasks:
        return results
    if not isolate and (jobs <= 1 or len(tasks) <= 1):
        for i, task in enumerate(tasks):
            finish(i, _guarded(fn, task))
        return results

    workers = max(1, min(jobs, len(tasks)))
    broken = _run_pool(fn, tasks, list(range(len(tasks))), workers, threads_per_worker, finish)
    for i in broken:  # isolate: a second crash is then certainly this task's own
        again = _run_pool(fn, tasks, [i], 1, threads_per_worker, finish)
        if again:
            finish(i, TaskFailure("the worker process died (crash or out of memory)"))
    return results


def _run_pool(fn, tasks, indices, workers, threads, finish) -> list[int]:
    """Run ``tasks[indices]`` in one pool; returns the indices lost to a broken pool."""
    ctx = mp.get_context("spawn")
    lost: list[int] = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,))
    try:
        futures = {pool.submit(_guarded, fn, tasks[i]): i for i in indices}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                result = fut.result()
            except BrokenProcessPool:
                lost.append(i)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be unpickled
                result = TaskFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc())
            finish(i, result)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return sorted(lost)
