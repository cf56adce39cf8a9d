"""``bayesmle predict``: predictions of a spec's fit for the fitted rows or a CSV of new rows.

References: the Python API (``bm.fit(spec, method).predict``) and, independently, numpy least
squares (the MLE of a Gaussian linear regression) with its plug-in Normal quantiles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _cli_helpers import in_process

import bayesmle as bm
from bayesmle.specfile import load

LINEAR = """
name = "lin"
[model]
builder = "linear_regression"
X = ["x1", "x2"]
y = "y"
[data]
source = "csv"
path = "train.csv"
[priors]
coef = "Normal(1.0)"
[fit]
random_seed = 3
"""

FORMULA = """
name = "lin_formula"
[model]
builder = "linear_regression"
formula = "y ~ x1 + np.log(x2) + C(g)"
[data]
source = "csv"
path = "train.csv"
"""


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 40
    x1, x2 = rng.normal(size=n), rng.uniform(0.5, 3.0, size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    y = 1.0 + 0.7 * x1 - 0.4 * x2 + (g == "b") * 0.5 + rng.normal(scale=0.8, size=n)
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y}).to_csv(spec_dir / "train.csv",
                                                              index=False)
    (spec_dir / "lin.toml").write_text(LINEAR)
    (spec_dir / "formula.toml").write_text(FORMULA)
    pd.DataFrame({"x1": [0.0, 1.0, -2.0], "x2": [1.0, 2.0, 0.5]}).to_csv(spec_dir / "new.csv",
                                                                         index=False)
    return spec_dir


def _train(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "train.csv")


def _json(capsys, *args: str) -> dict:
    code, out, err = in_process(capsys, "predict", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_plug_in_means_match_the_api_and_least_squares(folder, capsys):
    new = pd.read_csv(folder / "new.csv")
    payload = _json(capsys, str(folder / "lin.toml"), "--data", str(folder / "new.csv"),
                    "--method", "mle", "--level", "0.9")
    assert payload["method"] == "mle" and payload["level"] == 0.9
    assert payload["predictive"] == "plug-in" and payload["seed"] == 3
    table = pd.DataFrame(payload["predictions"])
    assert table.columns.tolist() == ["row", "mean", "lower", "upper"]
    # the Python API
    spec = load(folder / "lin.toml")
    api = bm.fit(spec.model_spec(), "mle").predict({"X": new}, level=0.9)
    np.testing.assert_allclose(table["mean"], api["mean"], rtol=1e-12)
    np.testing.assert_allclose(table[["lower", "upper"]], api[["lower", "upper"]], rtol=1e-12)
    # independently: least squares, and the MLE's sigma = sqrt(RSS / n)
    train = _train(folder)
    Z = np.column_stack([np.ones(len(train)), train[["x1", "x2"]]])
    beta, rss, *_ = np.linalg.lstsq(Z, train["y"], rcond=None)
    mean = np.column_stack([np.ones(3), new]) @ beta
    np.testing.assert_allclose(table["mean"], mean, rtol=1e-7, atol=1e-9)
    sigma = np.sqrt(rss[0] / len(train))
    z = scipy.stats.norm.ppf(0.95)
    np.testing.assert_allclose(table["upper"], mean + z * sigma, rtol=1e-6)
    np.testing.assert_allclose(table["lower"], mean - z * sigma, rtol=1e-6)


def test_map_and_the_fitted_rows(folder, capsys):
    spec = load(folder / "lin.toml")
    payload = _json(capsys, str(folder / "lin.toml"), "--method", "map")
    table = pd.DataFrame(payload["predictions"])
    assert len(table) == 40 and payload["data"] is None and payload["level"] is None
    api = bm.fit(spec.model_spec(), "map").predict()
    np.testing.assert_allclose(table["mean"], api["mean"], rtol=1e-12)


def test_laplace_draws_follow_the_seed(folder, capsys):
    args = (str(folder / "lin.toml"), "--data", str(folder / "new.csv"), "--method", "laplace",
            "--level", "0.5", "--seed", "11", "--draws", "400")
    first, second = _json(capsys, *args), _json(capsys, *args)
    assert first["seed"] == 11 and first["predictive"] == "laplace"
    assert first["predictions"] == second["predictions"]


def test_text_output(folder, capsys):
    code, out, err = in_process(capsys, "predict", str(folder / "lin.toml"), "--data",
                                str(folder / "new.csv"), "--level", "0.8")
    assert code == 0, err
    assert "mle predictions for new rows" in out and "lower" in out and "upper" in out
    assert len(out.strip().splitlines()) == 2 + 3


def test_a_formula_spec_builds_the_new_design_from_the_formula(folder, capsys):
    new = pd.DataFrame({"x1": [0.5, -1.0, 2.0], "x2": [1.0, 2.5, 0.7], "g": ["c", "a", "b"]})
    new.to_csv(folder / "new_g.csv", index=False)
    payload = _json(capsys, str(folder / "formula.toml"), "--data", str(folder / "new_g.csv"))
    table = pd.DataFrame(payload["predictions"])
    train = _train(folder)

    def design(frame):
        return np.column_stack([np.ones(len(frame)), frame["x1"], np.log(frame["x2"]),
                                frame["g"] == "b", frame["g"] == "c"]).astype(float)

    beta = np.linalg.lstsq(design(train), train["y"], rcond=None)[0]
    np.testing.assert_allclose(table["mean"], design(new) @ beta, rtol=1e-7, atol=1e-9)
    # a category the model was not fitted on
    new.assign(g=["a", "z", "b"]).to_csv(folder / "unseen.csv", index=False)
    code, _, err = in_process(capsys, "predict", str(folder / "formula.toml"), "--data",
                              str(folder / "unseen.csv"))
    assert code == 2 and "cannot be built" in err and "Traceback" not in err
    assert "'g' holds 1 categor(ies)" in err and "z" not in err.split("unseen.csv")[-1]
    new.assign(g=["a", None, "b"]).to_csv(folder / "missing.csv", index=False)
    code, _, err = in_process(capsys, "predict", str(folder / "formula.toml"), "--data",
                              str(folder / "missing.csv"))
    assert code == 2 and "missing values in the predictor columns, row(s) ['1']" in err


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"x1": [1.0], "x2": [2.0], "x3": [0.0]}), r"unknown column\(s\) \['x3'\]"),
    (pd.DataFrame({"x1": [1.0]}), r"missing column\(s\) \['x2'\]"),
    (pd.DataFrame({"x1": [1.0, np.nan], "x2": [2.0, 1.0]}), r"row|finite|NaN|missing"),
    (pd.DataFrame({"x1": ["a", "b"], "x2": [2.0, 1.0]}), r"numeric|number|float"),
])
def test_bad_csv_files_exit_2_with_a_message(folder, capsys, frame, message):
    frame.to_csv(folder / "bad.csv", index=False)
    code, out, err = in_process(capsys, "predict", str(folder / "lin.toml"), "--data",
                                str(folder / "bad.csv"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err


def test_the_response_column_may_be_present(folder, capsys):
    pd.DataFrame({"x1": [1.0], "x2": [2.0], "y": [0.3]}).to_csv(folder / "with_y.csv",
                                                                 index=False)
    payload = _json(capsys, str(folder / "lin.toml"), "--data", str(folder / "with_y.csv"))
    assert len(payload["predictions"]) == 1


def test_a_csv_outside_the_spec_folder_is_refused_unless_under_data_root(folder, capsys):
    outside = folder.parent / "outside.csv"
    pd.DataFrame({"x1": [1.0], "x2": [2.0]}).to_csv(outside, index=False)
    spec = str(folder / "lin.toml")
    for path in (str(outside), str(folder / ".." / "outside.csv")):
        code, out, err = in_process(capsys, "predict", spec, "--data", path)
        assert code == 2 and out == "" and "outside the allowed folder" in err
    link = folder / "link.csv"
    link.symlink_to(outside)
    code, _, err = in_process(capsys, "predict", spec, "--data", str(link))
    assert code == 2 and "outside the allowed folder" in err
    code, _, err = in_process(capsys, "predict", spec, "--data", str(outside), "--data-root",
                              str(folder.parent))
    assert code == 0, err
    code, _, err = in_process(capsys, "predict", spec, "--data", str(folder / "nope.csv"))
    assert code == 2 and "no such file" in err


def test_other_usage_errors(folder, capsys):
    spec = str(folder / "lin.toml")
    code, _, err = in_process(capsys, "predict", spec, "--method", "laplace", "--uncertainty",
                              "wald")
    assert code == 2 and "--uncertainty wald applies to --method mle or map" in err
    code, _, err = in_process(capsys, "predict", spec, "--level", "1.5")
    assert code == 2 and "level" in err
    code, _, err = in_process(capsys, "predict", spec, "--method", "advi")
    assert code == 2 and "invalid choice" in err
    coin = folder / "coin.toml"
    coin.write_text('model = { builder = "bernoulli", y = "y" }\n'
                    'data = { source = "synthetic", n = 20, seed = 1, truth = { p = 0.3 } }\n')
    code, _, err = in_process(capsys, "predict", str(coin), "--data", str(folder / "new.csv"))
    assert code == 2 and "no predictors" in err
    payload = _json(capsys, str(coin))  # the fitted rows of an i.i.d. model
    assert len(payload["predictions"]) == 20
    assert payload["predictions"][0]["mean"] == pytest.approx(
        bm.fit(load(coin).model_spec(), "mle").params["p"], rel=1e-12)


def test_wald_uncertainty_widens_the_plug_in_interval(folder, capsys):
    args = (str(folder / "lin.toml"), "--data", str(folder / "new.csv"), "--level", "0.9")
    plug = pd.DataFrame(_json(capsys, *args)["predictions"])
    wald = pd.DataFrame(_json(capsys, *args, "--uncertainty", "wald")["predictions"])
    assert ((wald["upper"] - wald["lower"]) > (plug["upper"] - plug["lower"])).all()
