"""Mixed models: marginal likelihood (random effects integrated out), ML, REML and marginal MAP.

* :mod:`.fit` -- :class:`MixedFit`, the record every fit here returns.
* :mod:`.lmm` -- Gaussian: the exact profiled deviance and REML criterion of lme4.
* :mod:`.glmm` -- other families: Laplace approximation (``glmer`` nAGQ = 1) and adaptive
  Gauss-Hermite quadrature for a single scalar random effect.
* :mod:`.marginal` -- the marginal posterior mode (priors on fixed effects and variance
  components, like ``blme``) and the mode of the unconstrained density for Laplace draws.
"""
