"""``optimizer="find_map"``: pymc.find_MAP really called, certified, reported honestly."""

import numpy as np
import pymc
import pytest
import scipy.optimize
import scipy.stats

import bayesmle as bm
from bayesmle.errors import ConvergenceWarning, SpecError
from bayesmle.inference.driver import run

PYMC_STOPPED = "ignore:The optimizer did not converge:UserWarning"


@pytest.fixture
def counted(monkeypatch):
    """pymc.find_MAP wrapped: every call is recorded and passed on."""
    calls = []
    original = pymc.find_MAP

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(pymc, "find_MAP", wrapper)
    return calls


@pytest.fixture(scope="module")
def gaussian():
    y = np.random.default_rng(0).normal(1.0, 2.0, size=50)
    return y, bm.models.gaussian(y)


def test_find_map_is_called_once_and_polished_to_the_closed_form(gaussian, counted):
    y, spec = gaussian
    res = bm.fit(spec, "mle", optimizer="find_map", polish=True)
    assert len(counted) == 1
    assert counted[0][1]["return_inferencedata"] is True
    assert res.optimum.solver == "pymc.find_MAP(L-BFGS-B) + proximal_newton"
    assert res.converged
    np.testing.assert_allclose(res.params["mu"], y.mean(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.params["sigma"], y.std(), rtol=1e-12)


def test_polished_map_equals_an_independent_scipy_optimum(counted):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2))
    y = (rng.random(80) < 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5])))).astype(float)
    spec = bm.models.logistic_regression(X, y, prior=bm.Normal(1.0),
                                         intercept_prior=bm.Normal(5.0))
    res = bm.fit(spec, "map", optimizer="find_map", polish=True)
    assert len(counted) == 1 and res.converged
    full = np.column_stack([np.ones(80), X])
    scale = np.array([5.0, 1.0, 1.0])

    def negpost(b):
        eta = full @ b
        return (np.sum(np.logaddexp(0, eta) - y * eta) + 0.5 * np.sum((b / scale) ** 2))

    def grad(b):
        p = 1 / (1 + np.exp(-(full @ b)))
        return full.T @ (p - y) + b / scale**2

    ref = scipy.optimize.minimize(negpost, np.zeros(3), jac=grad, method="BFGS",
                                  options={"gtol": 1e-13}).x
    got = np.concatenate([np.atleast_1d(res.params["intercept"]), res.params["coef"]])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)


def test_early_stop_is_reported_as_not_converged(gaussian, counted):
    _, spec = gaussian
    with pytest.warns(UserWarning, match="did not converge"):  # PyMC's own warning
        res = run(spec, "mle", optimizer="find_map", maxiter=2)
    assert len(counted) == 1 and counted[0][1]["maxiter"] == 2
    assert not res.converged and res.n_iter == 2
    assert res.grad_norm > 1e-3
    [diag] = res.diagnostics
    assert diag.category is ConvergenceWarning
    assert f"gradient norm {res.grad_norm:.3g}" in diag.message
    assert "polish=True" in diag.message


def test_default_find_map_distance_from_the_certified_optimum(gaussian):
    """The loose default L-BFGS-B stop: a small but non-zero distance, in standard errors."""
    y, spec = gaussian
    fm = run(spec, "mle", optimizer="find_map")
    exact = np.array([y.mean(), y.std()])
    se = np.array([y.std() / np.sqrt(y.size), y.std() / np.sqrt(2 * y.size)])  # closed form
    dist = (fm.flat_params() - exact) / se
    assert np.all(np.abs(dist) < 1e-3), dist
    assert np.any(dist != 0.0), dist
    assert fm.optimum.solver == "pymc.find_MAP(L-BFGS-B)"


def test_scipy_method_and_start_are_passed(gaussian, counted):
    y, spec = gaussian
    res = run(spec, "map", optimizer="find_map", find_map_method="BFGS",
              start={"mu": 0.5, "sigma": 1.0})
    assert counted[0][0] == ("BFGS",)
    assert counted[0][1]["initvals"] == {"mu": 0.5, "sigma": 1.0}
    assert res.optimum.solver == "pymc.find_MAP(BFGS)"
    np.testing.assert_allclose(res.params["mu"], y.mean(), rtol=1e-5)


@pytest.mark.filterwarnings(PYMC_STOPPED)
def test_l1_prior_cannot_be_certified_without_polishing():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = X[:, 0] + rng.normal(size=40)
    spec = bm.models.linear_regression(X, y, prior=bm.Laplace(0.05))
    fm = run(spec, "map", optimizer="find_map")
    assert not fm.converged
    assert "exact zeros" in fm.diagnostics[0].message
    polished = run(spec, "map", optimizer="find_map", polish=True)
    certified = run(spec, "map")
    assert polished.converged and certified.converged
    zero = certified.params["coef"] == 0.0
    assert zero.any()  # the lasso sets some coefficients exactly to zero
    assert np.all(polished.params["coef"][zero] == 0.0)
    np.testing.assert_allclose(polished.params["coef"], certified.params["coef"], atol=1e-10)


def test_refusals(gaussian):
    _, spec = gaussian
    with pytest.raises(SpecError, match="optimizer"):
        run(spec, "mle", optimizer="newtonish")
    with pytest.raises(SpecError, match="polish"):
        run(spec, "mle", polish=True)
    with pytest.raises(SpecError, match="Unknown option"):
        run(spec, "laplace", optimizer="find_map")
    with pytest.raises(SpecError, match="set by bayesmle"):
        run(spec, "mle", optimizer="find_map", model=None)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 1))
    lad = bm.models.robust_regression(X, X[:, 0] + rng.laplace(size=30), noise="laplace")
    with pytest.raises(SpecError, match="find_map"):
        run(lad, "mle", optimizer="find_map")


def test_compare_find_map_columns_measure_the_distance_in_standard_errors(gaussian):
    y, spec = gaussian
    comp = bm.compare(spec, methods=("find_map_mle", "pathfinder"), draws=250,
                      random_seed=0, warn=False)
    table = comp.table
    exact = np.array([y.mean(), y.std()])
    se = np.array([y.std() / np.sqrt(y.size), y.std() / np.sqrt(2 * y.size)])  # closed form
    np.testing.assert_allclose(table["find_map_mle_estimate"], comp.results[
        "find_map_mle"].flat_params())
    # the certified MLE (run for the purpose: "mle" is not among the methods) is the closed
    # form, so the column is (find_MAP - closed form) / closed-form standard error
    np.testing.assert_allclose(table["find_map_mle_distance_se"],
                               (table["find_map_mle_estimate"].to_numpy() - exact) / se,
                               rtol=1e-6, atol=1e-9)
    assert {"pathfinder_mean", "pathfinder_sd", "pathfinder_pareto_k"} <= set(table.columns)
    assert table["pathfinder_pareto_k"].nunique() == 1
    assert comp.results["pathfinder"].datatree["posterior"].sizes["draw"] == 4 * 250
    assert set(comp.datatrees) == {"find_map_mle", "pathfinder"}
    from bayesmle.report import tables
    from bayesmle.specfile import FitSettings

    groups = dict(tables.comparison_groups(table))
    assert groups["Pathfinder"][-1] == ("pathfinder_pareto_k", "Pareto k")
    assert "find_MAP (MLE)" in groups
    assert list(tables.optimizer_table(comp.results).index) == ["find_map_mle"]
    fit = FitSettings(methods=("mle", "pathfinder", "find_map_mle"), draws=100, chains=2)
    assert fit.fit_options("pathfinder") == {"draws": 200, "random_seed": 0}
