"""Bad input through the Python API (issue 12): typed errors, bounds, honest defaults.

Every reproducer of the issue that goes through the Python API, plus a hypothesis fuzz over
the options of ``fit`` / ``compare`` / the studies: each case gives the correct result or a typed
bayesmle error naming the argument -- never a raw NumPy / SciPy / PyTensor / Rust failure, never
a silent truncation, never an unbounded allocation. Each case runs under a per-case alarm
(generous: it only turns a hang into a failure; no assertion depends on time).
"""

from __future__ import annotations

import contextlib
import signal
import warnings

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayesmle as bm
from bayesmle import models, studies
from bayesmle.errors import BayesMLEError, DataError, PriorError, SpecError

matplotlib.use("Agg")

CASE_SECONDS = 240


class CaseTimeout(Exception):
    """A case ran longer than CASE_SECONDS: a hang."""


@contextlib.contextmanager
def bounded(seconds: int = CASE_SECONDS):
    """Fail a case that hangs (SIGALRM in the main thread); never used to assert speed."""
    def on_alarm(signum, frame):
        raise CaseTimeout(f"case still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


RNG = np.random.default_rng(12)
X = RNG.normal(size=(30, 2))
Y = X @ [1.0, 2.0] + RNG.normal(size=30)
LINEAR = models.linear_regression(X, Y)
GAUSS = models.gaussian(Y, mu_prior=bm.Normal(5.0), sigma_prior=bm.HalfNormal(5.0))


def typed(call, cls=BayesMLEError, *names):
    """Run ``call``; it must raise ``cls`` whose message names every one of ``names``."""
    with bounded(), pytest.raises(cls) as info:
        call()
    for name in names:
        assert name in str(info.value), (name, str(info.value))
    return info.value


# -- item 3: raw tracebacks --------------------------------------------------------------------
@pytest.mark.parametrize("value", ["yes", 1, None, 1.0, "False"])
def test_intercept_must_be_a_bool(value):
    typed(lambda: models.linear_regression(X, Y, intercept=value), DataError, "`intercept`",
          repr(value))


@pytest.mark.parametrize(("option", "value"), [
    ("max_iter", "a"), ("max_iter", 1.5), ("max_iter", 0), ("max_iter", True),
    ("strict", "yes"), ("start", [1, 2]), ("start", {"sigma": "x"}),
])
def test_point_options_are_typed(option, value):
    typed(lambda: bm.fit(LINEAR, "mle", **{option: value}), SpecError, option)


@pytest.mark.parametrize("seed", [-1, 1.5, "1", 2**64, [1, 2], True])
@pytest.mark.parametrize("method", ["laplace", "nuts"])
def test_bad_seeds_are_refused_not_truncated(method, seed):
    typed(lambda: bm.fit(GAUSS, method, random_seed=seed, draws=10), SpecError,
          "random_seed")


@pytest.mark.parametrize("value", ["x", 0, 1, 1.5, -0.2, None])
def test_target_accept_is_typed(value):
    typed(lambda: bm.fit(GAUSS, "nuts", target_accept=value, random_seed=1), SpecError,
          "target_accept")


def test_softmax_labels_of_mixed_types():
    labels = np.array([1, "a", 2.0] * 10, dtype=object)
    typed(lambda: models.softmax_regression(X, labels), DataError, "`y`", "strings")
    typed(lambda: models.softmax_regression(X, np.array([1 + 1j, 2] * 15)), DataError, "`y`")


def test_softmax_prior_of_the_wrong_shape():
    y = np.array([0, 1, 2] * 10)
    err = typed(lambda: models.softmax_regression(X, y, prior=bm.Normal(np.ones((3, 1)))),
                PriorError, "coef", "(2, 2)")
    assert "\n" not in str(err).splitlines()[0]


@pytest.mark.parametrize(("key", "prior", "why"), [
    ("coef", bm.HalfNormal(1.0), "real line"),
    ("sigma", bm.Beta(2.0, 2.0), "positive"),
    ("intercept", bm.Exponential(1.0), "real line"),
    ("coef", bm.Normal(np.ones(3)), "shape (2,)"),
])
def test_with_priors_checks_support_and_shape_as_the_builder(key, prior, why):
    typed(lambda: LINEAR.with_priors(**{key: prior}), PriorError, f"`{key}`", why)
    # and the same prior through the builder is refused the same way
    arg = {"coef": "prior", "sigma": "sigma_prior", "intercept": "intercept_prior"}[key]
    typed(lambda: models.linear_regression(X, Y, **{arg: prior}), PriorError)


def test_with_priors_on_distribution_builders():
    spec = models.gaussian(Y)
    typed(lambda: spec.with_priors(mu=bm.Normal(np.ones(2))), PriorError, "`mu`")
    typed(lambda: spec.with_priors(tau=bm.Normal(1.0)), SpecError, "tau", "mu", "sigma")
    assert spec.with_priors(sigma=bm.Gamma(2.0, 1.0)).priors["sigma"] == bm.Gamma(2.0, 1.0)


@pytest.mark.parametrize("method", ["laplace", "nuts"])
def test_huge_draws_refused_before_allocation(method):
    typed(lambda: bm.fit(GAUSS, method, draws=int(1e11), random_seed=1), SpecError, "draws")
    # within the draw cap but beyond the memory bound: a wide model
    wide = models.linear_regression(RNG.normal(size=(40, 30)), RNG.normal(size=40),
                                    prior=bm.Normal(1.0))
    typed(lambda: bm.fit(wide, method, draws=9_000_000, random_seed=1), SpecError, "GiB",
          "draws")


def test_custom_spec_missing_prior_key_is_a_spec_error():
    def declare(data, priors):
        with pm.Model() as m:
            mu = priors["mu"].rv(m, "mu")
            pm.Normal("y", mu, 1.0, observed=data["y"])
        return m

    spec = models.ModelSpec(name="custom", declare=declare, data={"y": np.array([1.0, 2.0])},
                            priors={}, params=("mu",))
    typed(lambda: bm.fit(spec, "mle"), SpecError, "'mu'", "priors=")


# -- item 4: silent or unbounded ---------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: X + 1j,
    lambda: X.astype(np.complex64),
    lambda: pd.DataFrame({"a": X[:, 0] + 0j, "b": X[:, 1]}),
])
def test_complex_design_is_refused_not_truncated(make):
    typed(lambda: models.linear_regression(make(), Y), DataError, "`X`", "complex")


def test_complex_response_is_refused():
    typed(lambda: models.gaussian(Y + 2j), DataError, "`y`", "complex")
    typed(lambda: models.poisson(np.array([1, 2, 3], dtype=complex)), DataError, "complex")


@pytest.mark.parametrize("kwargs", [
    {"ns": [5], "reps": 10**9},
    {"ns": [5], "reps": 2.0},
    {"ns": [10**8], "reps": 2},
    {"ns": list(range(2, 2002)), "reps": 2},
    {"ns": [float("inf")], "reps": 2},
    {"ns": ["10"], "reps": 2},
    {"ns": "10", "reps": 2},
    {"ns": [10**6], "reps": 100_000},
])
def test_study_sizes_are_bounded_before_any_work(kwargs):
    typed(lambda: studies.bias(**kwargs), SpecError, "`")


def test_map_to_mle_reps_are_bounded():
    def simulate(n, rng):
        return {"y": rng.normal(size=n)}

    typed(lambda: studies.map_to_mle(models.gaussian, simulate, {"mu_prior": bm.Normal(1.0)},
                                     ns=[5], reps=10**9), SpecError, "reps")


# -- item 7: messages a user can act on ----------------------------------------------------------
def test_nan_rows_named_by_the_dataframe_index():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [1.0, 0.0, 1.0, np.inf, 2.0]},
                         index=["ann", "bob", "cy", "dee", "eve"])
    err = typed(lambda: models.linear_regression(frame, np.arange(5.0)), DataError,
                "'cy'", "'dee'")
    assert "row(s) 2" not in str(err)
    y = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0, 6.0], index=[10, 20, 30, 40, 50, 60])
    typed(lambda: models.gaussian(y), DataError, "index label(s) 30")


def _nonconverging_logistic():
    rng = np.random.default_rng(3)
    Xl = rng.normal(size=(200, 2))
    yl = (Xl @ [1.0, 2.0] + rng.logistic(size=200) > 0).astype(float)
    return models.logistic_regression(Xl, yl)


def test_warnings_point_at_the_users_line():
    spec = _nonconverging_logistic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bm.fit(spec, "mle", max_iter=1)
        bm.compare(spec, methods=("mle",), max_iter=1)
    assert len(caught) == 2
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


# -- item 8: consistency -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["laplace", "nuts"])
def test_seed_is_optional_drawn_and_recorded(method):
    opts = {"draws": 50} if method == "laplace" else {"draws": 30, "tune": 30, "chains": 1}
    with bounded():
        first = bm.inference.run(GAUSS, method, **opts)
        assert isinstance(first.random_seed, int) and 0 <= first.random_seed < 2**63
        again = bm.inference.run(GAUSS, method, random_seed=first.random_seed, **opts)
    assert again.random_seed == first.random_seed
    np.testing.assert_array_equal(first.draws().to_numpy(), again.draws().to_numpy())


def test_compare_draws_and_records_its_seed():
    with bounded():
        comp = bm.compare(GAUSS, methods=("map", "laplace"), draws=50, warn=False)
        again = bm.compare(GAUSS, methods=("map", "laplace"), draws=50, warn=False,
                           random_seed=comp.random_seed)
    assert isinstance(comp.random_seed, int)
    pd.testing.assert_frame_equal(comp.table, again.table)


def test_studies_draw_and_record_their_seed():
    res = studies.bias(ns=[5, 8], reps=3)
    seed = res.settings["random_seed"]
    assert isinstance(seed, int)
    pd.testing.assert_frame_equal(res.table, studies.bias(ns=[5, 8], reps=3,
                                                          random_seed=seed).table)


def _colours_by_method(comp) -> dict[str, str]:
    """The colour of each method's interval lines, read from the figure via its legend."""
    fig = comp.plot()
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    colours = {mcolors.to_hex(line.get_color()) for line in lines}
    if len(comp.datatrees) == 1:
        assert len(colours) == 1
        return {next(iter(comp.datatrees)): colours.pop()}
    legend = [lg for lg in fig.legends] + [ax.get_legend() for ax in fig.axes
                                            if ax.get_legend() is not None]
    out = {}
    for lg in legend:
        for handle, text in zip(lg.legend_handles, lg.get_texts(), strict=True):
            out[text.get_text()] = mcolors.to_hex(handle.get_color())
    assert set(out) == set(comp.datatrees) and set(out.values()) == colours, (out, colours)
    return out


def test_method_colours_do_not_move_when_a_method_is_absent():
    colours = {}
    for methods in [("mle", "map", "laplace"), ("map", "laplace"), ("laplace",), ("mle", "map")]:
        draws = {"draws": 50} if "laplace" in methods else {}
        comp = bm.compare(GAUSS, methods=methods, random_seed=1, warn=False, **draws)
        by_method = _colours_by_method(comp)
        assert len(set(by_method.values())) == len(methods)  # one colour per method
        for method, colour in by_method.items():
            colours.setdefault(method, set()).add(colour)
    assert all(len(c) == 1 for c in colours.values()), colours  # a colour never moves
    both = bm.compare(GAUSS, methods=("map", "laplace"), draws=50, random_seed=1, warn=False)
    typed(lambda: both.plot(var_names=["nope"]), SpecError, "nope", "mu")


def test_map_summary_shows_posterior_mode_quantities_only():
    mle, map_ = bm.fit(GAUSS, "mle"), bm.fit(GAUSS, "map")
    assert {"z", "p_value"} <= set(mle.summary().columns)
    summ = map_.summary(level=0.9)
    assert not {"z", "p_value", "estimate", "stderr"} & set(summ.columns)
    # the interval is the normal approximation at the mode: mode -+ z_0.95 * sd
    half = scipy.stats.norm.ppf(0.95) * summ["approx_sd"]
    np.testing.assert_allclose(summ["approx_0.05"], summ["mode"] - half, rtol=1e-12)
    np.testing.assert_allclose(summ["approx_0.95"], summ["mode"] + half, rtol=1e-12)


# -- fuzz: options of fit, compare and studies -------------------------------------------------
anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(2**62, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=3),
                                                             st.integers(), max_size=2),
    st.sampled_from([1e11, 10**11, 0.5, 2, 20, np.int64(7), np.float64(0.9), "nuts"]),
)
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(method=st.sampled_from(["mle", "map", "laplace"]),
       options=st.dictionaries(st.sampled_from(["max_iter", "strict", "start", "draws",
                                                "random_seed"]), anything, max_size=3))
def test_fuzz_point_and_laplace_options(method, options):
    if method != "laplace":
        options = {k: v for k, v in options.items() if k not in ("draws", "random_seed")}
    with bounded():
        try:
            res = bm.fit(GAUSS, method, **options)
        except BayesMLEError:
            return
    assert np.all(np.isfinite(res.flat_params()))


@FUZZ
@given(options=st.dictionaries(st.sampled_from(["draws", "tune", "chains", "random_seed",
                                                "target_accept", "sampler"]), anything,
                               max_size=3))
def test_fuzz_nuts_options(options):
    for key in ("draws", "tune"):  # keep valid runs short: large valid values are capped
        if isinstance(options.get(key), int) and not isinstance(options[key], bool) \
                and 0 < options[key] < 10**7:
            options[key] = min(options[key], 20)
    if isinstance(options.get("chains"), int) and 0 < options["chains"] <= 64:
        options["chains"] = 1
    with bounded():
        try:
            res = bm.inference.run(GAUSS, "nuts", progressbar=False, **options)
        except BayesMLEError:
            return
    assert res.random_seed is not None


@FUZZ
@given(ns=st.one_of(anything, st.lists(anything, max_size=3)), reps=anything,
       seed=anything)
def test_fuzz_study_arguments(ns, reps, seed):
    with bounded():
        try:
            studies.bias(ns=ns, reps=reps, random_seed=seed)
        except BayesMLEError:
            return


@FUZZ
@given(level=anything)
def test_fuzz_levels(level):
    res = bm.fit(GAUSS, "mle")
    with bounded():
        for call in (lambda: res.summary(level=level), lambda: res.interval(level=level),
                     lambda: res.conf_int(level=level)):
            try:
                table = call()
            except BayesMLEError:
                continue
            assert np.isfinite(table.to_numpy(dtype=float)).all()


# -- every public entry point, one argument replaced by garbage ---------------------------------
GARBAGE = [None, "x", -1, 0, 1.5, np.nan, np.inf, 1e308, 2**70, [1, 2], {"a": 1}, (), True,
           1j, np.ones((2, 2, 2)), np.array([]), object(), "index.html"]


def _simulate_gaussian(n, rng):
    return {"y": rng.normal(size=n)}


def _entry_points():
    rng = np.random.default_rng(0)
    yb = (rng.random(30) < 0.5).astype(float)
    yc = rng.poisson(2, size=30).astype(float)
    gauss = models.gaussian(Y)
    mle = bm.fit(gauss, "mle")
    lap = bm.inference.run(gauss, "laplace", draws=50, random_seed=0)
    from bayesmle import losses
    from bayesmle.inference.profile import profile_interval
    return {
        "linear_regression": (models.linear_regression,
                              {"X": X, "y": Y, "prior": bm.Normal(1.0)}),
        "logistic_regression": (models.logistic_regression, {"X": X, "y": yb}),
        "poisson_regression": (models.poisson_regression,
                               {"X": X, "y": yc, "exposure": np.ones(30)}),
        "negative_binomial_regression": (models.negative_binomial_regression, {"X": X, "y": yc}),
        "robust_regression": (models.robust_regression, {"X": X, "y": Y, "noise": "student_t"}),
        "softmax_regression": (models.softmax_regression, {"X": X, "y": yc % 3}),
        "gaussian": (models.gaussian, {"y": Y}),
        "bernoulli": (models.bernoulli, {"y": yb}),
        "binomial": (models.binomial, {"successes": yc, "trials": yc + 2}),
        "poisson": (models.poisson, {"y": yc}),
        "exponential": (models.exponential, {"y": np.abs(Y) + 0.1}),
        "student_t": (models.student_t, {"y": Y}),
        "Normal": (bm.Normal, {"sigma": 1.0}),
        "Laplace": (bm.Laplace, {"b": 1.0}),
        "HalfNormal": (bm.HalfNormal, {"sigma": 1.0}),
        "Gamma": (bm.Gamma, {"alpha": 2.0, "beta": 1.0}),
        "Beta": (bm.Beta, {"a": 2.0, "b": 2.0}),
        "Exponential": (bm.Exponential, {"lam": 1.0}),
        "HalfCauchy": (bm.HalfCauchy, {"beta": 1.0}),
        "fit": (bm.inference.run, {"spec": gauss, "method": "mle"}),
        "compare": (bm.compare, {"spec": gauss, "methods": ("mle", "map"), "warn": False}),
        "conf_int": (mle.conf_int, {"level": 0.9, "method": "wald"}),
        "interval": (lap.interval, {"level": 0.9}),
        "profile_interval": (profile_interval, {"result": mle, "level": 0.9}),
        "bias": (studies.bias, {"ns": [5], "reps": 2}),
        "fisher": (studies.fisher, {"builder": models.poisson, "true_params": {"rate": 2.0},
                                    "ns": [10], "reps": 2}),
        "map_to_mle": (studies.map_to_mle, {"builder": models.gaussian,
                                            "simulate": _simulate_gaussian,
                                            "prior": {"mu_prior": bm.Normal(1.0)},
                                            "ns": [10], "reps": 2}),
        "coverage": (studies.coverage, {"builder": models.gaussian,
                                        "simulate": _simulate_gaussian,
                                        "true_params": {"mu": 0.0}, "ns": [10], "reps": 2,
                                        "methods": ("wald", "profile")}),
        "overdispersion": (studies.overdispersion, {"X": X, "y": yc}),
        "sparsity_path": (studies.sparsity_path, {"builder": models.linear_regression,
                                                  "data": {"X": X, "y": Y},
                                                  "scales": [0.1, 1.0]}),
        "likelihood_surface": (studies.likelihood_surface, {"spec": gauss}),
        "mse": (losses.mse, {"y": Y, "mu": Y}),
        "binary_cross_entropy": (losses.binary_cross_entropy, {"y": yb, "p": np.full(30, 0.5)}),
        "poisson_deviance": (losses.poisson_deviance, {"y": yc, "rate": np.full(30, 2.0)}),
        "gaussian_nll": (losses.gaussian_nll, {"y": Y, "mu": Y, "sigma": 1.0}),
    }


ENTRY_NAMES = ["linear_regression", "logistic_regression", "poisson_regression",
               "negative_binomial_regression", "robust_regression", "softmax_regression",
               "gaussian", "bernoulli", "binomial", "poisson", "exponential", "student_t",
               "Normal", "Laplace", "HalfNormal", "Gamma", "Beta", "Exponential", "HalfCauchy",
               "fit", "compare", "conf_int", "interval", "profile_interval", "bias", "fisher",
               "map_to_mle", "coverage", "overdispersion", "sparsity_path", "likelihood_surface",
               "mse", "binary_cross_entropy", "poisson_deviance", "gaussian_nll"]


@pytest.fixture(scope="module")
def entry_points():
    return _entry_points()


@pytest.mark.parametrize("name", ENTRY_NAMES)
def test_every_argument_of_every_entry_point_fails_typed(entry_points, name):
    func, valid = entry_points[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diagnostics of odd-but-valid inputs are not the point
        with bounded():
            func(**valid)  # the valid call works
        raw = []
        for arg in valid:
            for junk in GARBAGE:
                with bounded():
                    try:
                        func(**{**valid, arg: junk})
                    except BayesMLEError:
                        pass
                    except Exception as exc:  # noqa: BLE001 - the point of the test
                        raw.append((arg, repr(junk)[:30], type(exc).__name__, str(exc)[:80]))
    assert not raw, raw
