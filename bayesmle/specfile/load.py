"""Read a TOML spec file into a validated :class:`SpecFile`."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.errors import DataError, PriorError, SpecError
from bayesmle.inference.driver import METHODS
from bayesmle.models.spec import ModelSpec
from bayesmle.priors import Prior
from bayesmle.specfile._schema import Where
from bayesmle.specfile.builders import BUILDERS, BuilderInfo, builder_info
from bayesmle.specfile.data import LoadedData, load_data
from bayesmle.specfile.mapping import DataMapping
from bayesmle.specfile.priors import parse_prior, prior_to_toml
from bayesmle.specfile.studies import StudyRequest
from bayesmle.specfile.synthetic import generate

__all__ = ["Bootstrap", "FitSettings", "Simulator", "SpecFile", "find_specs", "load", "load_many"]

_TOP = ("name", "title", "description", "model", "data", "priors", "fit", "studies")
_FIT = ("methods", "draws", "tune", "chains", "random_seed", "target_accept")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Columns of package datasets never used as predictors unless named.
_TARGETS = ("target", "target_name")


@dataclass(frozen=True)
class FitSettings:
    """``[fit]``: which methods to run and the NUTS settings.

    Attributes
    ----------
    methods : tuple of str
        Subset of ``("mle", "map", "laplace", "nuts")``, in report order.
    draws, tune, chains : int
        NUTS draws and tuning steps per chain, and the number of chains.
    random_seed : int
        Seed of the Laplace and NUTS draws (and default seed of the studies).
    target_accept : float
        NUTS target acceptance rate.
    """

    methods: tuple[str, ...] = METHODS
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int = 0
    target_accept: float = 0.8

    def compare_options(self) -> dict[str, Any]:
        """Options for :func:`bayesmle.compare.compare` with the requested methods."""
        if "nuts" in self.methods:
            return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                    "target_accept": self.target_accept}
        if "laplace" in self.methods:
            return {"draws": self.draws}
        return {}

    def fit_options(self, method: str) -> dict[str, Any]:
        """Options for ``bayesmle.fit(spec, method, ...)`` as ``compare`` would set them.

        Laplace gets ``draws × chains`` draws, as many as NUTS in total.
        """
        if method == "nuts":
            return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                    "target_accept": self.target_accept, "random_seed": self.random_seed}
        if method == "laplace":
            return {"draws": self.draws * self.chains, "random_seed": self.random_seed}
        return {}

    def override(self, **values: Any) -> FitSettings:
        """A copy with the given (non-None) settings replaced, validated."""
        values = {k: v for k, v in values.items() if v is not None}
        if "methods" in values:
            values["methods"] = tuple(values["methods"])
            bad = [m for m in values["methods"] if m not in METHODS]
            if bad or not values["methods"]:
                raise SpecError(f"Unknown method(s) {bad or values['methods']}. Valid methods: "
                                f"{', '.join(METHODS)}.")
        for key in ("draws", "chains"):
            if key in values and values[key] < 1:
                raise SpecError(f"`{key}` must be >= 1, got {values[key]}.")
        for key in ("tune", "random_seed"):
            if key in values and values[key] < 0:
                raise SpecError(f"`{key}` must be >= 0, got {values[key]}.")
        return replace(self, **values)


@dataclass(frozen=True, eq=False)
class SpecFile:
    """A validated spec file: the model, its data, priors, fit settings and studies.

    Use :func:`load` to create one. ``model_spec()`` gives the :class:`~bayesmle.ModelSpec`
    to fit; ``study_arguments(name)`` the keyword arguments of a requested study.
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
        request = _study_request(name, raw, self.where, self.builder)
        return replace(self, studies={name: request})

    def without_studies(self) -> SpecFile:
        """A copy that requests no study."""
        return replace(self, studies={})


@dataclass(frozen=True)
class Simulator:
    """Simulate a spec's synthetic data at its true parameters (picklable)."""

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
    """Resample a data set's rows with replacement (picklable)."""

    frame: pd.DataFrame
    mapping: DataMapping

    def __call__(self, n: int, rng: np.random.Generator) -> dict[str, Any]:
        """Builder data arguments for ``n`` rows drawn with replacement."""
        rows = rng.integers(0, len(self.frame), size=int(n))
        return self.mapping.kwargs(self.frame.iloc[rows].reset_index(drop=True))[0]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    if not path.exists():
        raise SpecError(f"{path}: no such spec file.")
    if not path.is_file():
        raise SpecError(f"{path}: not a file (give a .toml spec file).")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the file ({exc}).") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}.") from None


def _model(raw: dict, where: Where) -> tuple[BuilderInfo, dict[str, Any], dict[str, Any],
                                            str | None]:
    if not isinstance(raw, dict):
        raise where.error("model", "must be a table [model] with a `builder` key.", value=raw)
    name = where.get(raw, "model", "builder", "string", choices=BUILDERS)
    info = builder_info(name)
    allowed = ("builder", *info.data_args, *info.options,
               *(("formula",) if info.is_regression else ()))
    table = where.table("model", raw, allowed)
    options: dict[str, Any] = {}
    for key, default in info.options.items():
        if key not in table:
            continue
        if isinstance(default, bool):
            options[key] = where.get(table, "model", key, "boolean")
        elif isinstance(default, str):
            options[key] = where.get(table, "model", key, "string")
        else:
            options[key] = where.get(table, "model", key, "number")
    columns: dict[str, Any] = {}
    for arg in info.data_args:
        if arg not in table:
            continue
        value = table[arg]
        if arg == "X":
            ok = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
            if not ok:
                raise where.error("model.X", "must be a non-empty array of column names.",
                                  value=value)
            columns[arg] = tuple(value)
        else:
            columns[arg] = where.get(table, "model", arg, "string")
    formula = None
    if "formula" in table:
        formula = where.get(table, "model", "formula", "string")
        for arg in ("X", "y"):
            if arg in columns:
                raise where.error(f"model.{arg}", "give either `formula` or the columns "
                                                  "`y`/`X`, not both.", value=table[arg])
        if "intercept" in options:
            raise where.error("model.intercept", "with a formula the intercept is set by the "
                                                 "formula (write `0 +` or `- 1` to drop it).",
                              value=options["intercept"])
    return info, options, columns, formula


def _mapping(info: BuilderInfo, columns: dict[str, Any], formula: str | None,
             frame: pd.DataFrame, where: Where) -> tuple[DataMapping, dict[str, Any]]:
    """The data mapping (defaults filled in) and the formula's intercept option, if any."""
    cols = dict(columns)
    excluded = tuple(c for c in _TARGETS if c in frame.columns)
    # Name the other arguments first: X defaults to the columns they leave.
    for arg in sorted(info.required_data, key=lambda a: a == "X"):
        if arg in cols or (formula is not None and arg in ("X", "y")):
            continue
        if arg == "X":
            taken = {c for v in cols.values() for c in ((v,) if isinstance(v, str) else v)}
            rest = tuple(c for c in frame.columns if c not in taken and c not in excluded)
            if not rest:
                raise where.error("model.X", "no column is left for the predictors; name them "
                                             "with `X = [...]` or use a `formula`.")
            cols["X"] = rest
        elif arg in frame.columns:
            cols[arg] = arg
        else:
            raise where.error(f"model.{arg}", f"the data have no column {arg!r}; name the "
                                              f"column to use for `{arg}`.",
                              valid=", ".join(map(str, frame.columns)))
    order = [a for a in info.data_args if a in cols]
    mapping = DataMapping(tuple((a, cols[a]) for a in order), formula, excluded, where.file)
    _, intercept = mapping.kwargs(frame)
    return mapping, {} if intercept is None else {"intercept": intercept}


def load(path: str | Path, *, display_path: str | None = None) -> SpecFile:
    """Read and validate a TOML spec file.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.toml`` file.
    display_path : str, optional
        How to name the file in error messages (default: ``path`` as given).

    Returns
    -------
    SpecFile
        With the data loaded and the :class:`~bayesmle.ModelSpec` built (the data validated by
        the builder), ready to fit.

    Raises
    ------
    SpecError
        Invalid TOML, unknown or missing keys, bad values; the message names the file, the key,
        the value and what is valid.
    DataError, PriorError
        Data or prior values the model rejects (with the file name).
    """
    if not isinstance(path, str | os.PathLike):
        raise SpecError(f"`path` must be the path of a .toml spec file (str or Path), got "
                        f"{type(path).__name__}.")
    path = Path(path)
    where = Where(display_path or str(path))
    raw, text = _read_toml(path)
    top = where.table("", raw, _TOP, required=("model", "data"))
    name = where.get(top, "", "name", "string", path.stem)
    if not _NAME.match(name):
        raise where.error("name", "must start with a letter or digit and hold only letters, "
                                  "digits, '_', '-' and '.' (it names the report's folder).",
                          value=name)
    title = where.get(top, "", "title", "string", name.replace("_", " ").capitalize())
    description = where.get(top, "", "description", "string", "").strip()
    info, options, columns, formula = _model(top["model"], where)
    gen_options = {k: v for k, v in options.items() if k == "noise"}
    data = load_data(top["data"], where, path.parent, info.name, gen_options)
    mapping, extra_options = _mapping(info, columns, formula, data.frame, where)
    options.update(extra_options)

    priors_raw = where.table("priors", top.get("priors", {}), info.prior_args)
    priors = {k: parse_prior(v, where, f"priors.{k}") for k, v in priors_raw.items()}

    fit_raw = where.table("fit", top.get("fit", {}), _FIT)
    methods = fit_raw.get("methods", list(METHODS))
    if (not isinstance(methods, list) or not methods or len(set(map(str, methods))) != len(methods)
            or any(m not in METHODS for m in methods)):
        raise where.error("fit.methods", "must be a non-empty array of distinct methods.",
                          value=methods, valid=", ".join(METHODS))
    fit = FitSettings(
        methods=tuple(methods),
        draws=where.get(fit_raw, "fit", "draws", "integer", 1000, minimum=1),
        tune=where.get(fit_raw, "fit", "tune", "integer", 1000, minimum=0),
        chains=where.get(fit_raw, "fit", "chains", "integer", 4, minimum=1),
        random_seed=where.get(fit_raw, "fit", "random_seed", "integer", 0, minimum=0),
        target_accept=where.get(fit_raw, "fit", "target_accept", "number", 0.8),
    )
    if not 0 < fit.target_accept < 1:
        raise where.error("fit.target_accept", "must be in (0, 1).", value=fit.target_accept)

    studies_raw = top.get("studies", {})
    if not isinstance(studies_raw, dict):
        raise where.error("studies", "must be a table of [studies.<name>] tables.",
                          value=studies_raw)
    studies = {k: _study_request(k, v, where, info) for k, v in studies_raw.items()}

    spec = SpecFile(path=path, name=name, title=title, description=description, builder=info,
                    options=options, priors=priors, data=data, mapping=mapping, fit=fit,
                    studies=studies, text=text)
    spec.model_spec()  # validate the data with the builder now
    return spec


def _study_request(name: str, raw: Any, where: Where, info: BuilderInfo) -> StudyRequest:
    def priors(value: Any, key: str) -> dict[str, Prior]:
        table = where.table(key, value, info.prior_args)
        return {info.prior_args[k]: parse_prior(v, where, f"{key}.{k}")
                for k, v in table.items()}

    return StudyRequest.read(name, raw, where, priors)


def find_specs(folder: str | Path = "models") -> list[Path]:
    """Every ``*.toml`` spec in ``folder``, sorted by name.

    Raises
    ------
    SpecError
        The folder does not exist or holds no spec.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecError(f"{folder}: no such folder of model specs. Run from the project's root "
                        "(where models/ is) or name spec files explicitly.")
    found = sorted(folder.glob("*.toml"))
    if not found:
        raise SpecError(f"{folder}: holds no *.toml model spec.")
    return found


def load_many(paths: Sequence[str | Path]) -> list[SpecFile]:
    """Load several spec files; every one is validated before anything is fitted.

    Raises
    ------
    SpecError
        Two specs share a ``name`` (they would write the same report folder), or any spec is
        invalid.
    """
    specs = [load(p) for p in paths]
    seen: dict[str, Path] = {}
    for s in specs:
        if s.name in seen:
            raise SpecError(f"{s.path}: `name` = {s.name!r} is also the name of {seen[s.name]}; "
                            "reports would overwrite each other. Give one a different `name`.")
        seen[s.name] = s.path
    return specs

