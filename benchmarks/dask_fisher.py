"""Case 6: a replicate study on a Dask ``distributed.LocalCluster`` with 1 and 2 workers.

``bayesmle.studies.fisher(models.poisson, {"rate": 3.0}, ns, reps, random_seed=0,
executor=client.get_executor())`` with 200 simulations in all, on a real distributed scheduler
(``LocalCluster(n_workers=k, threads_per_worker=1, processes=True)``). Each worker is warmed up
first with ``client.run`` (imports bayesmle and compiles the Poisson structure), because a
study on a long-lived cluster pays that once per worker, not per study. The serial study in
this process is timed too, and the three tables must be identical (the study seeds every
replicate independently of where it runs).
"""

from __future__ import annotations

import logging

import numpy as np

from benchmarks._harness import CaseResult, Check, Config, Target, measure, quiet, timed

NAME = "dask_fisher"
TITLE = "6. Replicate study (Fisher/CRLB, 200 simulations) on Dask: 1 vs 2 workers"

TRUE = {"rate": 3.0}


def _spin(n: int = 4_000_000) -> int:
    """Pure-Python CPU work (no memory traffic, no BLAS) for the parallelism control."""
    s = 0
    for i in range(n):
        s += i * i
    return s


def parallel_capacity(reps: int = 3) -> float:
    """Speed-up that two processes can get on this machine right now (2 = two free cores).

    Times one CPU-bound task alone and two at once on a two-process pool (median of ``reps``).
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [10, 10]))
        one = measure(lambda: pool.submit(_spin).result(), reps, warmup=0)[0].median
        two = measure(lambda: list(pool.map(_spin, [4_000_000] * 2)), reps, warmup=0)[0].median
    return 2.0 * one / two


def _design(quick: bool) -> tuple[list[int], int]:
    # 200 simulations: 4 sample sizes x 50 replicates (quick: 2 x 20)
    return ([200, 2_000], 20) if quick else ([1_000, 10_000, 50_000, 200_000], 50)


def run(cfg: Config) -> CaseResult:
    from distributed import Client, LocalCluster

    from bayesmle import models, studies

    res = CaseResult(NAME, TITLE)
    ns, reps = _design(cfg.quick)
    res.notes.append(f"Poisson(rate=3) MLE; ns={ns}, reps={reps} per n "
                     f"({len(ns) * reps} simulations and fits).")

    def study(executor=None):
        return studies.fisher(models.poisson, TRUE, ns, reps, random_seed=0, executor=executor)

    with quiet():
        study_small = lambda: studies.fisher(models.poisson, TRUE, [50], 2)  # noqa: E731
        study_small()
        t_serial, serial = measure(study, cfg.r(3, 1), warmup=0)
    res.row("serial, in this process (warm)", "bayesmle", t_serial)
    capacity = parallel_capacity(cfg.r(5, 3))
    res.row("control: speed-up of a pure-Python CPU task on 2 processes vs 1", "(machine)",
            capacity, "×", cfg.r(5, 3), note="2× = two idle cores; less = the machine is busy")
    timings, tables = {}, {"serial": serial.table}
    for workers in (1, 2):
        with quiet(), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            t_start, _ = timed(lambda c=client: c.run(
                studies.fisher, models.poisson, TRUE, [50], 2))
            executor = client.get_executor()
            t, out = measure(lambda e=executor: study(e), cfg.r(3, 1), warmup=0)
        timings[workers] = t
        tables[workers] = out.table
        res.row(f"LocalCluster, {workers} worker{'s' if workers > 1 else ''}", "bayesmle + Dask",
                t, note=f"worker warm-up (import + compile) {t_start:.1f} s, not counted")
    speedup = timings[1].median / timings[2].median
    res.targets.append(Target(
        NAME, "time with 1 worker / time with 2 workers (speed-up)", speedup, 1.7, "ge",
        f"{timings[2].median:.3g} s (2 workers)", f"{timings[1].median:.3g} s (1 worker)",
        why=f"the control line shows what two processes could gain on this machine during the "
            f"run ({capacity:.2f}×): the two workers share two cores with the client, the "
            f"scheduler and everyone else's load (see the load average in 'Machine')."))
    cols = ["var_mle", "mean_mle", "n_ok"]
    diff = max(float(np.nanmax(np.abs(tables[k][cols].to_numpy(float)
                                      - tables["serial"][cols].to_numpy(float))))
               for k in (1, 2))
    res.checks.append(Check(NAME, "max |table(Dask) − table(serial)| (must be identical)",
                            diff, 0.0))
    return res
