"""Priors: small frozen objects that know how to declare their PyMC random variable.

Nothing else in bayesmle knows PyMC's distribution classes for priors. A prior's numeric
parameters are registered as ``pm.Data`` (named ``"<key>__prior_<param>"``) so that changing a
prior's values -- a sweep over the Laplace scale, say -- reuses the compiled model.

Four supports are covered:

* location / coefficient parameters (real line): :class:`Flat`, :class:`Normal`, :class:`Laplace`;
  the shrinkage priors :class:`ElasticNet`, :class:`StudentT`, :class:`Cauchy`,
  :class:`Horseshoe`, :class:`RegularizedHorseshoe` (:mod:`bayesmle.priors.shrinkage`);
* scale and rate parameters (positive): :class:`HalfFlat`, :class:`HalfNormal`,
  :class:`HalfCauchy`, :class:`Exponential`, :class:`Gamma`;
* probabilities (unit interval): :class:`Beta` (``Beta(1, 1)`` is the flat prior);
* correlation matrices (the correlations of a mixed model's random effects): :class:`LKJ`
  (``LKJ(1)``, uniform over correlation matrices, is the flat prior).

Parameters may be scalars or arrays (one value per coefficient); they broadcast against the
shape of the parameter they are attached to.

One route into a model
----------------------
A prior reaches a model in one of two equivalent ways, and the fitting engine treats both the
same: ``prior.rv(model, key)`` declares the parameter as a free random variable with this
distribution (what a hand-written PyMC model does), and ``prior.attach(model, key, value)``
puts the prior on a parameter that the model computes from its internal coordinates (a
regression's coefficients in a QR parametrisation, say): it registers ``value`` as the
Deterministic ``key`` and the prior's log-density as the Potential ``"<key>__prior"``. Either
way the model's log-density contains the prior exactly once, the parameter is the model
variable named ``key`` on its natural scale, and the part of the log-density that is not
smooth -- the ``|w - mu| / b`` of a Laplace prior -- is described by :meth:`Prior.l1`, which
the optimiser handles exactly (see :mod:`bayesmle.inference.engine`).
"""

from bayesmle.priors.base import Beta, Flat, HalfFlat, L1Part, Prior, Support, flat_prior_for
from bayesmle.priors.families import (
    LKJ,
    Exponential,
    Gamma,
    HalfCauchy,
    HalfNormal,
    Laplace,
    Normal,
    check_support,
    lkj_log_normaliser,
)
from bayesmle.priors.shrinkage import (
    Cauchy,
    ElasticNet,
    Horseshoe,
    RegularizedHorseshoe,
    StudentT,
    elastic_net_log_normaliser,
)
from bayesmle.priors.simplex import Dirichlet

__all__ = [
    "LKJ",
    "L1Part",
    "Beta",
    "Cauchy",
    "ElasticNet",
    "Dirichlet",
    "Exponential",
    "Flat",
    "Gamma",
    "HalfCauchy",
    "HalfFlat",
    "HalfNormal",
    "Horseshoe",
    "Laplace",
    "Normal",
    "Prior",
    "StudentT",
    "RegularizedHorseshoe",
    "Support",
    "check_support",
    "elastic_net_log_normaliser",
    "flat_prior_for",
    "lkj_log_normaliser",
]
