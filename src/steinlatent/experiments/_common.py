"""Shared machinery of the reproduction experiments: seeds, a resumable CSV, parallel runs.

An experiment is a list of *tasks* (dicts of plain values, e.g. one repetition of one
setting). A task function maps a task to a list of result rows (dicts). :func:`run_tasks`

* skips tasks whose key is already in the results CSV (so an interrupted run resumes),
* runs the rest in parallel with joblib, one BLAS / torch thread per worker,
* appends each finished task's rows to the CSV at once (a task is all-or-nothing),
* shows a tqdm progress bar, and
* on Ctrl-C stops cleanly, keeping every finished task on disk.

Seeds come from :func:`task_seed`, a stable hash of the task key, so a repetition gets
the same data whatever the order, the number of workers or the resume point.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .._utils import progress as progress_bar

__all__ = [
    "task_seed",
    "task_key",
    "ResultStore",
    "run_tasks",
    "limit_threads",
    "timed",
]


def task_seed(base_seed: int, *key) -> int:
    """A 32-bit seed determined by ``base_seed`` and the values in ``key``.

    Uses CRC-32 of the key's text (stable across processes and Python versions, unlike
    ``hash``) mixed with ``base_seed`` through :class:`numpy.random.SeedSequence`.

    Examples
    --------
    >>> task_seed(0, "t", 30, 1) == task_seed(0, "t", 30, 1)
    True
    >>> task_seed(0, "t", 30, 1) != task_seed(1, "t", 30, 1)
    True
    """
    text = "|".join(str(k) for k in key).encode()
    seq = np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, zlib.crc32(text)])
    return int(seq.generate_state(1)[0])


def task_key(task: dict, key_columns: Sequence[str]) -> tuple[str, ...]:
    """The identity of a task (or of a result row) as a tuple of strings."""
    return tuple(str(task[c]) for c in key_columns)


@contextlib.contextmanager
def _locked(fh, exclusive: bool):
    """Advisory lock on an open file (POSIX), so several runs can share one CSV."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locking, run one process per file
        yield
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class ResultStore:
    """A tidy results CSV that grows one task at a time and knows which tasks are done.

    Appends hold an exclusive file lock, so separate processes (say, one per group
    of settings) may write to the same file.

    Parameters
    ----------
    path : str or Path
        The CSV file; created (with its folder) on the first :meth:`append`.
    key_columns : sequence of str
        Columns that identify a task. Every row a task returns must carry them.
    columns : sequence of str
        All columns, in order. Rows may omit some (written empty); extra keys are an
        error, so a typo cannot silently drop a value.
    """

    def __init__(self, path, key_columns: Sequence[str], columns: Sequence[str]):
        self.path = Path(path)
        self.key_columns = tuple(key_columns)
        self.columns = tuple(columns)
        missing = set(self.key_columns) - set(self.columns)
        if missing:
            raise ValueError(f"key_columns {sorted(missing)} are not among columns.")

    def done_keys(self) -> set[tuple[str, ...]]:
        """Keys of the tasks already in the file (empty if the file does not exist)."""
        if not self.path.exists():
            return set()
        with self.path.open(newline="") as fh, _locked(fh, exclusive=False):
            reader = csv.DictReader(fh)
            header = tuple(reader.fieldnames or ())
            if not header:
                return set()
            if header != self.columns:
                raise ValueError(
                    f"{self.path} has columns {list(header)}, expected {list(self.columns)}; "
                    "it was written by another experiment or version. Use a new --out "
                    "folder or delete the file."
                )
            return {task_key(row, self.key_columns) for row in reader}

    def append(self, rows: Iterable[dict]) -> None:
        """Append rows and flush, writing the header first if the file is new."""
        rows = list(rows)
        for row in rows:
            extra = set(row) - set(self.columns)
            if extra:
                raise ValueError(f"row has unknown columns {sorted(extra)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as fh, _locked(fh, exclusive=True):
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="raise")
            if fh.tell() == 0:  # checked under the lock: only one writer adds the header
                writer.writeheader()
            writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self):
        """The results as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.read_csv(self.path)


def limit_threads(n: int = 1) -> None:
    """Limit BLAS and torch to ``n`` threads in this process (call in each worker).

    Parallelism comes from joblib workers; nested BLAS threads would oversubscribe.
    torch is not imported here (it is slow to import): if a task imports it later, it
    reads ``OMP_NUM_THREADS``, which is set when torch is not loaded yet.
    """
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)


def timed(fn: Callable, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` and return ``(result, seconds)`` (wall clock)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _run_one(func, task, threads):
    limit_threads(threads)
    with warnings.catch_warnings():
        # Per-fit warnings (near-singular covariances, second order on linear links)
        # are expected in a grid this size; failures are recorded in the rows instead.
        warnings.simplefilter("ignore")
        return func(task)


def run_tasks(
    func: Callable[[dict], list[dict]],
    tasks: Sequence[dict],
    store: ResultStore,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    desc: str = "tasks",
    threads_per_job: int = 1,
) -> int:
    """Run every task not yet in ``store`` and append its rows as it finishes.

    Parameters
    ----------
    func : callable
        ``func(task) -> list of row dicts``. Must be picklable (a module-level function)
        when ``n_jobs != 1``.
    tasks : sequence of dict
        Each carries at least ``store.key_columns``.
    store : ResultStore
    n_jobs : int, default=1
        joblib workers (loky processes); 1 runs in this process.
    progress : bool, default=True
        Show a tqdm bar.
    desc : str
        Label of the bar.
    threads_per_job : int, default=1
        BLAS / torch threads in each worker.

    Returns
    -------
    int
        Number of tasks run now (tasks already on disk are not counted).
    """
    done = store.done_keys()
    todo = [t for t in tasks if task_key(t, store.key_columns) not in done]
    if not todo:
        return 0
    bar = progress_bar(show=progress, total=len(todo), desc=desc, unit="task")
    finished = 0
    try:
        if n_jobs == 1:
            results = (_run_one(func, t, threads_per_job) for t in todo)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_run_one)(func, t, threads_per_job) for t in todo
            )
        for rows in results:
            store.append(rows)
            finished += 1
            bar.update(1)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"Interrupted after {finished} of {len(todo)} tasks; the finished ones are in "
            f"{store.path}. Run the same command again to resume."
        ) from None
    finally:
        bar.close()
    return finished
