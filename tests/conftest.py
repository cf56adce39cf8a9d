"""Shared fixtures. Reference data in tests/data are copies of public tables (see their READMEs)."""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"


def lre(estimate, certified):
    """Log relative error (McCullough 1998), capped at 15; -log10|est| where certified is 0."""
    est = np.asarray(estimate, dtype=float)
    cert = np.asarray(certified, dtype=float)
    with np.errstate(divide="ignore"):
        out = np.where(cert == 0, -np.log10(np.abs(est)),
                       -np.log10(np.abs(est - cert) / np.abs(cert)))
    return np.minimum(np.nan_to_num(out, posinf=15.0), 15.0)


@pytest.fixture(scope="session")
def nist():
    def load(name):
        return json.loads((DATA / "nist" / f"{name}.json").read_text())

    return load


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
