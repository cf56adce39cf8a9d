"""The bundled mixture spec and the comparison table: EM beside the MLE, a note on local optima."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats

import bayesmle as bm
from bayesmle.specfile import load, parse_prior
from bayesmle.specfile._schema import Where

SPEC = Path(__file__).parents[1] / "models" / "seizure_mixture.toml"


@pytest.fixture(scope="module")
def comparison():
    spec = load(SPEC).model_spec()
    return spec, bm.compare(spec.flat(), methods=("mle", "em"), random_seed=3, warn=False)


def test_bundled_spec_loads(comparison):
    spec, _ = comparison
    assert spec.name == "poisson_mixture" and spec.options["k"] == 2
    assert spec.priors["weights"] == bm.Dirichlet(2.0)
    assert spec.priors["rate"] == bm.Gamma(2.0, 0.1)
    y = pd.read_csv(SPEC.parent / "data" / "epil.csv")["y"].to_numpy(dtype=float)
    np.testing.assert_array_equal(spec.data["y"], y)


def test_em_column_and_local_note(comparison):
    spec, comp = comparison
    table = comp.table
    assert {"mle_estimate", "mle_stderr", "em_estimate", "em_stderr"} <= set(table.columns)
    np.testing.assert_allclose(table["em_estimate"], table["mle_estimate"], atol=1e-5)
    # the MLE maximises the marginal likelihood, computed here with scipy
    w, rate = comp.results["mle"].params["weights"], comp.results["mle"].params["rate"]
    y = spec.data["y"]
    loglik = scipy.special.logsumexp(np.log(w) + scipy.stats.poisson.logpmf(y[:, None], rate),
                                     axis=1).sum()
    assert comp.results["mle"].loglik == pytest.approx(loglik, rel=1e-12)
    assert any(m.category == "MixtureNote" and "local" in m.message for m in comp.warnings)


def test_dirichlet_by_name():
    prior = parse_prior("Dirichlet([1, 2, 3])", Where("x.toml"), "priors.weights")
    assert prior == bm.Dirichlet([1.0, 2.0, 3.0]) and prior.support == "simplex"
