"""Tables of a report: data summary, comparison, diagnostics, optimiser certificates.

Everything here is built from results (no fitting); numbers are formatted only at rendering.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COMPARISON_GROUPS",
    "PREDICTIVE_HEADERS",
    "comparison_groups",
    "data_summary",
    "class_counts",
    "column_chunks",
    "fmt",
    "markdown_table",
    "optimizer_table",
]

#: Column groups of the comparison table as shown: (group, [(column, header), ...]).
COMPARISON_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("MLE", (("mle_estimate", "estimate"), ("mle_stderr", "s.e."))),
    ("REML", (("reml_estimate", "estimate"), ("reml_stderr", "s.e."))),
    ("EM", (("em_estimate", "estimate"), ("em_stderr", "s.e."))),
    ("MAP", (("map_estimate", "estimate"), ("map_stderr", "s.e."))),
    ("Laplace", (("laplace_mode", "mode"), ("laplace_mean", "mean"), ("laplace_sd", "sd"))),
    ("NUTS posterior", (("nuts_mean", "mean"), ("nuts_sd", "sd"), ("nuts_eti_0.03", "3%"),
                        ("nuts_eti_0.97", "97%"), ("nuts_r_hat", "R-hat"),
                        ("nuts_ess_bulk", "ESS bulk"))),
    ("ADVI (mean-field)", (("advi_mean", "mean"), ("advi_sd", "sd"),
                           ("advi_pareto_k", "Pareto k"))),
    ("ADVI (full-rank)", (("fullrank_advi_mean", "mean"), ("fullrank_advi_sd", "sd"),
                          ("fullrank_advi_pareto_k", "Pareto k"))),
    ("Pathfinder", (("pathfinder_mean", "mean"), ("pathfinder_sd", "sd"),
                    ("pathfinder_pareto_k", "Pareto k"))),
    ("find_MAP (MLE)", (("find_map_mle_estimate", "estimate"),
                        ("find_map_mle_distance_se", "Δ to MLE (s.e.)"))),
    ("find_MAP (MAP)", (("find_map_map_estimate", "estimate"),
                        ("find_map_map_distance_se", "Δ to MAP (s.e.)"))),
)

#: Columns of the predictive table as shown: (column of ``Comparison.predictive``, header).
PREDICTIVE_HEADERS: tuple[tuple[str, str], ...] = (
    ("elpd", "elpd (LOO)"), ("se", "s.e."), ("p", "p (effective)"), ("kind", "LOO"),
    ("elpd_diff", "Δ elpd to best"), ("diff_se", "s.e. of Δ"), ("aic_elpd", "−AIC/2"),
)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: ``—`` for NaN, exact ``0``, 4 significant digits otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) >= 1e6 or abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def column_chunks(frame: pd.DataFrame, max_columns: int = 10) -> list[pd.DataFrame]:
    """``frame`` cut into tables of at most ``max_columns`` columns, for a page's width.

    Each piece after the first repeats the first column (the key: ``scale``, ``n``...), so
    that every row can be read on its own; a narrow frame is returned whole.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmle.report.tables import column_chunks
    >>> frame = pd.DataFrame([range(8)], columns=list("abcdefgh"))
    >>> [list(part.columns) for part in column_chunks(frame, max_columns=4)]
    [['a', 'b', 'c', 'd'], ['a', 'e', 'f', 'g'], ['a', 'h']]
    >>> len(column_chunks(frame))
    1
    """
    if max_columns < 2:
        raise ValueError(f"`max_columns` must be >= 2, got {max_columns}.")
    if frame.shape[1] <= max_columns:
        return [frame]
    key, rest = frame.columns[:1], list(frame.columns[1:])
    first = frame.iloc[:, :max_columns]
    rest = rest[max_columns - 1:]
    step = max_columns - 1
    return [first] + [frame[[*key, *rest[i:i + step]]] for i in range(0, len(rest), step)]


def comparison_groups(table: pd.DataFrame) -> list[tuple[str, list[tuple[str, str]]]]:
    """The column groups present in ``table`` (methods that ran)."""
    out = []
    for group, cols in COMPARISON_GROUPS:
        present = [(c, h) for c, h in cols if c in table.columns]
        if present:
            out.append((group, present))
    return out


def _numeric_summary(name: str, values: np.ndarray) -> dict[str, Any]:
    v = values[np.isfinite(values)]
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0]) if v.size else [np.nan] * 5
    return {"variable": name, "count": int(values.size), "mean": float(np.mean(v)) if v.size
            else np.nan, "sd": float(np.std(v, ddof=1)) if v.size > 1 else np.nan,
            "min": q[0], "25%": q[1], "median": q[2], "75%": q[3], "max": q[4]}


def _label(arg: str, columns: Mapping[str, str] | None) -> str:
    column = (columns or {}).get(arg)
    return arg if column in (None, arg) else f"{arg} ({column})"


def data_summary(data: Mapping[str, Any], columns: Mapping[str, str] | None = None
                 ) -> pd.DataFrame:
    """Count, mean, sd and quantiles of every numeric variable the model uses (not factors).

    ``data`` holds the builder's data arguments (``X`` a DataFrame, the others 1-D arrays);
    ``columns`` the data column behind each argument, for the labels (``y (target)``).
    """
    rows = []
    for arg, value in data.items():
        if isinstance(value, pd.DataFrame):
            for col in value.columns:  # text / categorical columns (factors) are left out
                if value[col].dtype.kind in "biuf":
                    rows.append(_numeric_summary(f"{col}", value[col].to_numpy(dtype=float)))
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            rows.append(_numeric_summary(_label(arg, columns), arr.astype(float)))
    return pd.DataFrame(rows).set_index("variable") if rows else pd.DataFrame()


def class_counts(data: Mapping[str, Any], columns: Mapping[str, str] | None = None
                 ) -> pd.DataFrame | None:
    """Count and share of each label of the response ``y`` (None without a ``y``)."""
    y = data.get("y")
    if y is None:
        return None
    arr = np.asarray(y)
    labels, counts = np.unique(arr, return_counts=True)
    return pd.DataFrame({"count": counts, "share": counts / counts.sum()},
                        index=pd.Index([str(v) for v in labels], name=_label("y", columns)))


def optimizer_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """The optimum's certificate per point method (MLE, MAP, Laplace mode, find_MAP)."""
    rows = []
    for method, res in results.items():
        if method == "laplace":
            res = res.mode
        elif method not in ("mle", "map", "reml", "em", "find_map_mle", "find_map_map"):
            continue
        ic = res.method in ("mle", "map", "em")
        rows.append({
            "method": method, "converged": bool(res.converged), "loglik": res.loglik,
            "logp": res.logp, "aic": res.aic if ic else np.nan,
            "bic": res.bic if ic else np.nan,
            "grad_norm": res.grad_norm, "newton_decrement": res.newton_decrement,
            "hessian_pd": bool(res.hessian_pd), "iterations": int(res.n_iter),
            "seconds": res.seconds, "compile_seconds": res.compile_seconds,
        })
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] | None = None,
                   index: bool = True, max_rows: int = 40) -> str:
    """A GitHub-flavoured Markdown table (numbers formatted with :func:`fmt`)."""
    cols = list(columns) if columns is not None else list(frame.columns)
    head = ([str(frame.index.name or "")] if index else []) + [str(c) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for label, row in frame.head(max_rows).iterrows():
        cells = ([str(label)] if index else []) + [fmt(row[c]) for c in cols]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n({len(frame) - max_rows} more rows in the CSV file)")
    return "\n".join(lines)
