"""How a regression represents its coefficients inside the model: typed, chosen from all priors.

A regression is never fitted in the user's coordinates ``(intercept, coef)``: the model's free
variables are well-conditioned *internal coordinates*, and the coefficients are exact linear
functions of them, registered as the model variables ``intercept`` and ``coef`` with their
priors attached (:meth:`bayesmle.priors.Prior.attach` -- the one route by which priors enter a
model). Two coordinate systems exist, each a small frozen value that the builder chooses with
:func:`choose_coordinates` from *every* prior of the model:

* :class:`QRCoordinates` -- ``beta = anchor + R^-1 theta / norms`` for the column-scaled QR (or
  Gram-Cholesky) factor ``R`` of ``[1, X]``; the free ``theta`` is as well conditioned as an
  orthogonal design. A prior on ``beta`` is a smooth function of ``theta``, so this is used when
  no coefficient prior has an L1 part (flat and Gaussian priors) and the design has full rank.
* :class:`StandardisedCoordinates` -- ``coef = coef_std / scale`` with centred and scaled columns,
  the intercept either free or centred (``intercept = intercept_c - center @ coef``, only under
  a flat intercept prior). Every coefficient and a free intercept is then one coordinate times a
  constant, so a Laplace prior on any of them stays *separable* and the optimiser's exact L1
  solver applies. Used when some coefficient or intercept prior has an L1 part, and for
  rank-deficient designs. Under a prior that declares its own variables (a horseshoe:
  ``Prior.owns_variables``, non-centred ``coef = z * lambda * tau``) the coefficients are that
  prior's Deterministic instead of ``coef_std / scale`` (``own_coef``); the intercept stays a
  separate coordinate, centred under a flat intercept prior.

``stored`` says whether the model keeps a transformed copy of the design (``Q`` or the
standardised ``Xs``: ill-conditioned or rank-deficient designs) or computes the linear
predictor from the user's ``X`` (well-conditioned designs, no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.linalg import solve_triangular

from bayesmle.models.design import Design, GramFactor
from bayesmle.models.design_arrays import (
    gaussian_sufficient_stats,
    implicit_qr_arrays,
    implicit_standardised_arrays,
    qr_arrays,
    standardised_arrays,
)
from bayesmle.priors import Prior

__all__ = ["Coordinates", "QRCoordinates", "StandardisedCoordinates", "choose_coordinates"]



def design_data(name: str, value: np.ndarray):
    """``pm.Data(name, value)`` for a validated design matrix, without copying it.

    ``pm.Data`` copies a float array twice over (``astype`` and the shared variable's own
    copy) and scans it for NaNs; a compiled model kept in the engine's cache would then hold
    a copy of the first data set of its structure (1x X; its functions take the data as
    inputs, so the values are never read there). The design was checked finite by
    :func:`~bayesmle.models.design.as_design`.

    Examples
    --------
    >>> X = np.eye(3)
    >>> with pm.Model() as model:
    ...     shared = design_data("X", X)
    >>> shared.get_value(borrow=True) is X, model["X"] is shared
    (True, True)
    """
    import pytensor

    model = pm.modelcontext(None)
    shared = pytensor.shared(value, model.name_for(name), borrow=True)
    model.register_data_var(shared)
    return shared

@dataclass(frozen=True)
class _Base:
    intercept: bool
    #: 0 for a scalar linear predictor, K - 1 for softmax regression.
    n_out: int
    #: The model keeps a transformed copy of the design (Q or Xs).
    stored: bool

    def _shape(self, p: int) -> tuple[int, ...]:
        return (p,) if self.n_out == 0 else (p, self.n_out)

    def _attach(self, model: pm.Model, priors: Mapping[str, Prior], intercept, coef):
        if not getattr(self, "own_coef", False):  # else declared by the prior itself
            coef = priors["coef"].attach(model, "coef", coef)
        if self.intercept:
            intercept = priors["intercept"].attach(model, "intercept", intercept)
        return intercept, coef


@dataclass(frozen=True)
class QRCoordinates(_Base):
    """``beta = anchor + R^-1 theta / norms``; the free variable is ``theta`` (flat)."""

    def arrays(self, design: Design, y: np.ndarray | None, factor: GramFactor | None) -> dict:
        """Arrays the model declares (``y`` given for a Gaussian response: anchor + stats)."""
        if not self.stored:
            return {"X": design.X, **implicit_qr_arrays(design, self.intercept, factor, y)}
        arrays = qr_arrays(design, self.intercept, y)
        if y is not None:
            arrays.update(gaussian_sufficient_stats(arrays["Q"], y - arrays["eta_anchor"]))
        return arrays

    def declare(self, model: pm.Model, data: Mapping[str, np.ndarray],
                priors: Mapping[str, Prior]):
        """Declare ``theta`` and the coefficients; returns ``(eta, intercept, coef)``."""
        k = self.n_out
        with model:
            norms = pm.Data("col_norm", data["col_norm"])
            anchor = pm.Data("anchor", data["anchor"])
            theta = pm.Flat("theta", shape=self._shape(data["col_norm"].shape[0]))
            if self.stored:  # ill-conditioned: solve with R (an inverse would lose digits)
                beta = solve_triangular(pm.Data("R", data["R"]), theta, lower=False)
                beta = anchor + beta / norms if k == 0 else beta / norms[:, None]
                intercept = beta[0] if self.intercept else None
                coef = beta[1:] if self.intercept else beta
                q = pm.Data("Q", data["Q"])
                eta_anchor = pm.Data("eta_anchor", data["eta_anchor"])
                eta = eta_anchor + q @ theta if k == 0 else q @ theta
            else:
                # beta = anchor + coef_map @ theta, sliced on the data side so that gradients
                # are plain products; eta = [1, X] @ beta from the user's X (no Q, no copy).
                cmap = pm.Data("coef_map", data["coef_map"])
                i = int(self.intercept)
                coef = anchor[i:] + cmap[i:] @ theta if k == 0 else cmap[i:] @ theta
                eta = design_data("X", data["X"]) @ coef
                intercept = None
                if self.intercept:
                    intercept = anchor[0] + cmap[0] @ theta if k == 0 else cmap[0] @ theta
                    eta = eta + intercept
        intercept, coef = self._attach(model, priors, intercept, coef)
        return eta, intercept, coef

    def start(self, arrays: Mapping[str, np.ndarray], eta0: Any, gaussian: bool) -> dict:
        """Starting ``theta``: the anchor for a Gaussian model, else a constant predictor."""
        p = arrays["col_norm"].shape[0]
        if gaussian:  # the anchor is the refined least-squares solution
            theta = np.zeros(p)
        else:
            if self.stored:
                q_mean = arrays["Q"].mean(axis=0)
            else:  # column means of Q = ([1, X] / norms) R^-1, without Q
                x_mean = arrays["X"].mean(axis=0)
                a_mean = np.concatenate(([1.0], x_mean)) if self.intercept else x_mean
                q_mean = a_mean @ arrays["coef_map"]
            theta = np.multiply.outer(q_mean, eta0) if self.n_out else q_mean * eta0
        return {"theta": np.reshape(theta, self._shape(p))}

    def has_sufficient_stats(self) -> bool:
        """Whether a Gaussian model of these coordinates carries sufficient statistics."""
        return True

    def stats_coordinates(self, model: pm.Model):
        """The free vector in which the Gaussian RSS is an exact quadratic."""
        return model["theta"]


@dataclass(frozen=True)
class StandardisedCoordinates(_Base):
    """``coef = coef_std / scale``; intercept free, or ``intercept_c - center @ coef``."""

    #: The intercept is the centred coordinate (only under a flat intercept prior).
    centred: bool = False
    #: The coefficients are the coefficient prior's own variable (``Prior.owns_variables``).
    own_coef: bool = False

    def arrays(self, design: Design, y: np.ndarray | None, factor: GramFactor | None) -> dict:
        """Arrays the model declares (sufficient statistics only without a stored copy)."""
        if not self.stored:
            return implicit_standardised_arrays(design, self.intercept, factor,
                                                centre=self.centred, y=y)
        # Ill-conditioned or rank-deficient design: sums over rows. (An expansion of the RSS
        # in these coordinates would lose ~cond * eps of the gradient to cancellation when
        # the MAP is far from the least-squares point, as lasso solutions are.)
        return standardised_arrays(design, self.intercept, centre=self.centred)

    def _intercept_name(self) -> str:
        return "intercept_c" if self.centred else "intercept"

    def declare(self, model: pm.Model, data: Mapping[str, np.ndarray],
                priors: Mapping[str, Prior]):
        """Declare ``coef_std`` (and the intercept); returns ``(eta, intercept, coef)``."""
        k = self.n_out
        name = "Xs" if self.stored else "X"
        with model:
            xs = design_data(name, data[name])
            center = pm.Data("center", data["center"])
            scale = pm.Data("scale", data["scale"])
        col_scale = scale if k == 0 else scale[:, None]
        shape = self._shape(data[name].shape[1])
        if self.own_coef:
            coef = priors["coef"].rv(model, "coef", shape=shape)
            z = coef * col_scale
        else:
            with model:
                z = pm.Flat("coef_std", shape=shape)
            coef = z / col_scale
        # (X - center) / scale @ z, from the stored standardised copy or from the user's X
        eta = xs @ z if self.stored else xs @ coef - center @ coef
        intercept = None
        if self.intercept:
            with model:
                a0 = pm.Flat(self._intercept_name(), shape=() if k == 0 else (k,))
            intercept = a0 - center @ coef if self.centred else a0
            eta = eta + a0
        intercept, coef = self._attach(model, priors, intercept, coef)
        return eta, intercept, coef

    def start(self, arrays: Mapping[str, np.ndarray], eta0: Any, gaussian: bool) -> dict:
        """Zero coefficients and the intercept of a constant predictor.

        A Gaussian model with sufficient statistics starts at their least-squares anchor
        ``ss_w0`` instead (as QR coordinates do): there the Hessian is positive definite in
        the coefficients and the scale jointly, and the first step already solves the
        penalised problem at about the right scale.
        """
        if "ss_w0" in arrays and self.has_sufficient_stats():
            w0 = np.asarray(arrays["ss_w0"], dtype=float)
            i = int(self.intercept)
            start = {"coef_std": w0[i:].reshape(self._shape(w0.size - i))}
            if self.intercept:
                start[self._intercept_name()] = float(w0[0])
            return start
        start = {} if self.own_coef else {
            "coef_std": np.zeros(self._shape(arrays["center"].shape[0]))}
        if self.intercept:
            start[self._intercept_name()] = eta0
        return start

    def has_sufficient_stats(self) -> bool:
        """Whether a Gaussian model of these coordinates carries sufficient statistics."""
        return not self.stored and not self.own_coef

    def stats_coordinates(self, model: pm.Model):
        """The free vector in which the Gaussian RSS is an exact quadratic."""
        parts = [model["coef_std"]]
        if self.intercept:
            parts.insert(0, pt.atleast_1d(model[self._intercept_name()]))
        return pt.concatenate(parts) - model["ss_w0"]


Coordinates = QRCoordinates | StandardisedCoordinates


def choose_coordinates(priors: Mapping[str, Prior], *, intercept: bool, n_out: int,
                       full_rank: bool, well_conditioned: bool) -> Coordinates:
    """The internal coordinates of a regression, chosen from *all* its priors.

    QR coordinates unless a prior on the coefficients or on the intercept has an L1 part
    (Laplace, ElasticNet), or the design is rank deficient: then standardised coordinates, in
    which each of those parameters is a coordinate up to a constant factor, centred only under
    a flat intercept prior. A coefficient prior that declares its own variables (a horseshoe)
    gets standardised coordinates whose coefficients are that prior's variable. Depends on the
    prior *types* only (part of the compiled structure).

    Examples
    --------
    >>> from bayesmle import Flat, Laplace, Normal
    >>> choose_coordinates({"coef": Normal(1.0), "intercept": Laplace(0.05)}, intercept=True,
    ...                    n_out=0, full_rank=True, well_conditioned=True)
    StandardisedCoordinates(intercept=True, n_out=0, stored=False, centred=False, own_coef=False)
    >>> choose_coordinates({"coef": Normal(1.0), "intercept": Flat()}, intercept=True,
    ...                    n_out=0, full_rank=True, well_conditioned=True)
    QRCoordinates(intercept=True, n_out=0, stored=False)
    >>> from bayesmle import Horseshoe
    >>> choose_coordinates({"coef": Horseshoe(0.1), "intercept": Flat()}, intercept=True,
    ...                    n_out=0, full_rank=True, well_conditioned=True).own_coef
    True
    """
    keys = ("coef", "intercept") if intercept else ("coef",)
    l1 = any(priors[k].has_l1 for k in keys)
    own = priors["coef"].owns_variables
    if full_rank and not l1 and not own:
        return QRCoordinates(intercept, n_out, stored=not well_conditioned)
    centred = bool(intercept and priors["intercept"].is_flat)
    return StandardisedCoordinates(intercept, n_out, stored=not well_conditioned,
                                   centred=centred, own_coef=own)
