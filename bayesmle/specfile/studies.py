"""Studies requested by a spec file: ``[studies.<function>]`` with the function's arguments.

A study is named by its function in :mod:`bayesmle.studies` (``map_to_mle``, ``sparsity_path``,
``fisher``, ``bias``, ``coverage``, ``likelihood_surface``, ``overdispersion``,
``predictive_gap``, and for mixed models ``shrinkage``, ``joint_mode``, ``reml_bias``,
``group_growth``); the table holds its keyword arguments. Arguments that come from the
spec itself are filled in when not given: ``builder`` (with the spec's options), ``spec`` (the
ModelSpec), ``data`` (the data arguments and the priors other than the coefficients'),
``simulate`` (the synthetic generator, or a bootstrap of the rows for other data),
``prior`` (the declared priors), ``true_params`` (the synthetic ``truth``),
``X``/``y``/``exposure`` and ``random_seed``.

Some studies take these from the spec under other names (:data:`STUDY_CONTEXT`): the model of
``shrinkage`` (its ``formula``) and of ``joint_mode`` (its ``model``) is the spec's mixed model
itself, not settable in the file; ``reml_bias`` and ``group_growth`` simulate their own data
from a ``truth = { mu = ..., sd = ..., sigma = ... }`` given in the file, and the ``prior`` of
``group_growth`` is a table of priors keyed by ``intercept``, ``sd`` and ``sigma``.

Numeric grids may be written as ``{ geomspace = [start, stop, num] }`` (also ``linspace``,
``logspace``); a ``prior`` argument is a table of priors like ``[priors]``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmle.errors import SpecError
from bayesmle.specfile._schema import Where, toml_value
from bayesmle.specfile.priors import parse_prior

__all__ = ["STUDIES", "StudyRequest", "study_function"]

#: Study functions a spec may name (in :mod:`bayesmle.studies`).
STUDIES = ("map_to_mle", "sparsity_path", "fisher", "bias", "coverage", "likelihood_surface",
           "overdispersion", "predictive_gap", "shrinkage", "joint_mode", "reml_bias",
           "group_growth", "mixture_methods")
#: Arguments a spec provides itself.
CONTEXT = ("builder", "spec", "data", "simulate", "prior", "true_params", "X", "y", "exposure",
           "offset", "random_seed")
#: Per study, how its arguments meet the spec's context when they differ from the default
#: (argument name = context name): an argument mapped to a context name is filled from it
#: and cannot be set in the file; one mapped to None is never filled from the context (its
#: default, or the file's value, stands).
STUDY_CONTEXT: dict[str, dict[str, str | None]] = {
    "shrinkage": {"formula": "spec", "data": None, "family": None, "priors": None},
    "joint_mode": {"model": "spec", "data": None},
    "reml_bias": {},
    "group_growth": {"prior": None},
}
#: Arguments of a study that only the spec provides (its model): not settable in the file.
_FROM_SPEC = {"shrinkage": ("formula", "data", "family", "priors"),
              "joint_mode": ("model", "data")}
#: Studies whose ``prior`` is a table of priors by parameter name (not the builder's).
_NAMED_PRIORS = {"group_growth": ("intercept", "sd", "sigma")}
#: Arguments that cannot be set from a file.
_RUNTIME = ("executor",)
_GRIDS = {"linspace": np.linspace, "geomspace": np.geomspace, "logspace": np.logspace}


def study_function(name: str, where: Where | None = None) -> Callable:
    """The function ``bayesmle.studies.<name>``.

    Raises
    ------
    SpecError
        ``name`` is not a study, or this installation does not have it yet.

    Examples
    --------
    >>> from bayesmle import specfile, studies
    >>> specfile.study_function("bias") is studies.bias
    True
    >>> specfile.study_function("power")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: unknown study 'power'. Valid: map_to_mle, sparsity_path, ...
    """
    key = f"studies.{name}"
    if name not in STUDIES:
        message = f"unknown study {name!r}."
        raise (where.error(key, message, valid=", ".join(STUDIES)) if where else
               SpecError(f"{message} Valid: {', '.join(STUDIES)}."))
    module = importlib.import_module("bayesmle.studies")
    func = getattr(module, name, None)
    if func is None:
        have = [s for s in STUDIES if hasattr(module, s)]
        message = (f"the study {name!r} is not available in this version of bayesmle "
                   f"(available: {', '.join(have) or 'none'}).")
        raise where.error(key, message) if where else SpecError(message)
    return func


def _grid(value: Any, where: Where, key: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _GRIDS:
        kind, args = next(iter(value.items()))
        ok = isinstance(args, list) and len(args) == 3 and all(
            isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if not ok or args[2] < 1 or args[2] != int(args[2]):
            raise where.error(key, f"a {kind} grid is [start, stop, number of points].",
                              value=value)
        try:
            grid = _GRIDS[kind](args[0], args[1], int(args[2]))
        except ValueError as exc:
            raise where.error(key, f"invalid {kind} grid: {exc}", value=value) from None
        return [float(g) for g in grid]
    return value



def _check_sizes(args: dict[str, Any], where: Where, key: str) -> None:
    """The size arguments of a study (``ns``, ``reps``, seed), bounded as the study bounds them.

    Checked when the file is read, so that ``validate`` refuses what the study would refuse
    (a billion replicates, a sample size of 10**12) before anything runs.
    """
    from bayesmle._validation import check_seed
    from bayesmle.studies._runner import check_ns, check_reps

    try:
        ns = check_ns(args["ns"], minimum=1) if "ns" in args else []
        if "sizes" in args:  # group_growth: the growing number or size of groups
            check_ns(args["sizes"], minimum=2, name="sizes")
        if key == "studies.predictive_gap":  # every replicate also simulates a test set
            from bayesmle.studies.predictive_gap import check_methods, check_n_test

            n_test = check_n_test(args.get("n_test", 1000))
            ns = [n + n_test for n in ns]
            if "methods" in args:
                check_methods(args["methods"])
        if "posterior_ns" in args and len(args["posterior_ns"]):
            check_ns(args["posterior_ns"], minimum=1, name="posterior_ns")
        if "reps" in args:
            check_reps(args["reps"], ns=ns)
        if "random_seed" in args:
            check_seed(args["random_seed"])
    except SpecError as exc:
        raise SpecError(f"{where.file}: `{key}`: {exc}") from None


@dataclass(frozen=True)

class StudyRequest:
    """One ``[studies.<name>]`` table, validated against the study's signature.

    Attributes
    ----------
    name : str
        The study function's name.
    arguments : dict
        Arguments given in the file (grids expanded, priors parsed).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> text = '''model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }
    ... priors = { p = "Beta(2, 2)" }
    ... studies = { map_to_mle = { ns = { geomspace = [10, 1000, 3] }, reps = 2 } }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "coin.toml").write_text(text)
    ...     spec = specfile.load(Path(tmp) / "coin.toml")
    >>> request = spec.studies["map_to_mle"]
    >>> request.arguments  # the grid expanded
    {'ns': [10.0, 100.0, 1000.0], 'reps': 2}
    >>> request.describe()
    'ns = [10.0, 100.0, 1000.0], reps = 2'
    """

    name: str
    arguments: Mapping[str, Any]

    @classmethod
    def read(cls, name: str, raw: Any, where: Where,
             parse_priors: Callable[[Any, str], dict]) -> StudyRequest:
        """Validate ``[studies.<name>]``; ``parse_priors`` turns a prior table into kwargs."""
        key = f"studies.{name}"
        func = study_function(name, where)
        params = inspect.signature(func).parameters
        fixed = _FROM_SPEC.get(name, ())
        settable = [p for p in params if p not in _RUNTIME and p not in fixed]
        table = where.table(key, raw, settable)
        args: dict[str, Any] = {}
        for k, v in table.items():
            if k == "prior" and name in _NAMED_PRIORS:
                args[k] = _named_priors(v, where, f"{key}.prior", _NAMED_PRIORS[name])
            elif k == "prior":
                args[k] = parse_priors(v, f"{key}.prior")
            else:
                args[k] = _grid(v, where, f"{key}.{k}")
        _check_sizes(args, where, key)
        return cls(name, args)

    def call_arguments(self, context: Mapping[str, Callable[[], Any]], where: Where
                       ) -> dict[str, Any]:
        """The full keyword arguments: the file's, then the spec's ``context`` for the rest.

        ``context`` maps an argument name to a function computing it (called only if needed;
        it raises SpecError when the spec cannot provide it, e.g. no true parameters).
        """
        func = study_function(self.name, where)
        params = inspect.signature(func).parameters
        out = dict(self.arguments)
        names = STUDY_CONTEXT.get(self.name, {})
        for pname, param in params.items():
            if pname in out or pname in _RUNTIME or param.kind in (param.VAR_KEYWORD,
                                                                    param.VAR_POSITIONAL):
                continue
            source = names.get(pname, pname)
            if source is not None and source in context:
                try:
                    out[pname] = context[source]()
                except SpecError:
                    if param.default is param.empty:
                        raise
                    # an optional argument the spec cannot provide keeps its default
            elif param.default is param.empty:
                raise where.error(f"studies.{self.name}.{pname}",
                                  f"is required by {self.name}() and the spec cannot provide "
                                  f"it; give it in [studies.{self.name}].")
        return out

    def describe(self) -> str:
        """The file's arguments as ``key = value`` pairs (for reports)."""
        return ", ".join(f"{k} = {toml_value(_plain(v))}" for k, v in self.arguments.items())


def _named_priors(value: Any, where: Where, key: str, names: tuple[str, ...]) -> dict:
    """A table of priors by parameter name (``{ sd = "HalfNormal(1)" }``) for a study."""
    table = where.table(key, value, names)
    return {k: parse_prior(v, where, f"{key}.{k}") for k, v in table.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: repr(v) if not isinstance(v, int | float | str | list) else v
                for k, v in value.items()}
    return value
