"""Declarative model specs (TOML files), validated into a :class:`SpecFile` by :func:`load`.

A spec file names the builder, the data, the priors, the fit settings and the studies of one
model.

A spec file::

    name = "gaussian_heights"
    title = "Heights: a Gaussian with informative priors"
    description = "Twenty-five adult heights (cm)..."

    [model]
    builder = "gaussian"          # any builder of bayesmle.models
    y = "y"                       # data arguments name columns of the data

    [data]
    source = "synthetic"          # or "csv", "sklearn", "statsmodels"
    n = 25
    seed = 20261122
    truth = { mu = 170.0, sigma = 8.0 }

    [priors]                      # parameter = prior; parameters not named stay flat
    mu = "Normal(10, mu=165)"
    sigma = "HalfNormal(20)"

    [fit]
    methods = ["mle", "map", "laplace", "nuts"]
    draws = 1000
    random_seed = 1

    [studies.likelihood_surface]  # any function of bayesmle.studies, with its arguments
    grid = 60

See ``models/README.md`` for every key.
"""

from bayesmle.specfile.data import SOURCES, LoadedData
from bayesmle.specfile.load import find_specs, load, load_many
from bayesmle.specfile.priors import PRIORS, parse_prior, prior_to_toml
from bayesmle.specfile.spec_file import Bootstrap, FitSettings, Simulator, SpecFile
from bayesmle.specfile.studies import STUDIES, StudyRequest, study_function

__all__ = [
    "PRIORS",
    "SOURCES",
    "STUDIES",
    "Bootstrap",
    "FitSettings",
    "LoadedData",
    "Simulator",
    "SpecFile",
    "StudyRequest",
    "find_specs",
    "load",
    "load_many",
    "parse_prior",
    "prior_to_toml",
    "study_function",
]
