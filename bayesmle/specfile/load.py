"""Read a TOML spec file into a validated :class:`SpecFile`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmle._validation import MAX_CHAINS, MAX_DRAWS, MAX_SEED
from bayesmle.compare import COMPARE_METHODS
from bayesmle.errors import SpecError
from bayesmle.formula_check import check_formula, describe_columns
from bayesmle.inference.driver import METHODS
from bayesmle.models.glm import FAMILIES, glm_links
from bayesmle.models.random_terms import has_random_terms, parse_mixed_formula
from bayesmle.specfile._schema import Where
from bayesmle.specfile.builders import (
    BUILDERS,
    MIXED,
    BuilderInfo,
    builder_info,
    mixed_builder_info,
)
from bayesmle.specfile.data import load_data
from bayesmle.specfile.mapping import DataMapping
from bayesmle.specfile.priors import parse_prior
from bayesmle.specfile.spec_file import FitSettings, SpecFile, study_request

__all__ = ["find_specs", "load", "load_many"]

_TOP = ("name", "title", "description", "model", "data", "priors", "fit", "studies")
_FIT = ("methods", "draws", "tune", "chains", "random_seed", "target_accept",
        "predictive")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Names that would collide with the reports' own files, or that Windows cannot create.
_RESERVED = frozenset({"index", "index.html", "index.htm", "con", "prn", "aux", "nul",
                       *(f"{dev}{i}" for dev in ("com", "lpt") for i in range(1, 10))})
_NAME_RULE = ("1-64 characters: letters, digits, '-', '_' and '.', starting with a letter or "
              "digit, not ending with '.', not a reserved name (index, index.html, CON, NUL, "
              "COM1, ...)")
#: Columns of package datasets never used as predictors unless named.
_TARGETS = ("target", "target_name")


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


#: ``builder = "glm"``: the matrix builder behind each family (the link picks among some).
_GLM_BUILDERS = {
    "gaussian": "linear_regression",
    "bernoulli": "logistic_regression",
    "binomial": "binomial_regression",
    "poisson": "poisson_regression",
    "negative_binomial": "negative_binomial_regression",
    "gamma": "gamma_regression",
    "student_t": "robust_regression",
    "categorical": "softmax_regression",
}


def _glm_table(raw: dict, where: Where) -> dict[str, Any]:
    """``[model] builder = "glm"``, ``family``, ``link``: the table of the family's builder.

    As :func:`bayesmle.models.glm.glm`: a ``formula`` is required (checked like any spec
    formula before anything is evaluated), ``trials`` / ``exposure`` / ``offset`` are column
    names, the family's builder is the one ``glm`` calls.
    """
    table = dict(raw)
    del table["builder"]
    family = where.get(table, "model", "family", "string", "gaussian", choices=FAMILIES)
    links = tuple(glm_links()[family])
    link = where.get(table, "model", "link", "string", links[0], choices=links)
    table.pop("family", None)
    table.pop("link", None)
    if "formula" not in table:
        raise where.error("model.formula", "is required with builder = \"glm\" (e.g. "
                                           "formula = \"y ~ x1 + C(g)\").")
    name = _GLM_BUILDERS[family]
    if family == "bernoulli" and link != "logit":
        name = "binomial_regression"  # one trial per row
    if family == "binomial" and "trials" not in table:
        raise where.error("model.trials", "family = \"binomial\" needs `trials`: the column "
                                          "of the number of trials per row.")
    if name not in BUILDERS:
        raise where.error("model.family", f"needs the builder {name!r}, which this version "
                                          f"of bayesmle lacks.", value=family)
    if family == "student_t":
        table["noise"] = "student_t"
    if family in ("bernoulli", "binomial", "gamma") and name != "logistic_regression":
        table["link"] = link
    return {"builder": name, **table}


def _mixed_table(raw: dict, where: Where) -> tuple[BuilderInfo, dict[str, Any],
                                                   dict[str, Any], None]:
    """``builder = "glm"`` with random-effects terms: the mixed model's options and columns.

    The formula is checked (random terms included) before any data is read; ``trials`` names
    a column, ``exposure`` / ``offset`` name columns whose values are passed.
    """
    from bayesmle.models.mixed import FAMILIES as MIXED_FAMILIES

    table = where.table("model", raw, ("builder", "formula", "family", "link", "trials",
                                       "exposure", "offset"))
    family = where.get(table, "model", "family", "string", "gaussian",
                       choices=MIXED_FAMILIES)
    links = tuple(glm_links()[family])
    link = where.get(table, "model", "link", "string", links[0], choices=links)
    formula = where.get(table, "model", "formula", "string")
    try:  # before any data is read or anything in the formula is evaluated
        parse_mixed_formula(formula)
    except SpecError as exc:
        raise SpecError(f"{where.file}: `model.formula`: {exc}") from None
    options: dict[str, Any] = {"formula": formula, "family": family, "link": link}
    if family == "binomial":
        options["trials"] = where.get(table, "model", "trials", "string")
    elif "trials" in table:
        raise where.error("model.trials", "applies to family = \"binomial\" only.",
                          value=table["trials"])
    columns: dict[str, Any] = {}
    for arg in ("exposure", "offset"):
        if arg in table:
            if family != "poisson":
                raise where.error(f"model.{arg}", "applies to family = \"poisson\" only.",
                                  value=table[arg])
            columns[arg] = where.get(table, "model", arg, "string")
    return mixed_builder_info(), options, columns, None


def _model(raw: dict, where: Where) -> tuple[BuilderInfo, dict[str, Any], dict[str, Any],
                                            str | None]:
    if not isinstance(raw, dict):
        raise where.error("model", "must be a table [model] with a `builder` key.", value=raw)
    if raw.get("builder") == "glm" and has_random_terms(raw.get("formula")):
        return _mixed_table(raw, where)
    if raw.get("builder") == "glm":
        raw = _glm_table(raw, where)
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
        DataMapping((), formula, (), where.file).split_formula()  # "response ~ predictors"
        try:  # before any data is read or anything in the formula is evaluated
            check_formula(formula, key="model.formula")
        except SpecError as exc:
            raise SpecError(f"{where.file}: {exc}") from None
        response = _response_arg(info)
        for arg in ("X", response):
            if arg in columns:
                raise where.error(f"model.{arg}", "give either `formula` or the columns "
                                                  f"`{response}`/`X`, not both.",
                                  value=table[arg])
        if "intercept" in options:
            raise where.error("model.intercept", "with a formula the intercept is set by the "
                                                 "formula (write `0 +` or `- 1` to drop it).",
                              value=options["intercept"])
    return info, options, columns, formula


def _response_arg(info: BuilderInfo) -> str:
    """The argument a formula's left-hand side fills: ``y``, or ``successes`` (binomial)."""
    return "successes" if "successes" in info.data_args and "y" not in info.data_args else "y"


def _mapping(info: BuilderInfo, columns: dict[str, Any], formula: str | None,
             frame: pd.DataFrame, where: Where) -> tuple[DataMapping, dict[str, Any]]:
    """The data mapping (defaults filled in) and the formula's intercept option, if any."""
    cols = dict(columns)
    excluded = tuple(c for c in _TARGETS if c in frame.columns)
    # Name the other arguments first: X defaults to the columns they leave.
    for arg in sorted(info.required_data, key=lambda a: a == "X"):
        if arg in cols or (formula is not None and arg in ("X", _response_arg(info))):
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
                              valid=describe_columns(frame.columns))
    order = [a for a in info.data_args if a in cols]
    mapping = DataMapping(tuple((a, cols[a]) for a in order), formula, excluded, where.file,
                          response=_response_arg(info))
    _, intercept = mapping.kwargs(frame)
    return mapping, {} if intercept is None else {"intercept": intercept}


def _check_name(name: str, where: Where, from_file: bool) -> None:
    """The spec's ``name`` names its report folder: a short, plain, portable file name."""
    bad = (not _NAME.fullmatch(name) or name.endswith(".")
           or name.lower() in _RESERVED or name.lower().split(".")[0] in _RESERVED - {"index"})
    if bad:
        default = "" if from_file else (" (the default `name` is the spec file's name "
                                        "without .toml; set `name = \"...\"` in the file)")
        raise where.error("name", f"is not a valid name{default}: it names the report's "
                                  f"folder.", value=name, valid=_NAME_RULE)


def load(path: str | Path, *, display_path: str | None = None,
         data_root: str | Path | None = None) -> SpecFile:
    """Read and validate a TOML spec file.

    A spec file is data, not code: nothing in it is executed. Its formula may hold only
    columns, numbers, formula operators and a short list of transforms
    (:mod:`bayesmle.formula_check`), and its CSV file must lie inside the spec file's folder
    or inside ``data_root``.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.toml`` file.
    display_path : str, optional
        How to name the file in error messages (default: ``path`` as given).
    data_root : str or pathlib.Path, optional
        A second folder (besides the spec file's) that CSV paths may point into, e.g. a
        shared data folder reached by ``path = "../data/file.csv"``.

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

    Examples
    --------
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
    >>> spec.name, spec.builder.name, spec.priors  # the name defaults to the file's stem
    ('coin', 'bernoulli', {'p': Beta(a=2, b=2)})
    >>> spec.data.frame.shape, spec.truth, spec.model_spec().params
    ((20, 1), {'p': 0.7}, ('p',))

    A bad value is reported with the file and the key:

    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "bad.toml").write_text(text.replace("Beta(2, 2)", "Beta(2)"))
    ...     specfile.load(Path(tmp) / "bad.toml", display_path="bad.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: bad.toml: `priors.p` = "Beta(2)": Beta needs argument(s) ['b']....

    Nothing in a spec file runs as code, and its data stay in its folder (or ``data_root``):

    >>> evil = '''model = { builder = "gaussian", y = "y" }
    ... data = { source = "csv", path = "../../etc/passwd" }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "evil.toml").write_text(evil)
    ...     specfile.load(Path(tmp) / "evil.toml", display_path="evil.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: evil.toml: `data.path` = "../../etc/passwd": points outside the...
    """
    if not isinstance(path, str | os.PathLike):
        raise SpecError(f"`path` must be the path of a .toml spec file (str or Path), got "
                        f"{type(path).__name__}.")
    path = Path(path)
    where = Where(display_path or str(path))
    raw, text = _read_toml(path)
    top = where.table("", raw, _TOP, required=("model", "data"))
    name = where.get(top, "", "name", "string", path.stem)
    _check_name(name, where, from_file="name" in top)
    title = where.get(top, "", "title", "string", name.replace("_", " ").capitalize())
    description = where.get(top, "", "description", "string", "").strip()
    info, options, columns, formula = _model(top["model"], where)
    gen_options = {k: v for k, v in options.items() if k == "noise"}
    data = load_data(top["data"], where, path.parent, info.name, gen_options,
                     data_root=data_root)
    if info.name == MIXED:  # the mixed model takes the whole frame; the formula picks
        columns = {"data": tuple(data.frame.columns), **columns}
    mapping, extra_options = _mapping(info, columns, formula, data.frame, where)
    options.update(extra_options)

    priors_raw = where.table("priors", top.get("priors", {}), info.prior_args)
    priors = {k: parse_prior(v, where, f"priors.{k}") for k, v in priors_raw.items()}

    fit_raw = where.table("fit", top.get("fit", {}), _FIT)
    methods = fit_raw.get("methods", list(METHODS))
    if (not isinstance(methods, list) or not methods or len(set(map(str, methods))) != len(methods)
            or any(m not in COMPARE_METHODS for m in methods)):
        raise where.error("fit.methods", "must be a non-empty array of distinct methods.",
                          value=methods, valid=", ".join(COMPARE_METHODS))
    fit = FitSettings(
        methods=tuple(methods),
        draws=where.get(fit_raw, "fit", "draws", "integer", 1000, minimum=1,
                        maximum=MAX_DRAWS),
        tune=where.get(fit_raw, "fit", "tune", "integer", 1000, minimum=0, maximum=MAX_DRAWS),
        chains=where.get(fit_raw, "fit", "chains", "integer", 4, minimum=1,
                         maximum=MAX_CHAINS),
        random_seed=where.get(fit_raw, "fit", "random_seed", "integer", 0, minimum=0,
                              maximum=MAX_SEED),
        target_accept=where.get(fit_raw, "fit", "target_accept", "number", 0.8),
        predictive=where.get(fit_raw, "fit", "predictive", "boolean", True),
    )
    if not 0 < fit.target_accept < 1:
        raise where.error("fit.target_accept", "must be in (0, 1).", value=fit.target_accept)

    studies_raw = top.get("studies", {})
    if not isinstance(studies_raw, dict):
        raise where.error("studies", "must be a table of [studies.<name>] tables.",
                          value=studies_raw)
    studies = {k: study_request(k, v, where, info) for k, v in studies_raw.items()}

    spec = SpecFile(path=path, name=name, title=title, description=description, builder=info,
                    options=options, priors=priors, data=data, mapping=mapping, fit=fit,
                    studies=studies, text=text)
    spec.model_spec()  # validate the data with the builder now
    return spec


def find_specs(folder: str | Path = "models") -> list[Path]:
    """Every ``*.toml`` spec in ``folder``, sorted by name.

    Raises
    ------
    SpecError
        The folder does not exist or holds no spec.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("b.toml", "a.toml", "notes.txt"):
    ...         (Path(tmp) / name).touch()
    ...     [p.name for p in specfile.find_specs(tmp)]
    ['a.toml', 'b.toml']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecError(f"{folder}: no such folder of model specs. Run from the project's root "
                        "(where models/ is) or name spec files explicitly.")
    found = sorted(folder.glob("*.toml"))
    if not found:
        raise SpecError(f"{folder}: holds no *.toml model spec.")
    return found


def load_many(paths: Sequence[str | Path], *,
              data_root: str | Path | None = None) -> list[SpecFile]:
    """Load several spec files; every one is validated before anything is fitted.

    ``data_root`` is passed to :func:`load` (a folder CSV paths may point into).

    Raises
    ------
    SpecError
        Two specs share a ``name`` (they would write the same report folder), or any spec is
        invalid.

    Examples
    --------
    Two files with the same ``name`` would write the same report folder:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle import specfile
    >>> text = '''name = "coin"
    ... model = { builder = "bernoulli", y = "y" }
    ... data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.7 } }'''
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = [Path(tmp) / "one.toml", Path(tmp) / "two.toml"]
    ...     for path in paths:
    ...         _ = path.write_text(text)
    ...     specfile.load_many(paths)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    bayesmle.errors.SpecError: ...two.toml: `name` = 'coin' is also the name of ...one.toml; ...
    """
    specs = [load(p, data_root=data_root) for p in paths]
    seen: dict[str, Path] = {}
    for s in specs:
        if s.name in seen:
            raise SpecError(f"{s.path}: `name` = {s.name!r} is also the name of {seen[s.name]}; "
                            "reports would overwrite each other. Give one a different `name`.")
        seen[s.name] = s.path
    return specs

