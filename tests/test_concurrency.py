"""Fits run concurrently must give the answers of the serial run, bit for bit.

A compiled model is cached per model *structure* and shared by every fit of that structure, so
fits of different data sets running at the same time in one process (threads, a Dask worker
with several threads) must not see each other's data. Every test here fits many data sets of
one structure from threads and compares each answer with two references:

* the same fit run serially, before any thread is started (a fit of one data set is a
  deterministic function of that data set and its seed, so the threaded answer must be
  *identical*: ``np.array_equal``, ``assert_frame_equal(check_exact=True)``); and
* where it is cheap, an answer that shares no code with bayesmle: statsmodels' ``Logit`` fitted
  by Newton's method for the logistic MLE, and a damped Newton solve of the Poisson
  log-posterior, written out here in numpy/scipy, for the MAP. These make sure the serial run is
  itself the right answer, so "identical to serial" cannot mean "identically wrong".

The data sets have very different true coefficients, so an answer taken from another data set is
off by a lot (the failure messages say whose answer it was), and the threaded rounds submit the
fits in a shuffled order. A replicate study (``studies.map_to_mle``) is also run on a thread
pool and on a Dask ``LocalCluster`` (two threads in one worker, in-process and in a worker
process), where the promise is the same: exactly the numbers of the serial run.

The last test checks that a fit does not touch the interpreter's warning filters
(``warnings.catch_warnings`` / ``simplefilter`` / ``filterwarnings`` / ``resetwarnings``): that
state is process-global, so changing it during a fit in one thread changes it for every other
thread (their warnings can be lost, recorded by the wrong call, or turned into errors).
"""

import random
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

import bayesmle as bm
from bayesmle import models, studies

N_DATASETS = 24
THREADS = 4
ROUNDS = 5  # threaded rounds of the point-fit and study tests (each well under a second)

# -- data (module level: picklable for Dask workers in other processes) ----------------------


def logistic_data(i, n=200, d=3):
    """Data set ``i``: its own true intercept and coefficients in [-1.5, 1.5]."""
    rng = np.random.default_rng([20260, i])
    X = rng.normal(size=(n, d))
    alpha, beta = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5, size=d)
    p = 1.0 / (1.0 + np.exp(-(alpha + X @ beta)))
    return X, (rng.random(n) < p).astype(int)


def poisson_data(i, n=200, d=3):
    """Data set ``i``: log-rate ``alpha + X beta`` with its own alpha and beta."""
    rng = np.random.default_rng([20261, i])
    X = rng.normal(size=(n, d))
    alpha, beta = rng.uniform(-0.5, 1.0), rng.uniform(-0.8, 0.8, size=d)
    return X, rng.poisson(np.exp(alpha + X @ beta))


def small_logistic_spec(i):
    """A small posterior (n=50, two predictors, Normal(2) prior on the slopes)."""
    X, y = logistic_data(1000 + i, n=50, d=2)
    return models.logistic_regression(X, y, prior=bm.Normal(2.0))


def simulate_linear(n, rng):
    """A study's data set: every replicate has its own true coefficients."""
    X = rng.normal(size=(n, 3))
    beta = rng.uniform(-2.0, 2.0, size=3)
    return {"X": X, "y": 1.0 + X @ beta + rng.normal(size=n)}


# -- references -------------------------------------------------------------------------------


def statsmodels_logit(X, y):
    """The logistic MLE by statsmodels' Newton method (intercept first)."""
    sm = pytest.importorskip("statsmodels.api")
    res = sm.Logit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, maxiter=100, disp=0)
    return np.asarray(res.params)


def newton_poisson_map(X, y, tau):
    """The Poisson-regression MAP under a flat intercept and Normal(0, tau) slopes.

    Damped Newton on the (strictly convex) negative log-posterior, written out in numpy, until
    the Newton decrement is below 1e-20.
    """
    A = np.column_stack([np.ones(len(y)), X])
    pen = np.r_[0.0, np.full(X.shape[1], 1.0 / tau**2)]

    def objective(b):
        eta = A @ b
        return np.sum(np.exp(eta) - y * eta) + 0.5 * np.sum(pen * b**2)

    b = np.r_[np.log(np.mean(y) + 0.5), np.zeros(X.shape[1])]
    for _ in range(100):
        mu = np.exp(A @ b)
        grad = A.T @ (mu - y) + pen * b
        hess = (A * mu[:, None]).T @ A + np.diag(pen)
        step = scipy.linalg.solve(hess, grad, assume_a="pos")
        decrement = grad @ step
        if decrement < 1e-20:
            return b
        t = 1.0
        if decrement > 1e-6:  # far from the optimum: halve the step until it descends
            f0 = objective(b)
            while objective(b - t * step) > f0:
                t /= 2
        b = b - t * step
    raise AssertionError("the reference Newton solve did not converge")


# -- helpers ----------------------------------------------------------------------------------


def flat_params(res):
    """Every reported parameter of a point result, concatenated in the spec's order."""
    return np.concatenate([np.ravel(v) for v in res.params.values()])


def point_fingerprint(res):
    """What must not depend on which other fits ran at the same time."""
    stderr = np.concatenate([np.ravel(v) for v in res.stderr.values()])
    return flat_params(res), stderr, np.array([res.loglik]), res.converged


def same_point(a, b):
    fa, fb = point_fingerprint(a), point_fingerprint(b)
    return fa[3] == fb[3] and all(np.array_equal(x, y, equal_nan=True)
                                  for x, y in zip(fa[:3], fb[:3], strict=True))


def posterior_arrays(res):
    """The draws of every variable in the result's ``posterior`` group."""
    post = res.to_datatree()["posterior"].to_dataset()
    return {name: post[name].to_numpy() for name in sorted(post.data_vars)}


def same_posterior(a, b):
    pa, pb = posterior_arrays(a), posterior_arrays(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def threaded(fn, items, seed):
    """``{i: fn(items[i])}`` from a thread pool, submitted in a shuffled order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = {i: pool.submit(fn, items[i]) for i in order}
        return {i: futures[i].result() for i in sorted(futures)}


def describe_mismatches(serial, got, same, summary):
    """One line per data set whose threaded answer differs from its serial answer.

    ``summary(res)`` is a vector (the estimates, or the posterior means) used to say whose
    answer a wrong one is closest to.
    """
    lines = []
    for i, res in got.items():
        if same(res, serial[i]):
            continue
        dist = [float(np.max(np.abs(summary(res) - summary(ref)))) for ref in serial]
        j = int(np.argmin(dist))
        if j == i:
            whose = f"off its own serial answer by {dist[i]:.3g}"
        elif dist[j] <= 1e-12:
            whose = (f"got data set {j}'s answer (to {dist[j]:.2g}; its own answer is "
                     f"{dist[i]:.3g} away)")
        else:
            whose = (f"closest to data set {j}'s answer ({dist[j]:.3g} away; own answer "
                     f"{dist[i]:.3g} away)")
        converged = getattr(res, "converged", None)
        lines.append(f"data set {i}: {whose}"
                     + (f", converged={converged}" if converged is not None else ""))
    return lines


def posterior_means(res):
    """Posterior means of every variable, concatenated."""
    return np.concatenate([np.ravel(v.mean(axis=(0, 1)))
                           for v in posterior_arrays(res).values()])


def assert_threads_match_serial(fit_one, specs, serial, same, summary, rounds=ROUNDS):
    failures = []
    for r in range(rounds):
        got = threaded(fit_one, specs, seed=r)
        failures += [f"round {r}: {line}" for line in
                     describe_mismatches(serial, got, same, summary)]
    assert not failures, (f"{len(failures)} of {rounds * len(specs)} threaded fits differ "
                          "from the serial run:\n" + "\n".join(failures))


# -- 1. many point fits of one structure from threads -----------------------------------------


def fit_logistic_mle(spec):
    return bm.fit(spec, "mle")


def fit_poisson_map(spec):
    return bm.fit(spec, "map")


POISSON_TAU = 1.0


def point_case(family):
    """Specs, fit function and independent reference answers of a family."""
    if family == "logistic_mle":
        data = [logistic_data(i) for i in range(N_DATASETS)]
        specs = [models.logistic_regression(X, y) for X, y in data]
        refs = [statsmodels_logit(X, y) for X, y in data]
        return specs, fit_logistic_mle, refs
    data = [poisson_data(i) for i in range(N_DATASETS)]
    specs = [models.poisson_regression(X, y, prior=bm.Normal(POISSON_TAU)) for X, y in data]
    refs = [newton_poisson_map(X, y, POISSON_TAU) for X, y in data]
    return specs, fit_poisson_map, refs


@pytest.mark.parametrize("family", ["logistic_mle", "poisson_map"])
def test_point_fits_from_threads_equal_serial_fits(family):
    specs, fit_one, refs = point_case(family)
    fit_one(specs[-1])  # warm-up: compile the structure before anything runs concurrently
    serial = [fit_one(spec) for spec in specs]
    for i, (res, ref) in enumerate(zip(serial, refs, strict=True)):
        assert res.converged, f"serial fit of data set {i} not converged"
        np.testing.assert_allclose(flat_params(res), ref, rtol=0, atol=1e-6,
                                   err_msg=f"serial fit of data set {i} vs the reference")
    # The data sets' answers are far apart: a mix-up cannot hide in a tolerance.
    spread = min(np.max(np.abs(refs[i] - refs[j]))
                 for i in range(len(refs)) for j in range(i))
    assert spread > 0.05
    assert_threads_match_serial(fit_one, specs, serial, same_point, flat_params)


# -- 2. concurrent NUTS and Laplace -----------------------------------------------------------

N_POSTERIORS = 5
NUTS_OPTIONS = {"draws": 100, "tune": 100, "chains": 2}


def fit_nuts(spec):
    return bm.fit(spec, "nuts", random_seed=7, **NUTS_OPTIONS)


def fit_laplace(spec):
    return bm.fit(spec, "laplace", random_seed=7)


@pytest.mark.filterwarnings("ignore::bayesmle.SamplingWarning")
@pytest.mark.parametrize("fit_one", [fit_laplace, fit_nuts], ids=["laplace", "nuts"])
def test_posteriors_from_threads_equal_serial_posteriors(fit_one):
    specs = [small_logistic_spec(i) for i in range(N_POSTERIORS)]
    fit_one(specs[-1])  # warm-up
    serial = [fit_one(spec) for spec in specs]
    again = fit_one(specs[0])
    assert same_posterior(again, serial[0]), "a seeded serial refit is not reproducible"
    means = [posterior_arrays(res)["coef"].mean(axis=(0, 1)) for res in serial]
    assert min(np.max(np.abs(means[i] - means[j]))
               for i in range(len(means)) for j in range(i)) > 0.05
    assert_threads_match_serial(fit_one, specs, serial, same_posterior, posterior_means,
                                rounds=2)


# -- 3. concurrent compare() ------------------------------------------------------------------


def run_compare(spec):
    return bm.compare(spec, methods=("mle", "map", "laplace", "nuts"), random_seed=0,
                      **NUTS_OPTIONS)


@pytest.mark.filterwarnings("ignore::bayesmle.SamplingWarning")
def test_compare_from_threads_equals_serial_compare():
    specs = [small_logistic_spec(i) for i in range(N_POSTERIORS)]
    run_compare(specs[-1])  # warm-up
    serial = [run_compare(spec) for spec in specs]
    for i, comp in enumerate(serial):
        assert not comp.errors, (i, comp.errors)
    failures = []
    for r in range(2):
        got = threaded(run_compare, specs, seed=10 + r)
        for i, comp in got.items():
            try:
                pd.testing.assert_frame_equal(comp.table, serial[i].table, check_exact=True)
            except AssertionError as exc:
                diff = (comp.table - serial[i].table).abs().max().max()
                failures.append(f"round {r}, data set {i}: table differs (max |diff| "
                                f"{diff:.3g}): {str(exc).splitlines()[0]}")
            if comp.errors != serial[i].errors:
                failures.append(f"round {r}, data set {i}: errors {comp.errors} != "
                                f"{serial[i].errors}")
            if comp.warnings != serial[i].warnings:
                failures.append(f"round {r}, data set {i}: recorded warnings "
                                f"{[(w.method, w.category) for w in comp.warnings]}, the serial "
                                f"run {[(w.method, w.category) for w in serial[i].warnings]}")
    assert not failures, "\n".join(failures)


# -- 4-5. a study on a thread pool and on a Dask cluster --------------------------------------


def run_study(executor=None):
    return studies.map_to_mle(models.linear_regression, simulate_linear, bm.Normal(1.0),
                              ns=[40, 160], reps=12, random_seed=3, executor=executor)


@pytest.fixture(scope="module")
def serial_study():
    table = run_study().table
    assert (table["status"] == "ok").all()
    assert len(table) == 2 * 12 * 5  # (n, replicate) x (intercept, 3 coefficients, sigma)
    pd.testing.assert_frame_equal(run_study().table, table, check_exact=True)
    return table


def assert_same_study(table, serial, where):
    differ = ~((table[["mle", "map"]] == serial[["mle", "map"]]).all(axis=1))
    detail = ""
    if differ.any():
        off = (table[["mle", "map"]] - serial[["mle", "map"]]).abs().max().max()
        detail = (f"{int(differ.sum())} of {len(serial)} rows differ ({where}), max |diff| "
                  f"{off:.3g}; statuses {table['status'].value_counts().to_dict()}")
    assert not differ.any(), detail
    pd.testing.assert_frame_equal(table, serial, check_exact=True)


def test_study_on_a_thread_pool_equals_serial(serial_study):
    for r in range(ROUNDS):
        with ThreadPoolExecutor(THREADS) as pool:
            table = run_study(pool).table
        assert_same_study(table, serial_study, f"thread pool, round {r}")


@pytest.mark.parametrize("processes", [
    False,
    pytest.param(True, marks=pytest.mark.slow),
], ids=["threads-in-process", "worker-process"])
def test_study_on_a_dask_cluster_equals_serial(serial_study, processes):
    distributed = pytest.importorskip("distributed")
    with (distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=processes,
                                   dashboard_address=None) as cluster,
          distributed.Client(cluster) as client):
        for r in range(2):
            table = run_study(client.get_executor()).table
            assert_same_study(table, serial_study, f"Dask processes={processes}, round {r}")


# -- 6. no process-global warning state changed by the library --------------------------------


def caller_module(depth):
    """``__name__`` of the module of the frame ``depth`` levels above the caller."""
    return sys._getframe(depth + 1).f_globals.get("__name__", "?")


@pytest.fixture
def warning_state_calls(monkeypatch):
    """Record every call that changes the warning filters, with the calling module."""
    calls = []
    originals = {name: getattr(warnings, name)
                 for name in ("simplefilter", "filterwarnings", "resetwarnings")}

    def recorder(name, original):
        def wrapper(*args, **kwargs):
            calls.append((name, caller_module(1), args))
            return original(*args, **kwargs)

        return wrapper

    patched = {name: recorder(name, original) for name, original in originals.items()}
    catch_warnings = warnings.catch_warnings

    class RecordingCatchWarnings(catch_warnings):
        def __enter__(self):
            calls.append(("catch_warnings", caller_module(1), ()))
            return super().__enter__()

    originals["catch_warnings"] = catch_warnings
    patched["catch_warnings"] = RecordingCatchWarnings
    for name, value in patched.items():
        monkeypatch.setattr(warnings, name, value)
    # Also names imported with `from warnings import ...` into the library's modules.
    for modname, module in list(sys.modules.items()):
        if module is None or not modname.startswith("bayesmle"):
            continue
        for attr, value in list(vars(module).items()):
            for name, original in originals.items():
                if value is original:
                    monkeypatch.setattr(module, attr, patched[name])
    return calls


@pytest.mark.filterwarnings("ignore::bayesmle.SamplingWarning")
def test_fits_leave_the_warning_filters_alone(warning_state_calls):
    spec = small_logistic_spec(0)
    X, y = logistic_data(2000, n=20_001, d=2)  # many rows: the MLE checks run after the fit
    lasso = models.logistic_regression(*logistic_data(3000, n=50, d=2), prior=bm.Laplace(0.5))
    # Run alone, these are first fits (compiling each structure): that is recorded as well.
    bm.fit(spec, "mle")
    bm.fit(spec, "map")
    bm.fit(spec, "laplace", random_seed=1)
    bm.fit(spec, "nuts", random_seed=1, **NUTS_OPTIONS)
    bm.fit(models.logistic_regression(X, y), "mle")
    bm.fit(lasso, "map")
    bm.compare(spec, random_seed=2, **NUTS_OPTIONS)
    studies.map_to_mle(models.linear_regression, simulate_linear, bm.Normal(1.0), ns=[20, 40],
                       reps=1, random_seed=4)
    ours = [c for c in warning_state_calls if c[1].split(".")[0] == "bayesmle"]
    others = sorted({f"{name} from {module}" for name, module, _ in warning_state_calls
                     if module.split(".")[0] != "bayesmle"})
    assert not ours, ("the library changed the process-global warning filters during a fit:\n"
                      + "\n".join(sorted({f"{name}{args} from {module}"
                                          for name, module, args in ours}))
                      + f"\n(calls from other packages, not asserted: {others})")
