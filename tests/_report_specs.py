"""Spec files shared by the report, command-line and browser tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Counts whose reference level ``a`` has only zeros: the MLE of the Poisson and NB2
#: regressions does not exist (the intercept runs to -inf), the MAP does. The overdispersion
#: study (two MLEs) fails on these data; the rest of the report does not.
EMPTY_LEVEL = """
name = "empty_level"
title = "Counts with an empty reference level"
[model]
builder = "negative_binomial_regression"
formula = "y ~ C(g) + x"
[data]
source = "csv"
path = "counts.csv"
[priors]
coef = "Normal(2)"
intercept = "Normal(5)"
alpha = "HalfNormal(2)"
[fit]
methods = ["mle", "map"]
random_seed = 1
[studies.overdispersion]
"""


def empty_level_spec(folder: Path) -> Path:
    """Write ``counts.csv`` (seeded) and ``empty_level.toml`` to ``folder``; the spec's path."""
    rng = np.random.default_rng(1)
    g = np.repeat(["a", "b", "c"], 20)
    mu = np.where(g == "b", 3.0, 5.0)
    y = np.where(g == "a", 0, rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))
    pd.DataFrame({"y": y, "g": g, "x": rng.normal(size=60).round(4)}).to_csv(
        folder / "counts.csv", index=False)
    (folder / "empty_level.toml").write_text(EMPTY_LEVEL)
    return folder / "empty_level.toml"
