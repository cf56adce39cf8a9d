"""The GLMM deviance as an optimiser sees it: ``x = (theta, beta)``, value, gradient, Hessian.

Every evaluation finds the conditional mode by PIRLS, warm-started from the previous mode (the
optimiser's points are close to each other), then the Laplace deviance (``nagq = 1``) or the
adaptive Gauss-Hermite deviance (``nagq > 1``) and its exact gradient. The Hessian is the central
difference of the exact gradient.
"""

from __future__ import annotations

import numpy as np

from bayesmle.errors import ConvergenceError, SpecError
from bayesmle.inference.mixed.glmm_agq import agq_value_grad
from bayesmle.inference.mixed.glmm_laplace import (
    Mode,
    Structure,
    laplace_gradient,
    laplace_value,
    mode_at,
)
from bayesmle.models.mixed_design import MixedDesign

__all__ = ["MAX_NAGQ", "Objective", "check_nagq"]

#: Most quadrature points, as ``glmer`` (``nAGQ <= 25``).
MAX_NAGQ = 25
_FD_STEP = 1e-5


def check_nagq(design: MixedDesign, nagq: object) -> int:
    """``nagq`` as an int in ``1..MAX_NAGQ``; > 1 only for one scalar random effect.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> blk = RandomBlock("g", ("Intercept",), ("a",), np.zeros(2, int), np.ones((2, 1)))
    >>> d = MixedDesign(np.ones((2, 1)), ("Intercept",), np.array([0.0, 1.0]), (blk,),
    ...                 family="bernoulli", link="logit")
    >>> check_nagq(d, 9)
    9
    """
    ok = not isinstance(nagq, bool) and isinstance(nagq, int | np.integer)
    if not ok or not 1 <= int(nagq) <= MAX_NAGQ:
        raise SpecError(f"`nagq` must be an integer from 1 (Laplace) to {MAX_NAGQ} (as glmer), "
                        f"got {nagq!r}.")
    nagq = int(nagq)
    if nagq > 1 and (len(design.blocks) != 1 or design.blocks[0].k != 1):
        terms = [f"({' + '.join(b.columns)} | {b.group})" for b in design.blocks]
        raise SpecError(
            f"`nagq` = {nagq} (adaptive Gauss-Hermite quadrature) needs a single scalar random "
            f"effect such as (1 | g); this model has {terms}. Valid: nagq = 1 (Laplace) for "
            "this model, or a model with one scalar random-effect term.")
    return nagq


class Objective:
    """The deviance ``D(x)``, ``x = (theta, beta)``, of one design at one ``nagq``.

    Attributes
    ----------
    st : Structure
    nagq : int
    u : ndarray or None
        The last conditional mode (warm start of the next PIRLS).
    n_eval : int
        Deviance evaluations so far.
    """

    def __init__(self, st: Structure, nagq: int):
        self.st = st
        self.nagq = nagq
        self.nt = st.design.n_theta
        self.u: np.ndarray | None = None
        self.n_eval = 0

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, beta)`` of ``x``."""
        x = np.asarray(x, dtype=float)
        return x[:self.nt], x[self.nt:]

    def mode(self, x: np.ndarray) -> Mode:
        """The conditional mode at ``x`` (warm-started; remembered for the next call)."""
        theta, beta = self.split(x)
        mode = mode_at(self.st, theta, beta, self.u)
        self.u = mode.u
        return mode

    def value_grad(self, x: np.ndarray, grad: bool = True) -> tuple[float, np.ndarray | None]:
        """``D(x)`` and its gradient (None when ``grad`` is False)."""
        self.n_eval += 1
        mode = self.mode(x)
        if self.nagq == 1:
            value = laplace_value(mode)
            return value, laplace_gradient(self.st, mode) if grad else None
        return agq_value_grad(self.st, mode, self.nagq, grad=grad)

    def value(self, x: np.ndarray) -> float:
        """``D(x)``."""
        return self.value_grad(x, grad=False)[0]

    def safe(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``value_grad`` for an optimiser: ``inf`` where the deviance cannot be evaluated."""
        try:
            f, g = self.value_grad(x)
        except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError):
            self.u = None
            return np.inf, np.zeros(np.size(x))
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            self.u = None
            return np.inf, np.zeros(np.size(x))
        return f, g

    def hessian(self, x: np.ndarray, coords: np.ndarray | None = None) -> np.ndarray:
        """Central differences of the exact gradient (NaN rows/columns outside ``coords``)."""
        x = np.asarray(x, dtype=float)
        m = x.size
        coords = np.arange(m) if coords is None else np.flatnonzero(coords)
        H = np.full((m, m), np.nan)
        cols = np.zeros((m, coords.size))
        for a, j in enumerate(coords):
            h = _FD_STEP * max(1.0, abs(x[j]))
            xp, xm = x.copy(), x.copy()
            xp[j] += h
            xm[j] -= h
            cols[:, a] = (self.value_grad(xp)[1] - self.value_grad(xm)[1]) / (2 * h)
        sub = cols[coords]
        H[np.ix_(coords, coords)] = (sub + sub.T) / 2
        return H
