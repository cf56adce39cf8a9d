"""What every study shares: seeding, running replicate tasks, the result type.

Reproducibility: a study's ``random_seed`` is expanded with :class:`numpy.random.SeedSequence`
into one independent stream per task (task = one sample size and replicate), so a run on a
process pool or a Dask cluster gives exactly the numbers of the serial run. Tasks are sent in
chunks; each worker process compiles a model structure once and reuses it for every task of
every chunk it receives (the compiled-model cache is per process).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.errors import Diagnostic, SpecError

__all__ = ["StudyResult", "check_ns", "check_reps", "run_tasks", "task_rngs"]


def task_rngs(random_seed: int | None, n_tasks: int) -> list[np.random.SeedSequence]:
    """One independent seed sequence per task, derived from ``random_seed``.

    Examples
    --------
    One stream per task; the same seed gives the same streams:

    >>> import numpy as np
    >>> from bayesmle.studies._runner import task_rngs
    >>> seeds = task_rngs(0, 3)
    >>> len(seeds)
    3
    >>> draw = [int(np.random.default_rng(s).integers(1000)) for s in seeds]
    >>> draw == [int(np.random.default_rng(s).integers(1000)) for s in task_rngs(0, 3)]
    True
    """
    if random_seed is None or isinstance(random_seed, bool) or not isinstance(
            random_seed, int | np.integer):
        raise SpecError(f"`random_seed` must be an int (studies are always seeded), got "
                        f"{random_seed!r}.")
    return np.random.SeedSequence(int(random_seed)).spawn(n_tasks)


def check_ns(ns: Iterable[int], minimum: int = 2, name: str = "ns") -> list[int]:
    """Validate a grid of sample sizes: integers >= ``minimum``, at least one.

    Examples
    --------
    >>> from bayesmle.studies._runner import check_ns
    >>> check_ns([10, 100.0])
    [10, 100]
    >>> check_ns([1, 10])
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `ns` must be a non-empty sequence of integers >= 2, got [1, 10].
    """
    if isinstance(ns, str | bytes) or not isinstance(ns, Iterable):
        raise SpecError(f"`{name}` must be a sequence of integers, got {ns!r}.")
    raw = list(ns)
    shown = _short(raw)
    if len(raw) > MAX_SIZES:
        raise SpecError(f"`{name}` has {len(raw):,} sample sizes; at most {MAX_SIZES:,} are "
                        f"allowed.")
    ok = all(isinstance(v, int | np.integer | float | np.floating) and not isinstance(v, bool)
             and np.isfinite(v) and float(v) == int(v) for v in raw)
    if not raw or not ok or min(int(v) for v in raw) < minimum:
        raise SpecError(f"`{name}` must be a non-empty sequence of integers >= {minimum}, got "
                        f"{shown}.")
    values = [int(v) for v in raw]
    if max(values) > MAX_N:
        raise SpecError(f"`{name}` holds {max(values):,}; simulated data sets are limited to "
                        f"{MAX_N:,} rows.")
    return values


def _short(values: list) -> str:
    text = repr(values)
    return text if len(text) <= 120 else text[:117] + "..."


#: Bounds of a study, checked before anything is allocated: replicates per sample size,
#: sample sizes per grid, rows per simulated data set, and the total simulated rows.
MAX_REPS = 1_000_000
MAX_SIZES = 1_000
MAX_N = 10_000_000
MAX_TOTAL_ROWS = 10_000_000_000


def check_reps(reps: int, name: str = "reps", minimum: int = 1,
               ns: Sequence[int] = ()) -> int:
    """Validate a replicate count, and the size of the whole study when ``ns`` is given.

    Examples
    --------
    >>> from bayesmle.studies._runner import check_reps
    >>> check_reps(20)
    20
    >>> check_reps(10**9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: `reps` must be an integer >= 1 and <= 1,000,000, got 1000000000.
    """
    if (isinstance(reps, bool) or not isinstance(reps, int | np.integer)
            or not minimum <= reps <= MAX_REPS):
        raise SpecError(f"`{name}` must be an integer >= {minimum} and <= {MAX_REPS:,}, got "
                        f"{reps!r}.")
    tasks = len(ns) * int(reps)
    if tasks > MAX_REPS:
        raise SpecError(f"`ns` x `{name}` = {len(ns)} x {int(reps):,} = {tasks:,} replicate "
                        f"fits; at most {MAX_REPS:,} are allowed in one study.")
    rows = sum(ns) * int(reps)
    if rows > MAX_TOTAL_ROWS:
        raise SpecError(f"`ns` x `{name}` would simulate {rows:,} rows in total; at most "
                        f"{MAX_TOTAL_ROWS:,} are allowed in one study (fewer replicates or "
                        f"smaller sample sizes).")
    return int(reps)


def _run_chunk(func: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Any]:
    return [func(task) for task in chunk]


def _worker_count(executor) -> int:
    """Parallel slots of an executor.

    ``_max_workers`` of the standard library's executors, the total thread count of the
    cluster behind a Dask ``Client.get_executor()``, else 2.
    """
    workers = getattr(executor, "_max_workers", None)
    client = getattr(executor, "_client", None)
    if not workers and client is not None and hasattr(client, "nthreads"):
        try:
            workers = sum(client.nthreads().values())
        except Exception:  # noqa: BLE001 - a closed or unusual client: fall back
            workers = None
    return int(workers) if workers else 2


def run_tasks(func: Callable[[Any], Any], tasks: Sequence[Any], executor=None,
              n_chunks: int | None = None) -> list[Any]:
    """``[func(t) for t in tasks]``, on ``executor`` if given (results in task order).

    ``executor`` is anything with the :class:`concurrent.futures.Executor` interface
    (``submit``): a ``ProcessPoolExecutor``, or ``distributed.Client(...).get_executor()``.
    ``func`` and the tasks must be picklable for process-based executors (module-level
    functions, not lambdas).

    Examples
    --------
    The results come back in task order, serially or on any executor:

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from bayesmle.studies._runner import run_tasks
    >>> run_tasks(abs, [-1, 2, -3])
    [1, 2, 3]
    >>> with ThreadPoolExecutor(2) as pool:
    ...     run_tasks(abs, [-1, 2, -3], executor=pool)
    [1, 2, 3]
    """
    tasks = list(tasks)
    if executor is None:
        return [func(task) for task in tasks]
    if not hasattr(executor, "submit"):
        raise SpecError(f"`executor` must have the concurrent.futures.Executor interface "
                        f"(a submit method), got {type(executor).__name__}.")
    workers = _worker_count(executor)
    n_chunks = n_chunks or min(len(tasks), 4 * workers)
    size = max(1, math.ceil(len(tasks) / max(n_chunks, 1)))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    futures = [executor.submit(_run_chunk, func, chunk) for chunk in chunks]
    return [out for fut in futures for out in fut.result()]


@dataclass(frozen=True, eq=False)
class StudyResult(ABC):
    """Base of every study's result: a tidy ``table`` and a ``plot()``.

    Examples
    --------
    >>> from bayesmle import studies
    >>> res = studies.bias(ns=[5, 10], reps=2)
    >>> isinstance(res, studies.StudyResult), len(res.table), res.diagnostics
    (True, 2, ())
    """

    table: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    #: Statistical problems met by the fits a study reports on, as data (never emitted).
    diagnostics: tuple[Diagnostic, ...] = ()

    @abstractmethod
    def plot(self):
        """The study's figure (matplotlib)."""

    def _repr_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self._repr_name()}: {len(self.table)} rows>"
