"""Data sources of a spec file: package datasets, CSV files and seeded synthetic generators.

Every source yields a :class:`pandas.DataFrame`; ``[model]`` then maps its columns to the
builder's arguments. The sources:

``source = "sklearn"``, ``dataset = "diabetes" | "iris" | "breast_cancer" | "wine"``
    A dataset shipped with scikit-learn: the features, ``target`` and, for classification
    data, ``target_name`` (the class names).
``source = "statsmodels"``, ``dataset = "spector" | "randhie" | ...``
    A dataset shipped with statsmodels (``statsmodels.datasets.<name>.load_pandas().data``).
``source = "csv"``, ``path = "data/file.csv"``, ``sep = ","`` (one character)
    A CSV file, relative to the spec file. The file must lie inside the spec file's folder
    (or inside the ``data_root`` given to :func:`~bayesmle.specfile.load`) once ``..`` and
    symbolic links are followed; absolute paths are refused, and so are files larger than
    :data:`MAX_CSV_BYTES`. Errors never quote the file's content.
``source = "synthetic"``, ``n``, ``seed``, ``truth = { ... }``
    Simulated from the spec's own model at the true parameters ``truth`` (see
    :mod:`bayesmle.specfile.synthetic`).

Any source may be subsampled with ``rows = <int>`` (a seeded random subset, ``seed`` required).
"""

from __future__ import annotations

import csv
import importlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

from bayesmle.errors import DataError, SpecError
from bayesmle.specfile import synthetic
from bayesmle.specfile._schema import Where

__all__ = ["MAX_CSV_BYTES", "SOURCES", "LoadedData", "load_data", "read_new_csv"]

#: Largest CSV file read (bytes): 2 GiB.
MAX_CSV_BYTES = 2 * 1024**3

SOURCES = ("synthetic", "csv", "sklearn", "statsmodels")
SKLEARN_DATASETS = {
    "diabetes": "load_diabetes",
    "iris": "load_iris",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
}
STATSMODELS_DATASETS = (
    "anes96", "cancer", "ccard", "china_smoking", "committee", "copper", "cpunish", "engel",
    "fair", "fertility", "grunfeld", "heart", "longley", "macrodata", "modechoice", "randhie",
    "scotland", "spector", "stackloss", "star98", "statecrime", "strikes",
)
_COMMON = ("source", "rows", "seed")
_KEYS = {
    "synthetic": (*_COMMON, "n", "truth", "trials"),
    "csv": (*_COMMON, "path", "sep"),
    "sklearn": (*_COMMON, "dataset"),
    "statsmodels": (*_COMMON, "dataset"),
}


@dataclass(frozen=True, eq=False)
class LoadedData:
    """A data source read into a DataFrame.

    Attributes
    ----------
    frame : pandas.DataFrame
        The data.
    source : str
        ``synthetic``, ``csv``, ``sklearn`` or ``statsmodels``.
    description : str
        One line for reports (where the data come from, its size, the seed).
    settings : dict
        The source's settings as read (dataset, path, n, seed, truth...).
    truth : dict or None
        True parameters (synthetic data only), as floats or numpy arrays.

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
    >>> spec.data.source, spec.data.truth, spec.data.frame.columns.tolist()
    ('synthetic', {'p': 0.7}, ['y'])
    >>> spec.data.description
    'synthetic: 20 draws from the bernoulli model at p=0.7 (seed 1); 20 rows, 1 columns'
    """

    frame: pd.DataFrame
    source: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] | None = None


def _import(module: str, extra: str, where: Where, key: str, value: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise where.error(key, f"needs the optional package {module.split('.')[0]!r}, which is "
                               f"not installed. Install it with `pip install "
                               f"'bayesmle[{extra}]'` (or `pip install "
                               f"{module.split('.')[0].replace('sklearn', 'scikit-learn')}`).",
                          value=value) from None


def _sklearn(table: dict, where: Where) -> tuple[pd.DataFrame, str]:
    name = where.get(table, "data", "dataset", "string", choices=SKLEARN_DATASETS)
    datasets = _import("sklearn.datasets", "examples", where, "data.dataset", name)
    bunch = getattr(datasets, SKLEARN_DATASETS[name])(as_frame=True)
    frame = bunch.frame.copy()
    names = getattr(bunch, "target_names", None)
    if names is not None and frame["target"].dtype.kind in "iu":
        frame["target_name"] = np.asarray(names)[frame["target"].to_numpy()]
    return frame, f"scikit-learn's {name} dataset (sklearn.datasets.{SKLEARN_DATASETS[name]})"


def _statsmodels(table: dict, where: Where) -> tuple[pd.DataFrame, str]:
    name = where.get(table, "data", "dataset", "string", choices=STATSMODELS_DATASETS)
    module = _import(f"statsmodels.datasets.{name}", "examples", where, "data.dataset", name)
    frame = module.load_pandas().data.copy()
    return frame, f"statsmodels' {name} dataset (statsmodels.datasets.{name})"


def _csv_path(rel: str, where: Where, base: Path, data_root: str | Path | None) -> Path:
    """The file ``rel`` names, resolved, if it lies inside an allowed folder."""
    folders = [base.resolve()]
    if data_root is not None:
        folders.append(Path(data_root).resolve())
    valid = "a path relative to the spec file's folder, to a file inside " + " or ".join(
        str(f) for f in folders)
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).anchor:
        raise where.error("data.path", "absolute paths are not allowed (a spec file is "
                                       "shared like data).", value=rel, valid=valid)
    try:
        path = (base / rel).resolve()  # `..` and symbolic links followed
    except (OSError, ValueError, RuntimeError):
        raise where.error("data.path", "is not a usable path.", value=rel,
                          valid=valid) from None
    if not any(path.is_relative_to(f) for f in folders):
        raise where.error("data.path", "points outside the allowed folder(s) once `..` and "
                                       "symbolic links are followed.", value=rel, valid=valid)
    return path


def _csv_sep(table: dict, where: Where) -> str:
    sep = where.get(table, "data", "sep", "string", ",")
    if len(sep) != 1 or sep.isalnum() or sep in "\"'\r\n":
        raise where.error("data.sep", "must be one character (not a letter, digit, quote or "
                                      "line break).", value=sep,
                          valid='",", ";", "\\t", "|" or " "')
    return sep


def _csv(table: dict, where: Where, base: Path, data_root: str | Path | None = None
         ) -> tuple[pd.DataFrame, str]:
    rel = where.get(table, "data", "path", "string")
    sep = _csv_sep(table, where)
    path = _csv_path(rel, where, base, data_root)
    origin = f"the spec file's folder, {base}"
    return _read_csv(path, rel, sep, where, "data.path", origin), f"CSV file {rel}"


def _read_csv(path: Path, shown: str, sep: str, where: Where, key: str, origin: str
              ) -> pd.DataFrame:
    """Read the CSV file ``path`` (already checked to lie in an allowed folder)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:  # opened once, then checked on the open file (no swap between check and read)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise where.error(key, f"no such file: {path} (paths are relative to {origin}).",
                          value=shown) from None
    except OSError as exc:
        raise where.error(key, f"cannot open this file ({type(exc).__name__}).",
                          value=shown) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CSV_BYTES:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise where.error(key, "is not a regular file.", value=shown)
        raise where.error(key, f"the file has {info.st_size} bytes; CSV files larger "
                               f"than {MAX_CSV_BYTES} bytes (2 GiB) are refused.",
                          value=shown, cls=DataError)
    with os.fdopen(fd, "rb") as handle:
        try:
            frame = pd.read_csv(handle, sep=sep)
        except (ValueError, OSError, csv.Error) as exc:  # never quote the file's content
            line = re.search(r"\bline (\d+)", str(exc))
            where_in = f", line {line.group(1)}" if line else ""
            raise where.error(key, f"cannot read this CSV file ({type(exc).__name__}"
                                   f"{where_in}).", value=shown, cls=DataError) from None
    if frame.empty:
        raise where.error(key, "the CSV file has no data rows.", value=shown,
                          cls=DataError)
    return frame


def read_new_csv(path: str | Path, spec_file: str | Path, data_root: str | Path | None = None,
                 *, key: str = "--data") -> pd.DataFrame:
    r"""A CSV file of new rows named on the command line, read under the spec data's rules.

    ``path`` is taken as given (relative to the working directory); once ``..`` and symbolic
    links are followed it must lie inside the folder of ``spec_file`` or inside
    ``data_root``, be a regular file no larger than :data:`MAX_CSV_BYTES`; errors never quote
    the file's content.

    Raises
    ------
    SpecError
        The path points outside the allowed folders, or is missing.
    DataError
        The file cannot be read as CSV, is too large or has no rows.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayesmle.specfile.data import read_new_csv
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "new.csv").write_text("x1,x2\n1.0,2.0\n")
    ...     read_new_csv(Path(tmp) / "new.csv", Path(tmp) / "model.toml").shape
    (1, 2)
    """
    spec_file = Path(spec_file)
    where = Where(str(spec_file))
    base = spec_file.resolve().parent
    folders = [base]
    if data_root is not None:
        folders.append(Path(data_root).resolve())
    shown = str(path)
    valid = "a file inside " + " or ".join(str(f) for f in folders)
    try:
        resolved = Path(path).resolve()  # `..` and symbolic links followed
    except (OSError, ValueError, RuntimeError):
        raise where.error(key, "is not a usable path.", value=shown, valid=valid) from None
    if not any(resolved.is_relative_to(f) for f in folders):
        raise where.error(key, "points outside the allowed folder(s) (the spec file's folder "
                               "or --data-root) once `..` and symbolic links are followed.",
                          value=shown, valid=valid)
    return _read_csv(resolved, shown, ",", where, key, "the working directory")


def _truth(table: dict, where: Where, builder: str) -> dict[str, Any]:
    gen = synthetic.GENERATORS.get(builder)
    if gen is None:  # pragma: no cover - every builder has a generator
        raise where.error("data.source", f"no synthetic generator for builder {builder!r}.",
                          value="synthetic", valid=", ".join(synthetic.GENERATORS))
    raw = where.table("data.truth", table.get("truth", {}), (*gen.required, *gen.optional),
                      required=gen.required)
    truth: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"data.truth.{key}"
        kind = synthetic.kind_of(builder, key)
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise where.error(full, "must be a number or an array of numbers.",
                              value=value) from None
        want = {"vector": 1, "matrix": 2}.get(kind, 0)
        if arr.ndim != want or arr.size == 0 or not np.all(np.isfinite(arr)):
            shape = {0: "a finite number", 1: "a non-empty array of numbers, one per predictor",
                     2: "an array of arrays: one row per predictor, one column per non-"
                        "reference class"}[want]
            raise where.error(full, f"must be {shape}.", value=value)
        if kind == "positive" and not np.all(arr > 0):
            raise where.error(full, "must be > 0.", value=value)
        if kind == "unit" and not np.all((arr > 0) & (arr < 1)):
            raise where.error(full, "must be a probability strictly between 0 and 1.",
                              value=value)
        truth[key] = float(arr) if arr.ndim == 0 else arr
    if "intercept" in truth and "coef" in truth:
        coef, icpt = np.asarray(truth["coef"]), np.asarray(truth["intercept"])
        want_shape = coef.shape[1:] if coef.ndim == 2 else ()
        if icpt.shape != want_shape:
            raise where.error("data.truth.intercept", f"must have shape {want_shape} to match "
                                                      f"`coef` (one per non-reference class).",
                              value=raw["intercept"])
    return truth


def _synthetic(table: dict, where: Where, builder: str, options: dict[str, Any]
               ) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    n = where.get(table, "data", "n", "integer", minimum=1)
    seed = where.get(table, "data", "seed", "integer", minimum=0)
    truth = _truth(table, where, builder)
    gen_options = dict(options)
    if "trials" in table:
        if builder != "binomial":
            raise where.error("data.trials", "only the binomial generator takes `trials`.",
                              value=table["trials"])
        gen_options["trials"] = where.get(table, "data", "trials", "integer", minimum=1)
    frame = synthetic.generate(builder, n, seed, truth, gen_options)
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in truth.items())
    return frame, f"synthetic: {n} draws from the {builder} model at {shown} (seed {seed})", truth


def _fmt(value: Any) -> str:
    arr = np.asarray(value)
    return f"{float(arr):g}" if arr.ndim == 0 else str(np.round(arr, 4).tolist())


def load_data(raw: Any, where: Where, base: Path, builder: str,
              generator_options: dict[str, Any] | None = None, *,
              data_root: str | Path | None = None) -> LoadedData:
    """Read the ``[data]`` table of a spec file into a :class:`LoadedData`.

    Parameters
    ----------
    raw : dict
        The ``[data]`` table.
    where : Where
        The spec file (for error messages).
    base : pathlib.Path
        The folder CSV paths are relative to.
    builder : str
        Name of the model builder (the synthetic generator to use).
    generator_options : dict, optional
        Builder options the synthetic generator needs (e.g. ``noise``).
    data_root : str or pathlib.Path, optional
        A folder besides ``base`` that CSV paths may point into.

    Raises
    ------
    SpecError
        Unknown source or keys, missing dataset or file, bad truth, a CSV path outside the
        allowed folders.
    DataError
        A file that cannot be read, or is larger than :data:`MAX_CSV_BYTES`.
    """
    if not isinstance(raw, dict):
        raise where.error("data", "must be a table [data] with a `source` key.", value=raw,
                          valid=", ".join(SOURCES))
    source = where.get(raw, "data", "source", "string", choices=SOURCES)
    table = where.table("data", raw, _KEYS[source])
    truth = None
    if source == "sklearn":
        frame, text = _sklearn(table, where)
    elif source == "statsmodels":
        frame, text = _statsmodels(table, where)
    elif source == "csv":
        frame, text = _csv(table, where, base, data_root)
    else:
        frame, text, truth = _synthetic(table, where, builder, generator_options or {})
    if "rows" in table:
        rows = where.get(table, "data", "rows", "integer", minimum=1)
        if "seed" not in table:
            raise where.error("data.seed", "is required with `rows` (the subsample is random "
                                           "and must be reproducible).")
        if source != "synthetic" and rows < len(frame):
            seed = where.get(table, "data", "seed", "integer", minimum=0)
            keep = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
            frame = frame.iloc[keep].reset_index(drop=True)
            text += f", a random subsample of {rows} rows (seed {seed})"
        elif source == "synthetic":
            raise where.error("data.rows", "use `n` for the size of synthetic data.",
                              value=table["rows"])
    elif "seed" in table and source != "synthetic":
        where.get(table, "data", "seed", "integer", minimum=0)
    text += f"; {len(frame)} rows, {frame.shape[1]} columns"
    settings = {k: v for k, v in table.items()}
    if frame.empty:  # pragma: no cover - every source checks this
        raise SpecError(f"{where.file}: the data source gave no rows.")
    return LoadedData(frame=frame, source=source, description=text, settings=settings,
                      truth=truth)
