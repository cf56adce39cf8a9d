"""The ``bayesmle`` command, run as a subprocess: each subcommand, its JSON against the Python
API's numbers, bad input (exit code, a message naming the key, no traceback) and interrupted
reports (the previous report survives SIGKILL, SIGINT and SIGTERM).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli_helpers import in_process

import bayesmle as bm
from bayesmle.cli import main
from bayesmle.compare import compare
from bayesmle.specfile import load
from bayesmle.studies import map_to_mle

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

SPEC = """
name = "{name}"
title = "CLI test: coin"
[model]
builder = "bernoulli"
[data]
source = "synthetic"
n = 40
seed = 3
truth = {{ p = 0.3 }}
[priors]
p = "Beta(2, 2)"
[fit]
draws = {draws}
tune = 100
chains = 2
random_seed = 11
[studies.map_to_mle]
ns = [10, 40]
reps = 3
"""


def run(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayesmle.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=kwargs.pop("cwd", ROOT), **kwargs)


def spec_file(folder: Path, name: str = "coin", draws: int = 100) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPEC.format(name=name, draws=draws))
    return path


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") or "error:" in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)


# -- help and the entry point -------------------------------------------------------------------
def test_entry_point_and_help(capsys):
    script = Path(sys.executable).parent / "bayesmle"
    assert script.exists(), "pyproject's [project.scripts] entry point is not installed"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for word in ("report", "fit", "compare", "study", "validate", "examples:", "exit codes"):
        assert word in proc.stdout
    with pytest.raises(SystemExit) as info:
        main(["report", "--help"])
    assert info.value.code == 0
    assert "--out DIR" in capsys.readouterr().out


def test_unknown_method_and_study_are_usage_errors(tmp_path, capsys):
    code, _, err = in_process(capsys, "fit", str(spec_file(tmp_path)), "--method", "bayes")
    assert code == 2 and "invalid choice: 'bayes'" in err
    assert "'mle', 'map', 'laplace', 'nuts'" in err
    code, _, err = in_process(capsys, "study", "magic", str(spec_file(tmp_path)))
    assert code == 2 and "map_to_mle" in err


# -- JSON equals the Python API -------------------------------------------------------------------
def test_fit_json_equals_the_python_api(tmp_path):
    path = spec_file(tmp_path)
    proc = run("fit", str(path), "--method", "mle", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    res = bm.fit(load(path).model_spec(), "mle")
    y = load(path).model_spec().data["y"]
    assert out["method"] == "mle" and out["model"] == "coin"
    assert out["parameters"]["p"]["estimate"] == pytest.approx(y.mean(), rel=1e-12)
    assert out["parameters"]["p"]["estimate"] == pytest.approx(res.params["p"], rel=1e-12)
    assert out["parameters"]["p"]["stderr"] == pytest.approx(res.stderr["p"], rel=1e-12)
    assert out["loglik"] == pytest.approx(res.loglik, rel=1e-12)
    assert out["converged"] is True and out["warnings"] == []



def test_fit_laplace_json_in_process(tmp_path, capsys):
    path = spec_file(tmp_path)
    code, stdout, err = in_process(capsys, "fit", str(path), "--method", "laplace", "--json",
                                   "--seed", "4")
    assert code == 0, err
    out = json.loads(stdout)
    lap = bm.fit(load(path).model_spec(), "laplace", random_seed=4, draws=200)
    assert out["options"] == {"draws": 200, "random_seed": 4}  # draws x chains
    # a posterior mode: its summary has no z statistic or p-value
    assert out["parameters"]["p"]["mode"] == pytest.approx(lap.params["p"], rel=1e-12)
    assert out["parameters"]["p"]["mean"] == pytest.approx(lap.mean()["p"], rel=1e-12)
    assert out["parameters"]["p"]["sd"] == pytest.approx(lap.sd()["p"], rel=1e-12)


@pytest.mark.slow
def test_fit_nuts_json_equals_the_python_api(tmp_path):
    path = spec_file(tmp_path)
    proc = run("fit", str(path), "--method", "nuts", "--json", "--draws", "120")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["options"] == {"draws": 120, "tune": 100, "chains": 2, "target_accept": 0.8,
                              "random_seed": 11}
    with warnings.catch_warnings():  # short chains may fail the diagnostics: compared below
        warnings.simplefilter("ignore", bm.SamplingWarning)
        post = bm.fit(load(path).model_spec(), "nuts", **out["options"])
    assert out["problems"] == post.problems()
    summary = post.summary()
    for col in ("mean", "sd", "ess_bulk", "r_hat"):
        assert out["parameters"]["p"][col] == pytest.approx(summary.loc["p", col], rel=1e-12)
    assert out["divergences"] == post.divergences


def test_compare_json_equals_the_python_api(tmp_path):
    path = spec_file(tmp_path)
    proc = run("compare", str(path), "--json", "--methods", "mle,map,laplace")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["methods"] == ["mle", "map", "laplace"] and out["errors"] == {}
    ref = compare(load(path).model_spec(), methods=("mle", "map", "laplace"), random_seed=11,
                  draws=100)
    got = pd.DataFrame(out["table"]).T
    assert list(got.index) == list(ref.table.index) == ["p"]
    assert list(got.columns) == list(ref.table.columns)
    np.testing.assert_allclose(got.to_numpy(float), ref.table.to_numpy(float), rtol=1e-12)
    # the MAP under Beta(2, 2) in closed form: (k + 1) / (n + 2)
    k = load(path).model_spec().data["y"].sum()
    assert out["table"]["p"]["map_estimate"] == pytest.approx((k + 1) / 42, rel=1e-9)


def test_study_json_equals_the_python_api(tmp_path):
    path = spec_file(tmp_path)
    proc = run("study", "map_to_mle", str(path), "--json", "--arg", "reps=2", "--arg",
               "ns=[10, 30]")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    spec = load(path).with_study("map_to_mle", {"reps": 2, "ns": [10, 30]})
    ref = map_to_mle(**spec.study_arguments("map_to_mle"))
    got = pd.DataFrame(out["table"])
    assert len(got) == 4
    np.testing.assert_allclose(got["map"].to_numpy(float), ref.table["map"].to_numpy(float),
                               rtol=1e-12)
    assert out["numbers"]["slope"] == pytest.approx(ref.slope, rel=1e-12)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_spec_exits_2_naming_file_and_key(tmp_path, capsys):
    path = spec_file(tmp_path)
    path.write_text(path.read_text().replace('p = "Beta(2, 2)"', 'p = "Betta(2, 2)"'))
    proc = run("fit", str(path), "--method", "mle")
    assert_user_error(proc, f"{path}: `priors.p`", "unknown prior 'Betta'", "Valid: ")
    for command in (["compare", str(path)], ["report", str(path), "--out",
                                             str(tmp_path / "out")], ["validate", str(path)]):
        code, _, err = in_process(capsys, *command)
        assert code == 2 and f"{path}: `priors.p`" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing fitted, nothing written


def test_missing_spec_and_bad_values(tmp_path, capsys):
    path = spec_file(tmp_path)
    for args, fragment in (
            (["fit", str(tmp_path / "nope.toml"), "--method", "mle"],
             "nope.toml: no such spec file"),
            (["fit", str(path), "--method", "nuts", "--draws", "0"],
             "`draws` must be an integer >= 1"),
            (["study", "map_to_mle", str(path), "--arg", "reps=zero"],
             "`reps` must be an integer"),
            (["study", "map_to_mle", str(path), "--arg", "wobble=1"],
             "`studies.map_to_mle.wobble`"),
            (["report", "--models", str(tmp_path / "empty")], "no such folder"),
            (["fit", str(MODELS / "iris_softmax.toml"), "--method", "mle"],
             "The MLE does not exist")):
        code, _, err = in_process(capsys, *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and fragment in err, (args, err)


# -- reports ------------------------------------------------------------------------------------
def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


#: Runs the command line with a hook that sends ``signal`` to the process from inside NUTS,
#: once the chains are running and the report's temporary folder exists: the interruption
#: happens at a fixed point of the run, whatever the machine's speed (no sleep).
INTERRUPT_HOOK = """
import signal, sys
# Ctrl-C as a terminal's foreground job gets it. A job started in the background by a
# non-interactive shell (``pytest ... &``, a CI runner) inherits SIGINT *ignored*, and Python
# then installs no KeyboardInterrupt handler: the signal would be ignored, as POSIX intends.
signal.signal(signal.SIGINT, signal.default_int_handler)
import nutpie
real_sample = nutpie.sample
def sample(*args, **kwargs):
    sampler = real_sample(*args, **kwargs)
    real_wait = sampler.wait
    def wait(*wargs, **wkwargs):
        # raise_signal delivers to *this* thread before it returns: the handler runs before the
        # wait, deterministically (os.kill may land on a sampler thread and be seen only once
        # sampling has finished -- a race the cold CI run lost once)
        signal.raise_signal(signal.{sig})
        return real_wait(*wargs, **wkwargs)
    sampler.wait = wait
    return sampler
nutpie.sample = sample
from bayesmle.cli import main
sys.exit(main(sys.argv[1:]))
"""


def interrupted_report(path: Path, out: Path, sig: signal.Signals, *extra: str
                       ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", INTERRUPT_HOOK.format(sig=sig.name), "report", str(path),
         "--out", str(out), *extra], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_report_survives_interruptions(tmp_path):
    path = spec_file(tmp_path, draws=100)
    out = tmp_path / "reports"
    proc = run("report", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"Open {(out / 'index.html').resolve().as_uri()}" in proc.stdout
    report = out / "coin"
    before = snapshot(report)
    assert {"index.html", "report.md", "manifest.json", "tables/comparison.csv",
            "tables/study_map_to_mle.csv", "fits/nuts.nc"} <= set(before)
    assert 'href="coin/index.html"' in (out / "index.html").read_text()

    # The same report again, stopped three ways while NUTS runs.
    for sig, code in ((signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 143)):
        # A million draws per chain: the chains are certainly still running when the signal
        # comes (nutpie installs its own SIGINT handler while it samples and stops early; with
        # the spec's 100 draws a loaded machine could finish first and ignore it).
        proc = interrupted_report(path, out, sig, "--seed", "99", "--draws", "1000000")
        assert proc.returncode == code, (sig, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert snapshot(report) == before  # the previous report, byte for byte
        leftovers = list(out.glob(".coin.tmp-*"))
        if sig == signal.SIGKILL:
            assert leftovers  # killed outright: the next run removes it
        else:
            assert not leftovers, "an interrupted run must discard its temporary folder"
            assert "previous reports are intact" in proc.stderr
    # the SIGKILL leftover was removed by the next run; only the report and the index remain
    assert sorted(p.name for p in out.iterdir()) == ["coin", "index.html"]
    assert manifest(report)["seeds"]["fit"] == 11


@pytest.mark.slow
def test_report_batch_with_a_failure_and_parallel_jobs(tmp_path):
    good = spec_file(tmp_path, "good")
    bad = tmp_path / "bad.toml"  # valid spec, but the study fails at run time
    bad.write_text(SPEC.format(name="bad", draws=100).replace("ns = [10, 40]", "ns = [1, 40]"))
    out = tmp_path / "reports"
    proc = run("report", str(good), str(bad), "--out", str(out), "--jobs", "2",
               "--methods", "mle,map")
    assert proc.returncode == 1, proc.stderr
    assert "error: bad: report not written" in proc.stderr and "`ns`" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 of 2 report(s) written" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["good", "index.html"]
    assert manifest(out / "good")["fit"]["methods"] == ["mle", "map"]
    table = pd.read_csv(out / "good" / "tables" / "comparison.csv", index_col="parameter")
    k = load(good).model_spec().data["y"].sum()
    assert table.loc["p", "mle_estimate"] == pytest.approx(k / 40, rel=1e-12)


def test_validate_and_list_the_bundled_models(capsys):
    proc = run("validate")
    assert proc.returncode == 0, proc.stderr
    assert len([line for line in proc.stdout.splitlines() if line.startswith("ok ")]) >= 10
    code, out, _ = in_process(capsys, "list")
    assert code == 0 and "diabetes_lasso" in out
