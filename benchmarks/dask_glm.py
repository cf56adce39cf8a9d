"""Case 10: an out-of-core logistic-regression MLE on Dask, 1e7 x 20, with 1 and 2 workers.

The data are generated chunk-wise inside the graph (``map_blocks`` with one seed per block:
``default_rng([seed, block])``), so no piece larger than a chunk ever exists, and every pass
over the data regenerates them where they are used -- the timings include generation, as a
read from disk would. ``fit(logistic_regression(X, y), "mle")`` on the lazy arrays runs on a
``LocalCluster(n_workers=k, threads_per_worker=1, processes=True, memory_limit=...)`` for
k = 1, 2: wall time, and the peak resident memory of each worker process
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` via ``client.run``, after a warm-up that imports
bayesmle in the workers; the warm-up's own peak is reported as the baseline). The same data
are then computed into memory and fitted by the in-memory engine: both answers must agree to
1e-10 (relative), and the two Dask runs must be identical.

The larger-than-memory-budget demonstration is run by hand (not in ``python -m benchmarks``)::

    python -m benchmarks.dask_glm --rows 1e8 --workers 2 --memory-limit 2GiB

which skips the in-memory comparison above ``IN_MEMORY_MAX_ROWS`` and prints the rows.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

import numpy as np

from benchmarks._harness import CaseResult, Check, Config, quiet

NAME = "dask_glm"
TITLE = "10. Out-of-core logistic MLE on Dask (1e7 × 20): 1 vs 2 workers, peak memory per worker"

D = 20
CHUNK = 250_000
SEED = 2026
#: Above this many rows the in-memory comparison fit is skipped (1e7 x 20 is 1.6 GB).
IN_MEMORY_MAX_ROWS = 20_000_000


def _block(block_id=None, *, rows: tuple[int, ...], d: int, seed: int) -> np.ndarray:
    """Block ``i`` of ``[X, y]``: standard normal X, y ~ Bernoulli(expit(0.2 + X beta))."""
    i = block_id[0]
    rng = np.random.default_rng([seed, i])
    x = rng.standard_normal((rows[i], d))
    beta = np.linspace(-0.5, 0.5, d)
    p = 1.0 / (1.0 + np.exp(-(0.2 + x @ beta)))
    y = (rng.random(rows[i]) < p).astype(np.float64)
    return np.hstack([x, y[:, None]])


def generated(n: int, d: int = D, chunk: int = CHUNK, seed: int = SEED):
    """Lazy ``X`` (n, d) and ``y`` (n,), generated block by block (never in one piece)."""
    import dask.array as da

    rows = tuple([chunk] * (n // chunk) + ([n % chunk] if n % chunk else []))
    z = da.map_blocks(_block, dtype=np.float64, chunks=(rows, (d + 1,)), rows=rows, d=d,
                      seed=seed, meta=np.empty((0, 0)))
    return z[:, :d], z[:, d]


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _warm_worker() -> float:
    import bayesmle.inference.dask_glm  # noqa: F401 - what the tasks import

    return _maxrss_mib()


def fit_on_cluster(n: int, workers: int, memory_limit: str, chunk: int = CHUNK):
    """The Dask fit on a fresh LocalCluster: (result, seconds, baseline MiB, peak MiB)."""
    from distributed import Client, LocalCluster

    import bayesmle as bm

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        base = client.run(_warm_worker)
        X, y = generated(n, chunk=chunk)
        t0 = time.perf_counter()
        res = bm.fit(bm.models.logistic_regression(X, y), "mle")
        seconds = time.perf_counter() - t0
        peak = client.run(_maxrss_mib)
    return res, seconds, list(base.values()), list(peak.values())


def fit_in_memory(n: int, chunk: int = CHUNK):
    """The same data computed into memory and fitted by the in-memory engine."""
    import dask

    import bayesmle as bm

    X, y = generated(n, chunk=chunk)
    with dask.config.set(scheduler="threads"):
        X, y = dask.compute(X, y)
    X = np.ascontiguousarray(X)
    t0 = time.perf_counter()
    res = bm.fit(bm.models.logistic_regression(X, y), "mle")
    return res, time.perf_counter() - t0, X.nbytes


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def measure(cfg: Config | None, n: int, worker_counts=(1, 2), memory_limit: str = "2GiB",
            chunk: int = CHUNK, in_memory: bool = True) -> CaseResult:
    """Run the case (the module's ``run`` and the command line share it)."""
    res = CaseResult(NAME, TITLE)
    nb = -(-n // chunk)
    res.notes.append(
        f"n={n:.3g} rows × d={D}, {nb} chunks of {chunk} rows ({chunk * (D + 1) * 8 / 2**20:.0f} "
        f"MiB each as float64); X alone would be {n * D * 8 / 2**30:.2f} GiB. Workers: "
        f"processes, 1 thread each, memory_limit={memory_limit}. Each pass over the data "
        "regenerates it chunk by chunk (generation is in the timings).")
    fits = {}
    if len(worker_counts) > 1:
        from benchmarks.dask_fisher import parallel_capacity

        res.row("control: speed-up of a pure-Python CPU task on 2 processes vs 1", "(machine)",
                parallel_capacity(3), "×", 3,
                note="2× = two idle cores; less = the machine is busy")
    with quiet():
        for k in worker_counts:
            fit, seconds, base, peak = fit_on_cluster(n, k, memory_limit, chunk)
            fits[k] = fit
            res.row(f"Dask fit, {k} worker{'s' if k > 1 else ''}: wall time", "bayesmle + Dask",
                    seconds, "s", note=fit.message)
            res.row(f"Dask fit, {k} worker{'s' if k > 1 else ''}: peak RSS per worker",
                    "bayesmle + Dask", max(peak), "MiB",
                    note=f"peaks {', '.join(f'{v:.0f}' for v in peak)} MiB; after warm-up "
                         f"(imports) {', '.join(f'{v:.0f}' for v in base)} MiB")
            res.checks.append(Check(NAME, f"Dask fit with {k} worker(s) certified "
                                    "(0 = converged)", 0.0 if fit.converged else 1.0, 0.0))
        if len(fits) == 2:
            a, b = (fits[k] for k in worker_counts)
            same = float(np.max(np.abs(a.flat_params() - b.flat_params())))
            res.checks.append(Check(NAME, "max |estimate(1 worker) − estimate(2 workers)| "
                                    "(must be identical)", same, 0.0))
        if in_memory and n <= IN_MEMORY_MAX_ROWS:
            mem, seconds, nbytes = fit_in_memory(n, chunk)
            res.row("in-memory fit of the same data (X computed first)", "bayesmle", seconds,
                    "s", note=f"X in memory: {nbytes / 2**30:.2f} GiB; this process's peak "
                              f"RSS {_maxrss_mib():.0f} MiB")
            lazy = fits[worker_counts[0]]
            res.checks.append(Check(NAME, "max relative |estimate(Dask) − estimate(in memory)|",
                                    _rel(lazy.flat_params(), mem.flat_params()), 1e-10))
            res.checks.append(Check(NAME, "max relative |stderr(Dask) − stderr(in memory)|",
                                    _rel(lazy.flat_stderr(), mem.flat_stderr()), 1e-10))
    return res


def run(cfg: Config) -> CaseResult:
    """The benchmark case: 1e7 rows (1e6 with ``--quick``), 1 and 2 workers."""
    return measure(cfg, 1_000_000 if cfg.quick else 10_000_000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dask_glm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=float, default=1e7, help="rows (default 1e7)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="worker counts to run (default: 1 2)")
    p.add_argument("--memory-limit", default="2GiB", help="memory_limit per worker")
    p.add_argument("--chunk", type=int, default=CHUNK, help="rows per chunk")
    p.add_argument("--no-in-memory", action="store_true",
                   help="skip the in-memory comparison fit")
    args = p.parse_args(argv)
    res = measure(None, int(args.rows), tuple(args.workers), args.memory_limit, args.chunk,
                  not args.no_in_memory)
    from benchmarks._report import render_text

    res.seconds = 0.0
    print(render_text([res]))  # noqa: T201 - a command-line report
    for row in res.rows:
        print(f"  {row.what}: {row.note}")  # noqa: T201
    for note in res.notes:
        print("note:", note)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
