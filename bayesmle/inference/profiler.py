"""The constrained re-optimisation behind profile intervals (see :mod:`.profile`).

A :class:`Profiler` holds a point result's optimum on its bound model and, for one reported
scalar at a time, eliminates the linear constraint that fixes it and re-optimises the others
with the certified optimiser (L1 terms included), then finds where the signed root deviance
crosses the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from bayesmle.errors import SpecError
from bayesmle.inference.bound import BoundModel
from bayesmle.inference.optimize import L1Terms, minimize_composite
from bayesmle.inference.result import FitResult

__all__ = ["Constraint", "Profiler"]

#: Certificate of each inner (constrained) optimum, as for the fit itself.
_DECREMENT_TOL = 1e-10
#: Stepping out goes at most 2^this Wald half-widths from the optimum (affine parameters).
_MAX_DOUBLINGS = 14
#: Largest excursion of a transformed (log / logit) internal coordinate from its optimum.
_MAX_LOG_STEP = 25.0


@dataclass(frozen=True)
class Constraint:
    """The constraint ``a·x = t`` that fixes one reported scalar, and its geometry."""

    label: str
    index: int  #: position of the label in the flat reported vector
    kind: str  #: "affine" (psi = a·x + b) or "coordinate" (psi = h(x_k))
    a: np.ndarray
    pivot: int
    t_hat: float
    sd_t: float
    slope: float  #: d psi / d t at the optimum (sign gives the orientation)


class Profiler:
    """Constrained re-optimisation of a point result's objective on its bound model."""

    def __init__(self, result: FitResult, bound: BoundModel):
        self.result = result
        self.fun = bound.objective(jacobian=False)
        self.point = bound.evaluate
        l1 = result.optimum.l1  # the terms the fit itself optimised
        self.l1_index = np.asarray(l1.index, dtype=int)
        self.l1_center = np.asarray(l1.center, dtype=float)
        self.l1_weight = np.asarray(l1.weight, dtype=float)
        self.x_hat = np.asarray(result.optimum.x, dtype=float)
        self.n = self.x_hat.size
        f, _, h = self.fun(self.x_hat)
        self.obj_hat = float(f) + self._penalty(self.x_hat)
        self.hess = 0.5 * (np.asarray(h) + np.asarray(h).T)
        ev = self.point(self.x_hat)
        self.psi_hat = ev.flat
        self.jac = np.asarray(ev.jacobian, dtype=float)
        free = np.asarray(result.optimum.free, dtype=bool)
        cov = np.full((self.n, self.n), np.nan)
        try:
            cov_ff = np.linalg.inv(self.hess[np.ix_(free, free)])
            cov = np.zeros((self.n, self.n))
            cov[np.ix_(free, free)] = cov_ff
        except np.linalg.LinAlgError:
            pass
        self.cov_x = cov
        diag = np.diag(cov)
        self.sd_x = np.where(np.isfinite(diag) & (diag > 0), np.sqrt(np.abs(diag)), 1.0)
        self.unconverged: set[str] = set()

    # -- helpers ------------------------------------------------------------------------------
    def _penalty(self, x: np.ndarray) -> float:
        if self.l1_index.size == 0:
            return 0.0
        return float(np.sum(self.l1_weight * np.abs(x[self.l1_index] - self.l1_center)))

    # -- constraint geometry -----------------------------------------------------------------
    def constraint(self, label: str) -> Constraint:
        """Classify ``label`` as affine or single-coordinate in ``x`` and set up ``a·x = t``."""
        j = self.result.labels.index(label)
        a = self.jac[j].copy()
        scale = np.max(np.abs(a)) if a.size else 0.0
        if not np.isfinite(scale) or scale == 0.0:
            raise SpecError(f"Parameter {label!r} does not depend on the model's free "
                            "parameters; it has no profile.")
        # A second point, a fraction of a standard error away in every coordinate.
        pattern = np.where(np.arange(self.n) % 2 == 0, 0.37, -0.29)
        delta = pattern * self.sd_x
        ev = self.point(self.x_hat + delta)
        a1 = np.asarray(ev.jacobian, dtype=float)[j]
        psi1 = ev.flat[j]
        tol = 1e-8
        lin_pred = self.psi_hat[j] + a @ delta
        affine = (np.all(np.abs(a1 - a) <= tol * scale)
                  and abs(psi1 - lin_pred) <= tol * (abs(psi1) + abs(a @ delta) + 1e-300))
        nz0, nz1 = np.flatnonzero(a != 0), np.flatnonzero(a1 != 0)
        l1 = set(self.l1_index.tolist())
        if affine:
            # Pivot: an unpenalised coordinate with the largest effect (|a_k| sd_k).
            weight = np.abs(a) * self.sd_x
            unpen = [k for k in nz0 if k not in l1]
            pen = [k for k in nz0 if k in l1]
            if unpen:
                pivot = int(max(unpen, key=lambda k: weight[k]))
            elif len(pen) == 1:
                pivot = int(pen[0])
            else:
                raise SpecError(
                    f"Parameter {label!r} is a combination of several L1-penalised "
                    "coordinates; its profile under Laplace priors is not supported.")
            kind = "affine"
            slope = 1.0
        elif nz0.size == 1 and nz1.size == 1 and nz0[0] == nz1[0]:
            pivot = int(nz0[0])
            a = np.zeros(self.n)
            a[pivot] = 1.0
            kind = "coordinate"
            slope = float(self.jac[j, pivot])
        else:
            raise SpecError(
                f"Parameter {label!r} is a nonlinear function of several of the model's "
                "internal coordinates; profile intervals support parameters that are affine in "
                "them or a monotone transform of one (every built-in model). Use "
                "method='wald' for this parameter.")
        t_hat = float(a @ self.x_hat)
        var_t = float(a @ self.cov_x @ a) if np.all(np.isfinite(self.cov_x)) else np.nan
        if np.isfinite(var_t) and var_t > 0:
            sd_t = np.sqrt(var_t)
        else:
            hkk = self.hess[pivot, pivot] / a[pivot] ** 2
            sd_t = 1.0 / np.sqrt(hkk) if np.isfinite(hkk) and hkk > 0 else 1.0
        return Constraint(label, j, kind, a, pivot, t_hat, float(sd_t), slope)

    # -- the profile at one value of the constraint -----------------------------------------
    def solve(self, con: Constraint, t: float, x_start: np.ndarray
              ) -> tuple[float, np.ndarray | None, float]:
        """Minimum of the objective on ``a·x = t`` and its derivative in ``t``.

        Returns ``(value, x, slope)``; ``(inf, None, nan)`` where it cannot be evaluated.
        The derivative is the Lagrange multiplier ``g_k / a_k`` (envelope theorem).
        """
        k, a = con.pivot, con.a
        rest = np.delete(np.arange(self.n), k)
        a_rest = a[rest]
        ak = a[k]
        failed = (np.inf, None, np.nan)

        def to_x(z: np.ndarray) -> np.ndarray:
            x = np.empty(self.n)
            x[rest] = z
            x[k] = (t - a_rest @ z) / ak
            return x

        # L1 terms: coordinates other than the pivot keep theirs (position shifts by one past
        # the pivot); the pivot's own term is a constant here (it is fixed: a = e_k).
        pos = {int(c): i for i, c in enumerate(rest)}
        keep = [i for i, c in enumerate(self.l1_index) if int(c) != k]
        const, const_slope = 0.0, 0.0
        if k in set(self.l1_index.tolist()):
            i = int(np.flatnonzero(self.l1_index == k)[0])
            u = t / ak - self.l1_center[i]
            const = float(self.l1_weight[i] * abs(u))
            const_slope = float(self.l1_weight[i] * np.sign(u) / ak)

        def finish(x: np.ndarray, value: float):
            g = self.fun(x)[1]
            return value, x, float(g[k] / ak + const_slope) if np.isfinite(g[k]) else np.nan

        if rest.size == 0:
            x = to_x(np.zeros(0))
            value = float(self.fun(x)[0]) + const
            return finish(x, value) if np.isfinite(value) else failed
        proj = np.zeros((self.n, rest.size))
        proj[rest, np.arange(rest.size)] = 1.0
        proj[k] = -a_rest / ak

        def reduced(z):
            f, g, h = self.fun(to_x(z))
            if not (np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
                # outside the numerical support (overflow): the optimiser backtracks
                return np.inf, np.full(rest.size, np.nan), np.full((rest.size,) * 2, np.nan)
            return f, proj.T @ g, proj.T @ h @ proj

        l1_kw = {}
        if keep:
            l1_kw = {"l1": L1Terms(np.array([pos[int(self.l1_index[i])] for i in keep]),
                                   self.l1_center[keep], self.l1_weight[keep])}
        best: tuple[float, np.ndarray | None] = (np.inf, None)
        for start in (x_start, self.x_hat):
            try:
                res = minimize_composite(reduced, np.asarray(start, dtype=float)[rest],
                                         max_iter=400, **l1_kw)
            except (FloatingPointError, np.linalg.LinAlgError):
                continue
            value = float(res.f + res.penalty + const)
            if not np.isfinite(value):
                continue
            if res.hess_pd and res.decrement <= _DECREMENT_TOL:
                return finish(to_x(res.x), value)
            if value < best[0]:
                best = (value, to_x(res.x))
        if best[1] is None:
            return failed
        self.unconverged.add(con.label)
        return finish(best[1], best[0])

    # -- endpoints ---------------------------------------------------------------------------
    def endpoint(self, con: Constraint, direction: int, q: float) -> float:
        """The natural-scale endpoint on one side (``direction`` +1/-1 in ``t``).

        Safeguarded Newton on the signed root deviance ``r(t) = sqrt(2 (f(t) - f_hat))``,
        which is close to linear in ``t``; its derivative comes free from the Lagrange
        multiplier. It starts at the Wald endpoint, steps out (at most quadrupling the
        distance) until the threshold is bracketed, then keeps Newton steps inside the
        bracket (bisecting otherwise).
        """
        root_q = np.sqrt(q)
        warm = self.x_hat

        def excess(t: float) -> tuple[float, float, np.ndarray | None]:
            nonlocal warm
            value, x, slope = self.solve(con, t, warm)
            if x is None:
                return np.inf, np.nan, None
            warm = x
            r = np.sqrt(max(2.0 * (value - self.obj_hat), 0.0))
            dr = slope / r if r > 0 else np.nan
            return float(r - root_q), float(dr), x

        t_hat, sd = con.t_hat, con.sd_t
        noise = 1e-13 * max(1.0, abs(self.obj_hat)) / root_q
        # How far to search: 2^14 Wald half-widths for an affine parameter; for a transformed
        # one (log scale, logit) at most _MAX_LOG_STEP in its internal coordinate -- a factor
        # e^25 on a scale -- beyond which densities such as the negative binomial's near
        # alpha = 0 lose all precision. A profile still above the threshold there has that
        # side of the interval at the edge of the support.
        limit = sd * root_q * 2.0**_MAX_DOUBLINGS
        if con.kind == "coordinate":
            limit = _MAX_LOG_STEP
        lo, hi = t_hat, None  # excess(lo) < 0 <= excess(hi)
        t = t_hat + direction * min(sd * root_q, limit)
        x_end = None
        for _ in range(200):
            e, de, x = excess(t)
            if not np.isfinite(e):
                # Beyond the support or an overflow: come back towards the last good point.
                hi_bad = t
                t = 0.5 * (lo + hi_bad) if hi is None else 0.5 * (lo + hi)
                if abs(hi_bad - lo) <= 1e-13 * max(1.0, abs(lo)):
                    return self._limit(con, direction)
                continue
            if e >= 0:
                hi = t
            else:
                lo = t
            x_end = x
            step = -e / de if np.isfinite(de) and de * direction > 0 else np.nan
            t_new = t + step
            if hi is None:
                far = abs(t - t_hat)
                if far >= limit * (1 - 1e-12):
                    return self._limit(con, direction)
                if not np.isfinite(t_new) or direction * (t_new - t) <= 0:
                    t_new = t_hat + direction * 2.0 * far
                t_new = t_hat + direction * min(abs(t_new - t_hat), 4.0 * far, limit)
            else:
                a_, b_ = min(lo, hi), max(lo, hi)
                if not (np.isfinite(t_new) and a_ < t_new < b_):
                    t_new = 0.5 * (lo + hi)
            # Stop at the resolution of the objective (its rounding error moves r by about
            # 1e-13 |f| / r) or once the step is negligible (1e-10 standard errors).
            if (abs(e) <= noise or abs(t_new - t) <= max(1e-13 * max(1.0, abs(t)),
                                                          1e-10 * sd)):
                break
            t = t_new
        if x_end is None:  # pragma: no cover - guarded by the support handling above
            return np.nan
        return float(self.point(x_end).flat[con.index])

    def _limit(self, con: Constraint, direction: int) -> float:
        """The parameter's value at the edge of its support in the direction of ``t``."""
        sign = direction * np.sign(con.slope)
        if con.kind == "affine":
            return float(sign * np.inf)
        x = self.x_hat.copy()
        x[con.pivot] = direction * np.inf
        value = float(self.point(x).flat[con.index])
        return value if not np.isnan(value) else float(sign * np.inf)

    def t_of(self, con: Constraint, c: float) -> float:
        """The constraint value ``t`` at which the parameter equals ``c`` (NaN if outside)."""
        if con.kind == "affine":
            return con.t_hat + (c - self.psi_hat[con.index])
        j, k = con.index, con.pivot

        def psi(t: float) -> float:
            x = self.x_hat.copy()
            x[k] = t
            return float(self.point(x).flat[j]) - c

        f0 = psi(con.t_hat)
        if f0 == 0:
            return con.t_hat
        direction = 1 if (f0 < 0) == (con.slope > 0) else -1
        lo, step = con.t_hat, con.sd_t
        for _ in range(200):
            t = lo + direction * step
            ft = psi(t)
            if not np.isfinite(ft):
                step *= 0.5
                continue
            if np.sign(ft) != np.sign(f0):
                a_, b_ = (lo, t) if lo < t else (t, lo)
                return float(scipy.optimize.brentq(psi, a_, b_, xtol=1e-15,
                                                   rtol=4 * np.finfo(float).eps))
            if abs(t) > 1e4:
                break
            lo, step = t, step * 2.0
        return np.nan
