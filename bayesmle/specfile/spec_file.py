"""The loaded spec: :class:`SpecFile` and its parts (fit settings, simulators for studies).

Built by :func:`bayesmle.specfile.load`, which validates the TOML file first; a ``SpecFile``
then hands out the model (``model_spec()``), the fit options per method and each study's
arguments, and can be varied (``with_fit``, ``with_study``, ``without_studies``).
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmle._validation import MAX_CHAINS, MAX_DRAWS, MAX_SEED, check_int
from bayesmle.compare import COMPARE_METHODS
from bayesmle.errors import DataError, PriorError, SpecError
from bayesmle.inference.driver import APPROXIMATIONS, METHODS
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Prior
from bayesmle.specfile._schema import Where
from bayesmle.specfile.builders import BuilderInfo
from bayesmle.specfile.data import LoadedData
from bayesmle.specfile.mapping import DataMapping
from bayesmle.specfile.priors import parse_prior, prior_to_toml
from bayesmle.specfile.studies import StudyRequest
from bayesmle.specfile.synthetic import generate

__all__ = ["Bootstrap", "FitSettings", "Simulator", "SpecFile", "study_request"]

_FIT = ("methods", "draws", "tune", "chains", "random_seed", "target_accept", "predictive")
#: Columns of package datasets never used as predictors unless named.
_TARGETS = ("target", "target_name")


@dataclass(frozen=True)
class FitSettings:
    """``[fit]``: which methods to run and the NUTS settings.

    Attributes
    ----------
    methods : tuple of str
        Subset of :data:`bayesmle.compare.COMPARE_METHODS` (default ``("mle", "map",
        "laplace", "nuts")``), in report order.
    draws, tune, chains : int
        NUTS draws and tuning steps per chain, and the number of chains.
    random_seed : int
        Seed of the Laplace and NUTS draws (and default seed of the studies).
    target_accept : float
        NUTS target acceptance rate.
    predictive : bool
        Whether the report has its Prediction section: leave-one-out predictive accuracy of
        each method (``compare(..., predictive=True)``), predictive checks and, for
        regressions, observed against predicted values.

    Examples
    --------
    >>> from bayesmle.specfile import FitSettings
    >>> fit = FitSettings(methods=("mle", "map", "laplace"), draws=500)
    >>> fit.compare_options()  # what compare() is given
    {'draws': 500}
    >>> fit.fit_options("laplace")  # as many draws as NUTS makes in all its chains
    {'draws': 2000, 'random_seed': 0}
    >>> fit.override(draws=200, chains=None).draws  # None keeps a setting
    200
    """

    methods: tuple[str, ...] = METHODS
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int = 0
    target_accept: float = 0.8
    predictive: bool = True

    def compare_options(self) -> dict[str, Any]:
        """Options for :func:`bayesmle.compare.compare` with the requested methods."""
        if "nuts" in self.methods:
            return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                    "target_accept": self.target_accept}
        if any(m in self.methods for m in ("laplace", *APPROXIMATIONS)):
            return {"draws": self.draws}
        return {}

    def fit_options(self, method: str) -> dict[str, Any]:
        """Options for ``bayesmle.fit(spec, method, ...)`` as ``compare`` would set them.

        Laplace and the variational approximations get ``draws × chains`` draws, as many as
        NUTS in total.
        """
        if method == "nuts":
            return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                    "target_accept": self.target_accept, "random_seed": self.random_seed}
        if method in ("laplace", *APPROXIMATIONS):
            return {"draws": self.draws * self.chains, "random_seed": self.random_seed}
        return {}

    def override(self, **values: Any) -> FitSettings:
        """A copy with the given (non-None) settings replaced, validated."""
        values = {k: v for k, v in values.items() if v is not None}
        if "methods" in values:
            values["methods"] = tuple(values["methods"])
            bad = [m for m in values["methods"] if m not in COMPARE_METHODS]
            if bad or not values["methods"]:
                raise SpecError(f"Unknown method(s) {bad or values['methods']}. Valid methods: "
                                f"{', '.join(COMPARE_METHODS)}.")
        bounds = {"draws": (1, MAX_DRAWS), "chains": (1, MAX_CHAINS), "tune": (0, MAX_DRAWS),
                  "random_seed": (0, MAX_SEED)}
        for key, (low, high) in bounds.items():
            if key in values:
                values[key] = check_int(key, values[key], low, high)
        if "predictive" in values and not isinstance(values["predictive"], bool):
            raise SpecError(f"`predictive` must be True or False, got {values['predictive']!r}.")
        return replace(self, **values)


@dataclass(frozen=True, eq=False)
class SpecFile:
    """A validated spec file: the model, its data, priors, fit settings and studies.

    Use :func:`load` to create one. ``model_spec()`` gives the :class:`~bayesmle.ModelSpec`
    to fit; ``study_arguments(name)`` the keyword arguments of a requested study.

    Examples
    --------
    A spec file's tables may also be written inline, as here:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }
    ... priors = { p = "Beta(2, 2)" }
    ... studies = { map_to_mle = { ns = [20, 80], reps = 2 } }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "coin.toml").write_text(text)
    ...     spec = specfile.load(Path(tmp) / "coin.toml")
    >>> spec.prior_lines()
    ['p ~ Beta(a=2, b=2)']
    >>> spec.with_fit(methods=["mle", "map"]).fit.methods
    ('mle', 'map')
    >>> sorted(spec.study_arguments("map_to_mle"))  # the file's ns and reps, the rest from the spec
    ['builder', 'ns', 'prior', 'random_seed', 'reps', 'simulate']
    """

    path: Path
    name: str
    title: str
    description: str
    builder: BuilderInfo
    options: Mapping[str, Any]
    priors: Mapping[str, Prior]
    data: LoadedData
    mapping: DataMapping
    fit: FitSettings
    studies: Mapping[str, StudyRequest]
    text: str
    _spec: ModelSpec | None = field(default=None, repr=False)

    @property
    def where(self) -> Where:
        """The file, for error messages."""
        return Where(str(self.path))

    @property
    def sha256(self) -> str:
        """Hash of the file's text (for manifests)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def prior_kwargs(self) -> dict[str, Prior]:
        """The declared priors as builder keywords (``coef`` -> ``prior``)."""
        return {self.builder.prior_args[k]: p for k, p in self.priors.items()}

    @property
    def truth(self) -> dict[str, Any] | None:
        """True parameters of synthetic data (None for other sources)."""
        return self.data.truth

    def data_kwargs(self) -> dict[str, Any]:
        """The builder's data arguments (``X`` as a DataFrame, so columns label coefficients)."""
        kwargs, _ = self.mapping.kwargs(self.data.frame)
        return kwargs

    def new_data(self, frame: pd.DataFrame, source: str = "new data") -> dict[str, Any]:
        """New rows as the predictor arguments of ``result.predict`` (see
        :meth:`DataMapping.new_rows`): the spec's predictor columns, or its formula's design.
        """  # noqa: D205
        return self.mapping.new_rows(self.data.frame, frame, source)

    def builder_func(self) -> Callable[..., ModelSpec]:
        """The builder with the spec's options bound (picklable; keeps the builder's name).

        Without options this is the builder itself (studies may recognise it by identity).
        """
        if not self.options:
            return self.builder.func
        bound = functools.partial(self.builder.func, **self.options)
        return functools.update_wrapper(bound, self.builder.func)

    def model_spec(self) -> ModelSpec:
        """The :class:`~bayesmle.ModelSpec` of this file (built once)."""
        if self._spec is None:
            object.__setattr__(self, "_spec", self._build())
        return self._spec

    def _build(self) -> ModelSpec:
        try:
            return self.builder.func(**self.data_kwargs(), **self.prior_kwargs, **self.options)
        except (DataError, PriorError, SpecError) as exc:
            raise type(exc)(f"{self.path}: the {self.builder.name} model rejects this data or "
                            f"these settings: {exc}") from None

    def simulator(self) -> Callable[[int, np.random.Generator], dict]:
        """``simulate(n, rng) -> builder data arguments``, for simulation studies.

        The synthetic generator at the true parameters, or (for other data) a bootstrap
        resample of the rows.
        """
        if self.data.truth is not None:
            options = {k: v for k, v in self.data.settings.items() if k == "trials"}
            options.update({k: v for k, v in self.options.items() if k == "noise"})
            return Simulator(self.builder.name, dict(self.data.truth), options, self.mapping)
        return Bootstrap(self.data.frame, self.mapping)

    def study_context(self) -> dict[str, Callable[[], Any]]:
        """What the spec provides to a study's arguments (see :mod:`.studies`)."""

        def true_params():
            """The synthetic truth by the spec's labels (``coef[x1]``, ``sigma``...)."""
            if self.data.truth is None:
                raise self.where.error("data.source", "this study needs true parameters: use "
                                                      "`source = \"synthetic\"` with a `truth` "
                                                      "table.", value=self.data.source)
            spec = self.model_spec()
            out: dict[str, Any] = {}
            for name, value in self.data.truth.items():
                arr = np.asarray(value, dtype=float)
                if arr.ndim == 0:
                    out[name] = float(arr)
                    continue
                labels = spec.labels(name, arr.shape)
                out.update(zip(labels, arr.ravel().tolist(), strict=True))
            return out

        def data_arg(name):
            def get():
                kwargs = self.data_kwargs()
                if name not in kwargs:
                    raise self.where.error("model", f"this study needs `{name}`, which the "
                                                    f"{self.builder.name} model does not have.")
                return kwargs[name]
            return get

        def data():
            others = {k: v for k, v in self.prior_kwargs.items() if k != "prior"}
            return {**self.data_kwargs(), **others}

        return {
            "builder": self.builder_func,
            "spec": self.model_spec,
            "data": data,
            "simulate": self.simulator,
            "prior": lambda: self.prior_kwargs,
            "true_params": true_params,
            "X": data_arg("X"),
            "y": data_arg("y"),
            "exposure": data_arg("exposure"),
            "offset": data_arg("offset"),
            "random_seed": lambda: self.fit.random_seed,
        }

    def study_arguments(self, name: str) -> dict[str, Any]:
        """Keyword arguments of the requested study ``name`` (file values + spec context)."""
        if name not in self.studies:
            raise SpecError(f"{self.path}: no [studies.{name}] in this spec. Requested studies: "
                            f"{', '.join(self.studies) or 'none'}.")
        return self.studies[name].call_arguments(self.study_context(), self.where)

    def prior_lines(self) -> list[str]:
        """``param ~ Prior(...)`` for every parameter (flat where none was declared)."""
        return [f"{k} ~ {prior_to_toml(p)}" for k, p in self.model_spec().priors.items()]

    def with_fit(self, **overrides: Any) -> SpecFile:
        """A copy with fit settings overridden (``draws=``, ``chains=``...; None is ignored)."""
        return replace(self, fit=self.fit.override(**overrides))

    def with_study(self, name: str, overrides: Mapping[str, Any] | None = None) -> SpecFile:
        """A copy that requests only the study ``name``, its arguments updated by ``overrides``.

        The study need not be in the file: its arguments then come from ``overrides`` and the
        spec (see :mod:`bayesmle.specfile.studies`).
        """
        raw = dict(tomllib.loads(self.text).get("studies", {}).get(name, {}))
        raw.update(overrides or {})
        request = study_request(name, raw, self.where, self.builder)
        return replace(self, studies={name: request})

    def without_studies(self) -> SpecFile:
        """A copy that requests no study."""
        return replace(self, studies={})


@dataclass(frozen=True)
class Simulator:
    """Simulate a spec's synthetic data at its true parameters (picklable).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "coin.toml").write_text(text)
    ...     spec = specfile.load(Path(tmp) / "coin.toml")
    >>> import numpy as np
    >>> simulate = spec.simulator()  # synthetic data: new draws at the true p
    >>> type(simulate).__name__, simulate(5, np.random.default_rng(0))["y"].tolist()
    ('Simulator', [1, 1, 1, 1, 0])
    """

    builder: str
    truth: dict[str, Any]
    options: dict[str, Any]
    mapping: DataMapping

    def __call__(self, n: int, rng: np.random.Generator) -> dict[str, Any]:
        """Builder data arguments for ``n`` fresh observations drawn with ``rng``."""
        frame = generate(self.builder, n, rng, self.truth, self.options)
        return self.mapping.kwargs(frame)[0]


@dataclass(frozen=True, eq=False)
class Bootstrap:
    """Resample a data set's rows with replacement (picklable).

    Examples
    --------
    What :meth:`SpecFile.simulator` gives for data that are not synthetic; here it resamples the
    rows of a synthetic data set:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "coin.toml").write_text(text)
    ...     spec = specfile.load(Path(tmp) / "coin.toml")
    >>> import numpy as np
    >>> boot = specfile.Bootstrap(spec.data.frame, spec.mapping)
    >>> boot(5, np.random.default_rng(0))["y"].tolist()
    [1, 1, 0, 1, 0]
    """

    frame: pd.DataFrame
    mapping: DataMapping

    def __call__(self, n: int, rng: np.random.Generator) -> dict[str, Any]:
        """Builder data arguments for ``n`` rows drawn with replacement."""
        rows = rng.integers(0, len(self.frame), size=int(n))
        return self.mapping.kwargs(self.frame.iloc[rows].reset_index(drop=True))[0]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def study_request(name: str, raw: Any, where: Where, info: BuilderInfo) -> StudyRequest:
    """Read the ``[studies.<name>]`` table of a spec (priors given by their TOML strings)."""

    def priors(value: Any, key: str) -> dict[str, Prior]:
        table = where.table(key, value, info.prior_args)
        return {info.prior_args[k]: parse_prior(v, where, f"{key}.{k}")
                for k, v in table.items()}

    return StudyRequest.read(name, raw, where, priors)
