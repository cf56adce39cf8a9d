r"""A loss dictionary: each common machine-learning loss is a negative log-likelihood.

Every ``*_nll`` function returns the *total* negative log-likelihood :math:`-\sum_i \log
f(y_i \mid \theta_i)` of the data ``y`` under predictions ``theta`` (a scalar or one value per
observation), with every normalising constant included, so that it equals minus the sum of
``scipy.stats`` log-densities. Each loss is an affine function of that NLL whose coefficients
depend only on the data and on fixed nuisance parameters (``sigma``, ``b``), never on the
predictions -- so minimising the loss *is* maximum likelihood:

=========================  ============  ===================================================
loss                       family        relation (n observations)
=========================  ============  ===================================================
mse                        Gaussian      mse = (2 sigma^2 / n) * (nll - n/2 log(2 pi sigma^2))
binary_cross_entropy       Bernoulli     bce = nll / n
categorical_cross_entropy  Categorical   cce = nll / n
poisson_deviance           Poisson       deviance = (2 / n) * (nll - nll_saturated(y))
mae                        Laplace       mae = (b / n) * (nll - n log(2 b))
=========================  ============  ===================================================

:data:`LOSSES` holds these relations as executable :class:`LossEntry` records (and
:func:`loss_table` as a DataFrame), each naming the scikit-learn metric the loss equals.

The package is numpy/scipy only: :mod:`~bayesmle.losses.likelihoods` holds the NLLs,
:mod:`~bayesmle.losses.metrics` the losses and :mod:`~bayesmle.losses.dictionary` the
dictionary; every public name is re-exported here.
Invalid input raises :class:`~bayesmle.errors.DataError` naming the argument, the offending
value(s) and what is valid.
"""

from bayesmle.losses._inputs import ROW_SUM_TOL
from bayesmle.losses.dictionary import LOSSES, LossEntry, loss_table
from bayesmle.losses.likelihoods import (
    bernoulli_nll,
    bernoulli_nll_logits,
    categorical_nll,
    categorical_nll_logits,
    gaussian_nll,
    laplace_nll,
    poisson_nll,
    poisson_saturated_nll,
)
from bayesmle.losses.metrics import (
    binary_cross_entropy,
    categorical_cross_entropy,
    mae,
    mse,
    poisson_deviance,
)

__all__ = [
    "LOSSES",
    "LossEntry",
    "ROW_SUM_TOL",
    "bernoulli_nll",
    "bernoulli_nll_logits",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "categorical_nll",
    "categorical_nll_logits",
    "gaussian_nll",
    "laplace_nll",
    "loss_table",
    "mae",
    "mse",
    "poisson_deviance",
    "poisson_nll",
    "poisson_saturated_nll",
]
