"""The EM vs Newton vs NUTS study on a mixture."""

import numpy as np
import pytest
import scipy.stats
from matplotlib.figure import Figure

import bayesmle as bm


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(0)
    y = np.r_[rng.poisson(1.0, 60), rng.poisson(8.0, 40)]
    spec = bm.models.poisson_mixture(y, 2, rate_prior=bm.Gamma(2.0, 0.2))
    return spec, bm.studies.mixture_methods(spec, methods=("em", "mle", "nuts"), random_seed=0,
                                            nuts_options={"draws": 1000, "tune": 500})


def test_table_and_classes(study):
    spec, res = study
    assert res.table.index.tolist() == ["em", "mle", "nuts"]
    assert res.table.loc["em", "max_abs_diff_mle"] < 1e-5
    assert res.table["converged"].all()
    assert res.table.loc["em", "iterations"] > res.table.loc["mle", "iterations"]
    # plug-in classes at the MLE, computed here from its parameters
    w, rate = res.results["mle"].params["weights"], res.results["mle"].params["rate"]
    dens = w * scipy.stats.poisson.pmf(spec.data["y"][:, None], rate)
    np.testing.assert_allclose(res.classes[["mle_r1", "mle_r2"]].to_numpy(),
                               dens / dens.sum(axis=1, keepdims=True), rtol=1e-10)
    assert np.all(res.classes["nuts_sd1"] >= 0) and res.classes["nuts_sd1"].max() > 0.01
    assert isinstance(res.plot(), Figure)
    assert res.settings["random_seed"] == 0


def test_refuses_other_models():
    with pytest.raises(bm.SpecError, match="mixture"):
        bm.studies.mixture_methods(bm.models.poisson([1, 2, 3]))
