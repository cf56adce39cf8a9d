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
    try:
        values = [int(v) for v in ns]
        ok = all(float(v) == int(v) for v in ns)
    except (TypeError, ValueError):
        raise SpecError(f"`{name}` must be a sequence of integers, got {ns!r}.") from None
    if not values or not ok or min(values) < minimum:
        raise SpecError(f"`{name}` must be a non-empty sequence of integers >= {minimum}, got "
                        f"{list(ns)!r}.")
    return values


def check_reps(reps: int, name: str = "reps", minimum: int = 1) -> int:
    """Validate a replicate count.

    Examples
    --------
    >>> from bayesmle.studies._runner import check_reps
    >>> check_reps(20)
    20
    """
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < minimum:
        raise SpecError(f"`{name}` must be an integer >= {minimum}, got {reps!r}.")
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
