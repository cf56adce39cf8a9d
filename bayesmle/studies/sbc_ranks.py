"""Rank statistics of simulation-based calibration and their uniformity checks.

The pieces of :func:`bayesmle.studies.sbc` that need no model: the rank of a true value among
posterior draws (ties broken at random), the chi-square test of discrete uniformity on bins of
ranks (Talts et al. 2018), and the ECDF of the ranks with its simultaneous band (Säilynoja,
Bürkner & Vehtari 2022, the band computed by ``arviz_stats.ecdf_utils.ecdf_pit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmle.errors import SpecError

__all__ = ["EcdfBand", "chi2_uniformity", "default_bins", "ecdf_band", "rank_of"]

#: Largest number of bins chosen by :func:`default_bins`.
MAX_DEFAULT_BINS = 20


def rank_of(draws: np.ndarray, truth: float, rng: np.random.Generator) -> int:
    """``#{draws < truth}``, ties with ``truth`` broken uniformly at random: a rank in 0..L.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.studies.sbc_ranks import rank_of
    >>> rank_of(np.array([0.1, 0.5, 0.9]), 0.6, np.random.default_rng(0))
    2
    >>> rank_of(np.array([1.0, 1.0, 1.0]), 1.0, np.random.default_rng(0)) in (0, 1, 2, 3)
    True
    """
    draws = np.asarray(draws, dtype=float)
    less = int(np.count_nonzero(draws < truth))
    ties = int(np.count_nonzero(draws == truth))
    return less + (int(rng.integers(0, ties + 1)) if ties else 0)


def default_bins(draws: int, sims: int) -> int:
    """Bins for the chi-square test: a divisor of ``draws + 1``, 0 when there is none.

    The largest divisor of ``draws + 1`` up to ``max(2, min(20, sims // 5))`` (at least 5
    expected ranks per bin where the simulations allow it); 0 when ``draws + 1`` has no
    divisor >= 2 in that range.

    Examples
    --------
    >>> from bayesmle.studies.sbc_ranks import default_bins
    >>> default_bins(99, 100), default_bins(99, 1000), default_bins(100, 1000)
    (20, 20, 0)
    >>> default_bins(99, 30)
    5
    """
    top = min(max(2, min(MAX_DEFAULT_BINS, sims // 5)), draws + 1)
    for b in range(top, 1, -1):
        if (draws + 1) % b == 0:
            return b
    return 0


def chi2_uniformity(ranks: np.ndarray, draws: int, bins: int) -> tuple[float, float]:
    """Chi-square test that ranks in ``0..draws`` are discrete uniform, on ``bins`` equal bins.

    ``bins`` must divide ``draws + 1`` so that every bin holds the same number of rank values
    (then each bin has probability ``1 / bins`` under uniformity). Returns ``(chi2, p_value)``
    with ``bins - 1`` degrees of freedom.

    Examples
    --------
    Exactly uniform ranks give chi2 = 0; ranks piled at the ends (a too-narrow posterior)
    give a tiny p-value:

    >>> import numpy as np
    >>> from bayesmle.studies.sbc_ranks import chi2_uniformity
    >>> chi2_uniformity(np.arange(100), draws=99, bins=10)
    (0.0, 1.0)
    >>> chi2, p = chi2_uniformity(np.r_[np.zeros(40), np.full(40, 99), np.arange(20)], 99, 10)
    >>> p < 1e-10
    True
    """
    from scipy import stats

    ranks = np.asarray(ranks)
    if bins < 2 or (draws + 1) % bins:
        raise SpecError(f"`bins` must be >= 2 and divide draws + 1 = {draws + 1}, got {bins}.")
    if ranks.size == 0:
        return float("nan"), float("nan")
    if ranks.min() < 0 or ranks.max() > draws:
        raise SpecError(f"ranks must lie in 0..{draws}, got values from {ranks.min()} to "
                        f"{ranks.max()}.")
    width = (draws + 1) // bins
    counts = np.bincount((ranks // width).astype(int), minlength=bins)
    expected = ranks.size / bins
    chi2 = float(np.sum((counts - expected) ** 2) / expected)
    return chi2, float(stats.chi2.sf(chi2, bins - 1))


@dataclass(frozen=True)
class EcdfBand:
    """ECDF of the PIT values ``(rank + U) / (L + 1)`` and its simultaneous band.

    ``x`` are the evaluation points in [0, 1]; ``ecdf``, ``lower``, ``upper`` the ECDF and the
    band at them (subtract ``x`` for the ECDF-difference plot). ``inside`` says whether the
    whole ECDF lies in the band (a test of uniformity at level ``1 - prob``).
    """

    x: np.ndarray
    ecdf: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float

    @property
    def inside(self) -> bool:
        """True when the ECDF stays within the band everywhere."""
        return bool(np.all((self.ecdf >= self.lower - 1e-12) & (self.ecdf <= self.upper + 1e-12)))


def ecdf_band(ranks: np.ndarray, draws: int, rng: np.random.Generator, prob: float = 0.95,
              n_simulations: int = 1000) -> EcdfBand:
    """The rank ECDF with its simultaneous ``prob`` band (Säilynoja et al. 2022).

    The ranks (0..L) are made continuous, ``u = (rank + v) / (L + 1)`` with ``v`` uniform on
    (0, 1) from ``rng``, which makes ``u`` exactly uniform when the ranks are; the band is
    ``arviz_stats.ecdf_utils.ecdf_pit``'s, found by ``n_simulations`` seeded simulations.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmle.studies.sbc_ranks import ecdf_band
    >>> band = ecdf_band(np.arange(100), 99, np.random.default_rng(0))
    >>> band.inside, float(band.x[0]), float(band.x[-1])
    (True, 0.0, 1.0)
    """
    from arviz_stats.ecdf_utils import ecdf_pit

    ranks = np.asarray(ranks, dtype=float)
    u = (ranks + rng.uniform(size=ranks.size)) / (draws + 1)
    x, ecdf, lower, upper = ecdf_pit(u, prob, n_simulations, rng=rng)
    return EcdfBand(np.asarray(x), np.asarray(ecdf), np.asarray(lower), np.asarray(upper),
                    float(prob))
