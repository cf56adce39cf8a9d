"""Why the joint mode of a mixed model is not an estimator: it runs to a spike at sd = 0.

For a Gaussian model with one scalar random-effects term, ``y = X beta + Z b + e``,
``b ~ N(0, sd^2 I_J)``, ``e ~ N(0, sigma^2 I_n)``, two functions of ``sd`` are compared along a
grid:

* the **marginal** log-likelihood ``log p(y | beta, sd, sigma)`` (random effects integrated
  out) maximised over ``beta`` and ``sigma`` -- the profile whose maximiser is the MLE of ``sd``
  (0 for a boundary fit); it is finite everywhere, also at ``sd = 0`` (the fit without groups);
* the **joint** log-density ``log p(y | beta, b, sigma) + log N(b; 0, sd^2 I)`` maximised over
  ``beta``, ``b`` and ``sigma``. As ``sd -> 0`` the best ``b`` goes to 0 with it and the term
  ``-J log sd`` of the random effects' density grows without bound: the joint mode is the
  degenerate spike ``b = 0, sd = 0``, whatever the data. Its slope against ``log sd`` tends to
  ``-J`` (J the number of random effects).

Both come from one penalised least-squares function: with ``lambda = sigma^2 / sd^2``,
``PRSS(lambda) = min over (beta, b) of |y - X beta - Z b|^2 + lambda |b|^2`` (Henderson's
mixed-model equations, solved per group since ``Z'Z`` is diagonal), and

* ``-2 marginal = n log(2 pi sigma^2) + sum_j log(1 + d_j sd^2 / sigma^2) + PRSS / sigma^2``,
* ``-2 joint = n log(2 pi sigma^2) + J log(2 pi sd^2) + PRSS / sigma^2``,

with ``d_j = sum of z_i^2`` over the rows of group ``j``. The remaining maximisation over
``sigma`` is one-dimensional (a grid in ``log sigma`` refined by bounded Brent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from bayesmle.errors import ConvergenceWarning, DataError, Diagnostic, SpecError
from bayesmle.models.spec import ModelSpec
from bayesmle.studies._common import new_figure
from bayesmle.studies._runner import StudyResult

__all__ = ["JointModeResult", "joint_mode"]

def design_from(model: Any, data: Any = None, *, name: str = "model",
                family: str | None = None):
    """A :class:`~bayesmle.models.mixed_design.MixedDesign` from a formula, a spec or a design.

    ``model`` is a formula with random-effects terms (parsed by :func:`bayesmle.models.glm` on
    ``data``, with ``family`` when given), a mixed-model ``ModelSpec`` or a ``MixedDesign``;
    ``family`` (when given) is the family the caller requires.
    """
    from bayesmle.models.mixed_design import MixedDesign

    if isinstance(model, MixedDesign):
        design = model
    elif isinstance(model, str):
        if not isinstance(data, pd.DataFrame):
            raise SpecError(f"`data` must be a pandas DataFrame holding the columns of the "
                            f"formula {model!r}, got {type(data).__name__}.")
        from bayesmle.models.glm import glm

        spec = glm(model, data, family=family or "gaussian")
        return design_from(spec, name=name, family=family)
    elif isinstance(model, ModelSpec):
        if model.solver != "mixed":
            raise SpecError(f"`{name}` must be a mixed model (a formula with a random-effects "
                            f"term such as (1 | g)); this spec has no random effects "
                            f"(solver {model.solver!r}).")
        from bayesmle.models.mixed import mixed_design

        design = mixed_design(model)
    else:
        raise SpecError(f"`{name}` must be a formula such as 'y ~ x + (1 | g)' (with `data`), "
                        f"a mixed-model spec from bayesmle.models.glm or a MixedDesign, got "
                        f"{type(model).__name__}.")
    if family is not None and design.family != family:
        raise SpecError(f"`{name}` must be a {family} mixed model; its family is "
                        f"{design.family!r}.")
    return design


#: Points of the inner grid in ``log sigma`` before the bounded Brent refinement.
_SIGMA_GRID = 81
#: Largest sd grid accepted.
MAX_GRID = 10_000


@dataclass(frozen=True, eq=False)
class _Gaussian1:
    """Sufficient pieces of a Gaussian model with one scalar random-effects term."""

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    codes: np.ndarray
    d: np.ndarray  # sum of z^2 per level
    XtX: np.ndarray
    Xty: np.ndarray
    XtZ: np.ndarray  # (p, J)
    Zty: np.ndarray  # (J,)
    rss_fixed: float  # residual sum of squares of the fit without random effects

    @property
    def n(self) -> int:
        return int(self.y.size)

    @property
    def J(self) -> int:
        return int(self.d.size)

    @classmethod
    def of(cls, design) -> _Gaussian1:
        block = design.blocks[0]
        X = np.asarray(design.X, dtype=float)
        y = np.asarray(design.y, dtype=float)
        if design.offset is not None:
            y = y - np.asarray(design.offset, dtype=float)
        z = np.asarray(block.values, dtype=float)[:, 0]
        codes = np.asarray(block.codes, dtype=np.int64)
        J = block.n_levels
        d = np.bincount(codes, weights=z * z, minlength=J)
        XtZ = np.stack([np.bincount(codes, weights=X[:, k] * z, minlength=J)
                        for k in range(X.shape[1])]) if X.shape[1] else np.zeros((0, J))
        Zty = np.bincount(codes, weights=z * y, minlength=J)
        if X.shape[1]:
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
            rss = float(np.sum((y - X @ beta) ** 2))
        else:
            rss = float(y @ y)
        return cls(X, y, z, codes, d, X.T @ X, X.T @ y, XtZ, Zty, rss)

    def solve(self, lam: float) -> tuple[np.ndarray, np.ndarray, float]:
        """``(beta, b, PRSS)`` of ``min |y - X beta - Z b|^2 + lam |b|^2`` (``lam > 0``)."""
        w = 1.0 / (self.d + lam)
        if self.X.shape[1]:
            A = self.XtX - (self.XtZ * w) @ self.XtZ.T
            rhs = self.Xty - self.XtZ @ (w * self.Zty)
            beta = np.linalg.solve(A, rhs)
            b = w * (self.Zty - self.XtZ.T @ beta)
            resid = self.y - self.X @ beta - self.z * b[self.codes]
        else:
            beta = np.zeros(0)
            b = w * self.Zty
            resid = self.y - self.z * b[self.codes]
        return beta, b, float(resid @ resid + lam * (b @ b))

    def marginal(self, sd: float, sigma: float) -> float:
        """Marginal log-likelihood maximised over beta, at ``(sd, sigma)``."""
        s2 = sigma * sigma
        if sd == 0.0:
            prss, logdet = self.rss_fixed, 0.0
        else:
            prss = self.solve(s2 / (sd * sd))[2]
            logdet = float(np.sum(np.log1p(self.d * (sd * sd / s2))))
        return -0.5 * (self.n * np.log(2 * np.pi * s2) + logdet + prss / s2)

    def joint(self, sd: float, sigma: float) -> float:
        """Joint log-density maximised over beta and b, at ``(sd, sigma)`` (``sd > 0``)."""
        s2 = sigma * sigma
        prss = self.solve(s2 / (sd * sd))[2]
        return -0.5 * (self.n * np.log(2 * np.pi * s2) + self.J * np.log(2 * np.pi * sd * sd)
                       + prss / s2)


def _max_over_sigma(func, scale: float) -> tuple[float, float]:
    """``(max, argmax)`` of ``func(sigma)`` over sigma > 0: grid in log sigma, then Brent."""
    t = np.linspace(np.log(scale) - 14.0, np.log(scale) + 3.0, _SIGMA_GRID)
    values = np.array([func(np.exp(v)) for v in t])
    values = np.where(np.isfinite(values), values, -np.inf)
    i = int(np.argmax(values))
    lo, hi = t[max(i - 1, 0)], t[min(i + 1, t.size - 1)]
    res = minimize_scalar(lambda v: -func(np.exp(v)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})
    if -res.fun >= values[i]:
        return float(-res.fun), float(np.exp(res.x))
    return float(values[i]), float(np.exp(t[i]))


def _check_grid(sd_grid: Any) -> np.ndarray:
    try:
        grid = np.asarray(sd_grid, dtype=float)
    except (TypeError, ValueError):
        grid = np.array([np.nan])
    ok = grid.ndim == 1 and 3 <= grid.size <= MAX_GRID and bool(np.all(np.isfinite(grid))) \
        and bool(np.all(grid > 0))
    if not ok:
        shown = repr(sd_grid)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        raise SpecError(f"`sd_grid` must be a sequence of 3 to {MAX_GRID:,} finite standard "
                        f"deviations > 0 (e.g. np.geomspace(1e-4, 3, 40)), got {shown}.")
    return np.unique(grid)


@dataclass(frozen=True, eq=False, repr=False)
class JointModeResult(StudyResult):
    """Result of :func:`joint_mode`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per ``sd`` of the grid (ascending): ``sd``, ``log_sd``, ``marginal`` (marginal
        log-likelihood profiled over beta and sigma), ``marginal_sigma`` (the sigma reaching
        it), ``joint`` (joint log-density maximised over beta, b and sigma), ``joint_sigma``,
        ``b_norm`` (Euclidean norm of the maximising random effects: -> 0 with sd).
    sd_hat : float
        Maximiser of the marginal profile (the MLE of sd; 0 when it is on the boundary).
    marginal_max : float
        The marginal log-likelihood there (the maximised log-likelihood of the model).
    marginal_at_zero : float
        The marginal profile at ``sd = 0`` (the fit without random effects): finite.
    boundary : bool
        Whether the marginal maximum is at ``sd = 0``.
    joint_slope : float
        Slope of the joint profile against ``log sd`` between the two smallest grid values
        (theory: tends to ``-n_groups`` as sd -> 0).
    n_groups : int
        Number of random effects ``J``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle import studies
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> rng = np.random.default_rng(1)
    >>> codes = np.repeat(np.arange(6), 4)
    >>> y = 1.0 + rng.normal(0, 1.0, 6)[codes] + rng.normal(0, 0.5, 24)
    >>> block = RandomBlock("g", ("Intercept",), tuple("abcdef"), codes, np.ones((24, 1)))
    >>> design = MixedDesign(np.ones((24, 1)), ("Intercept",), y, (block,))
    >>> res = studies.joint_mode(design, sd_grid=np.geomspace(1e-4, 5, 30))
    >>> res.n_groups, round(res.joint_slope, 2)  # the joint density grows like -J log sd
    (6, -6.0)
    >>> type(res.plot()).__name__
    'Figure'
    """

    sd_hat: float = float("nan")
    marginal_max: float = float("nan")
    marginal_at_zero: float = float("nan")
    boundary: bool = False
    joint_slope: float = float("nan")
    n_groups: int = 0

    def plot(self):
        """Left: the marginal profile with the MLE; right: the joint profile vs log sd."""
        fig, (ax1, ax2) = new_figure(ncols=2, width=5.5, height=4.0)
        t = self.table
        ax1.plot(t["sd"], t["marginal"], "-", color="tab:blue", lw=1.8,
                 label="marginal log-likelihood (profiled)")
        ax1.axhline(self.marginal_at_zero, color="0.5", ls=":", lw=1,
                    label="sd = 0 (no random effects)")
        if self.sd_hat > 0:
            ax1.axvline(self.sd_hat, color="tab:red", ls="--", lw=1,
                        label=f"MLE sd = {self.sd_hat:.3g}")
        else:
            ax1.annotate("MLE on the boundary: sd = 0", xy=(0.02, 0.05),
                         xycoords="axes fraction", color="tab:red", fontsize=8)
        ax1.set(xscale="log", xlabel="sd (random effects)", ylabel="log-likelihood",
                title="Marginal: finite, maximised at the MLE")
        ax1.legend(fontsize=7)
        ax2.plot(t["log_sd"], t["joint"], "-", color="tab:orange", lw=1.8,
                 label="joint log-density (max over beta, b, sigma)")
        x0, y0 = t["log_sd"].iloc[0], t["joint"].iloc[0]
        ax2.plot(t["log_sd"], y0 - self.n_groups * (t["log_sd"] - x0), "k:", lw=1,
                 label=f"slope -J = -{self.n_groups}")
        ax2.set(xlabel="log sd", ylabel="log density",
                title="Joint: unbounded as sd -> 0 (degenerate spike)")
        ax2.legend(fontsize=7)
        return fig


def joint_mode(model: Any, data: pd.DataFrame | None = None, *,
               sd_grid: Sequence[float] | np.ndarray | None = None) -> JointModeResult:
    """Marginal likelihood profile vs joint log-density along a grid of random-effect sds.

    Parameters
    ----------
    model : str, ModelSpec or MixedDesign
        A Gaussian mixed model with a single scalar random-effects term (``(1 | g)``, or one
        slope ``(0 + x | g)``): a formula such as ``"y ~ x + (1 | g)"`` (with ``data``), a
        spec from :func:`bayesmle.models.glm`, or a
        :class:`~bayesmle.models.mixed_design.MixedDesign`.
    data : pandas.DataFrame, optional
        The data of a formula.
    sd_grid : sequence of float, optional
        Standard deviations of the random effects (> 0, at least 3; sorted here). Default:
        40 values from ``1e-4`` to ``3`` times the standard deviation of ``y``, geometric.

    Returns
    -------
    JointModeResult
        ``.table`` (one row per sd), ``.sd_hat``, ``.marginal_max``, ``.joint_slope``,
        ``.plot()``.

    Raises
    ------
    SpecError
        ``model`` is not a Gaussian model with one scalar random-effects term, or ``sd_grid``
        is not a grid of positive values.
    DataError
        The fixed effects fit ``y`` exactly (no residual variance to estimate).

    Examples
    --------
    Six groups of four: the marginal profile is finite and peaks at the MLE, the joint
    density climbs like ``-6 log sd`` as sd shrinks.

    >>> import numpy as np
    >>> from bayesmle import studies
    >>> from bayesmle.models.mixed_design import MixedDesign, RandomBlock
    >>> rng = np.random.default_rng(1)
    >>> codes = np.repeat(np.arange(6), 4)
    >>> y = 1.0 + rng.normal(0, 1.0, 6)[codes] + rng.normal(0, 0.5, 24)
    >>> block = RandomBlock("g", ("Intercept",), tuple("abcdef"), codes, np.ones((24, 1)))
    >>> design = MixedDesign(np.ones((24, 1)), ("Intercept",), y, (block,))
    >>> res = studies.joint_mode(design)
    >>> res.boundary, round(res.sd_hat, 3)
    (False, 0.718)
    >>> bool(res.table["joint"].iloc[0] > res.table["joint"].max() - 1e-9)  # smallest sd wins
    True
    """
    design = design_from(model, data, name="model", family="gaussian")
    if len(design.blocks) != 1 or design.blocks[0].k != 1:
        terms = [f"({' + '.join(b.columns)} | {b.group})" for b in design.blocks]
        raise SpecError(f"`model` must have exactly one scalar random-effects term such as "
                        f"(1 | g); it has {terms}. The closed forms here are per group.")
    g = _Gaussian1.of(design)
    if g.rss_fixed <= 1e-12 * max(float(g.y @ g.y), 1e-300):
        raise DataError("`model`: the fixed effects fit y exactly (residual sum of squares 0), "
                        "so there is no residual variance; the profiles are not defined.")
    scale = float(np.sqrt(g.rss_fixed / g.n))
    grid = (np.geomspace(1e-4, 3.0, 40) * float(np.std(g.y)) if sd_grid is None
            else _check_grid(sd_grid))
    rows = []
    for sd in grid:
        m_val, m_sig = _max_over_sigma(lambda s, sd=sd: g.marginal(sd, s), scale)
        j_val, j_sig = _max_over_sigma(lambda s, sd=sd: g.joint(sd, s), scale)
        b = g.solve(j_sig ** 2 / sd ** 2)[1]
        rows.append({"sd": float(sd), "log_sd": float(np.log(sd)), "marginal": m_val,
                     "marginal_sigma": m_sig, "joint": j_val, "joint_sigma": j_sig,
                     "b_norm": float(np.linalg.norm(b))})
    table = pd.DataFrame(rows)

    def profile(sd: float) -> float:
        return _max_over_sigma(lambda s: g.marginal(sd, s), scale)[0]

    at_zero = profile(0.0)
    i = int(np.argmax(table["marginal"].to_numpy()))
    diagnostics: list[Diagnostic] = []
    if i == 0:
        res = minimize_scalar(lambda s: -profile(s), bounds=(0.0, grid[1]), method="bounded",
                              options={"xatol": 1e-10 * grid[1]})
        sd_hat, best = float(res.x), float(-res.fun)
    else:
        lo, hi = np.log(grid[i - 1]), np.log(grid[min(i + 1, grid.size - 1)])
        res = minimize_scalar(lambda v: -profile(np.exp(v)), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-10})
        sd_hat, best = float(np.exp(res.x)), float(-res.fun)
        if i == grid.size - 1:
            diagnostics.append(Diagnostic(ConvergenceWarning, (
                f"the marginal profile still increases at the largest sd of `sd_grid` "
                f"({grid[-1]:.4g}); the MLE of sd lies beyond it -- extend the grid.")))
    if best < table["marginal"].iloc[i]:
        sd_hat, best = float(grid[i]), float(table["marginal"].iloc[i])
    boundary = at_zero >= best
    if boundary:
        sd_hat, best = 0.0, at_zero
    lsd, jt = table["log_sd"].to_numpy(), table["joint"].to_numpy()
    return JointModeResult(
        table=table,
        settings={"n": g.n, "n_groups": g.J, "group": design.blocks[0].group,
                  "sd_grid": [float(v) for v in grid]},
        diagnostics=tuple(diagnostics),
        sd_hat=sd_hat,
        marginal_max=best,
        marginal_at_zero=at_zero,
        boundary=bool(boundary),
        joint_slope=float((jt[1] - jt[0]) / (lsd[1] - lsd[0])),
        n_groups=g.J,
    )
