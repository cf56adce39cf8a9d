"""NUTS on a well-separated two-component mixture: ordered components, no label switching."""

import numpy as np
import pytest
import scipy.stats

import bayesmle as bm


@pytest.fixture(scope="module")
def spec():
    rng = np.random.default_rng(7)
    y = np.r_[rng.normal(-2.0, 1.0, 60), rng.normal(4.0, 1.0, 40)]
    return bm.models.gaussian_mixture(y, 2, mu_prior=bm.Normal(10.0),
                                      sigma_prior=bm.Gamma(2.0, 1.0))


@pytest.fixture(scope="module")
def post(spec):
    return bm.inference.run(spec, "nuts", random_seed=1)  # default settings: 4 x 1000


@pytest.mark.slow
def test_no_label_switching_and_agreement_with_a_long_run(spec, post):
    assert post.diagnostics == ()
    assert (post.rhat() < 1.01).all()
    mu = post.datatree["posterior"]["mu"].values  # (chain, draw, component)
    assert np.all(mu[..., 0] < mu[..., 1])  # ordered in every draw
    # each chain stays with its labelling: a switch would put a chain's mean of mu[1] near the
    # other component's location (the modes are 6 apart, posterior sds ~0.15)
    chain_means = mu.mean(axis=1)
    assert np.all(np.abs(chain_means[:, 0] - (-2.0)) < 1.0)
    assert np.all(np.abs(chain_means[:, 1] - 4.0) < 1.0)
    ref = bm.inference.run(spec, "nuts", random_seed=2, draws=5000, chains=4)
    assert (ref.rhat() < 1.01).all()
    z = (post.mean() - ref.mean()) / np.sqrt(post.mcse_mean() ** 2 + ref.mcse_mean() ** 2)
    assert (z.abs() < 4.0).all(), z


@pytest.mark.slow
def test_posterior_responsibilities_are_averaged_over_draws(spec, post):
    draws = {k: post.datatree["posterior"][k].values.reshape(-1, 2) for k in ("weights", "mu",
                                                                              "sigma")}
    y = spec.data["y"]
    dens = draws["weights"][:, None, :] * scipy.stats.norm.pdf(
        y[None, :, None], draws["mu"][:, None, :], draws["sigma"][:, None, :])
    expected = (dens / dens.sum(axis=2, keepdims=True)).mean(axis=0)
    got = post.responsibilities()
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-10, atol=1e-13)
    with pytest.raises(bm.SpecError, match="point estimate"):
        post.responsibilities(plug_in=True)
