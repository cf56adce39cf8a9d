"""Exit codes of ``bayesmle report``: 1 for a partial report (the failed part is an error box,
the rest checked against the Python API), 2 for an ``--out`` folder or a report name that
cannot be used (a message naming it, no traceback, nothing written), and a batch on worker
processes that neither hangs when a worker dies nor leaves temporary folders when stopped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli_helpers import in_process
from _report_specs import empty_level_spec

import bayesmle as bm
import bayesmle.studies
from bayesmle.errors import MLENotFoundError
from bayesmle.report import MAX_NAME
from bayesmle.specfile import load

ROOT = Path(__file__).resolve().parents[1]

COIN = """
name = "{name}"
[model]
builder = "bernoulli"
[data]
source = "synthetic"
n = 30
seed = 2
truth = {{ p = 0.4 }}
[priors]
p = "Beta(2, 2)"
[fit]
methods = ["mle", "map"]
"""

def run(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayesmle.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kwargs)


def coin(folder: Path, name: str = "coin") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(COIN.format(name=name))
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


# -- a partial report ----------------------------------------------------------------------------
def test_a_study_whose_mle_does_not_exist_gives_a_partial_report(tmp_path):
    path = empty_level_spec(tmp_path)
    out = tmp_path / "reports"
    proc = run("report", str(path), "--out", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    # the study fails through the Python API too, with this message
    spec = load(path)
    with pytest.raises(MLENotFoundError) as api:
        bayesmle.studies.overdispersion(**spec.study_arguments("overdispersion"))
    first_line = str(api.value).splitlines()[0]
    assert "error: empty_level: partial report: 1 part(s) failed" in proc.stderr
    assert f"  study overdispersion: MLENotFoundError: {first_line}" in proc.stderr
    assert re.search(r"^!! empty_level .* PARTIAL ", proc.stdout, re.M)
    assert "1 of 1 report(s) written" in proc.stdout and "1 partial" in proc.stdout
    assert f"Open {(out / 'index.html').resolve().as_uri()}" in proc.stdout

    report = out / "empty_level"
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["partial"] is True
    assert [(f["part"], f["error"]) for f in manifest["failed"]] == [
        ("study overdispersion", "MLENotFoundError")]
    assert manifest["failed"][0]["message"] == str(api.value)
    assert list(manifest["errors"]) == ["mle"]  # the main fit's MLE: a method error as before
    # the rest of the report is complete: the MAP is the API's
    table = pd.read_csv(report / "tables" / "comparison.csv", index_col="parameter")
    ref = bm.fit(spec.model_spec(), "map")
    np.testing.assert_allclose(table["map_estimate"].to_numpy(), ref.flat_params(), rtol=1e-8)
    html = (report / "index.html").read_text()
    studies = re.search(r'<section id="studies">(.*?)</section>', html, re.S).group(1)
    assert 'id="failed-study-overdispersion"' in studies and "MLENotFoundError" in studies
    assert "<img" not in studies
    assert '<tr class="partial">' in (out / "index.html").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["empty_level", "index.html"]


# -- --out and report names ----------------------------------------------------------------------
def assert_rejected(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_out_that_cannot_be_created_exits_2(tmp_path, capsys):
    path = coin(tmp_path)
    code, out, err = in_process(capsys, "report", str(path), "--out", "/proc/x")
    assert_rejected(code, err, "--out '/proc/x'", "cannot create the folder",
                    "No such file or directory")
    assert not Path("/proc/x").exists() and "Open" not in out


def test_out_under_a_regular_file_exits_2(tmp_path, capsys):
    path = coin(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    before = sorted(p.name for p in tmp_path.iterdir())
    sub = tmp_path / "notes.txt" / "sub"
    code, _, err = in_process(capsys, "report", str(path), "--out", str(sub))
    assert_rejected(code, err, f"--out '{sub}'", "is a file, not a folder")
    code, _, err = in_process(capsys, "report", str(path), "--out", str(tmp_path / "notes.txt"))
    assert_rejected(code, err, "--out", "exists and is not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_exits_2(tmp_path, capsys):
    path = coin(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = in_process(capsys, "report", str(path), "--out", str(locked / "r"))
        assert_rejected(code, err, "--out", "Permission denied")
        code, _, err = in_process(capsys, "report", str(path), "--out", str(locked))
        assert_rejected(code, err, "--out", "cannot write in the folder")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("name", ["index.html", "r" * 300])
def test_unsafe_report_names_exit_2_and_spare_the_index(tmp_path, capsys, name):
    path = tmp_path / "spec.toml"
    path.write_text(COIN.format(name=name))
    out = tmp_path / "reports"
    out.mkdir()
    (out / "index.html").write_text("the index of all reports")
    code, _, err = in_process(capsys, "report", str(path), "--out", str(out))
    assert_rejected(code, err, name[:20])
    assert "name" in err
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "the index of all reports"
    code, _, err = in_process(capsys, "report", str(path), "--out", str(tmp_path / "new"))
    assert_rejected(code, err, name[:20])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "spec.toml"]


def test_the_longest_name_passes_the_cli_check(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text(COIN.format(name="r" * MAX_NAME))
    code, out, err = in_process(capsys, "report", str(path), "--out", str(tmp_path / "o"),
                                "--no-progress")
    assert code == 0, err
    assert (tmp_path / "o" / ("r" * MAX_NAME) / "index.html").is_file()
    assert leftovers(tmp_path / "o") == []


def test_bad_options_exit_2(tmp_path, capsys):
    path = coin(tmp_path)
    code, _, err = in_process(capsys, "report", str(path), "--jobs", "0",
                              "--out", str(tmp_path / "o"))
    assert_rejected(code, err, "--jobs must be >= 1, got 0")
    assert not (tmp_path / "o").exists()
    code, _, err = in_process(capsys, "study", "map_to_mle", str(path), "--plot",
                              str(tmp_path / "no" / "such" / "fig.png"))
    assert_rejected(code, err, "--plot", "does not exist")


# -- worker processes ----------------------------------------------------------------------------
#: In each worker process (installed by its initializer, which is pickled by reference and
#: imported from PYTHONPATH), replaces the body of a report job: ``crash*`` specs kill their
#: worker with SIGKILL; ``term*`` ones open their report's temporary folder and send SIGTERM to
#: the command; ``wait*`` ones open it and wait there until the command stops them. The
#: events happen at fixed points of the run, not after a delay.
HOOK = """
import os, signal, time
from pathlib import Path
from bayesmle.cli import report
from bayesmle.report import atomic_directory

real_worker_init = report._worker_init
real_report_job = report._report_job

def report_job(job):
    path, overrides, no_studies, out = job[:4]
    name = Path(path).stem
    if name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    if name.startswith(("term", "wait")):
        with atomic_directory(Path(out) / name) as tmp:
            (tmp / "index.html").write_text("half a report")
            if name.startswith("term"):
                os.kill(os.getppid(), signal.SIGTERM)
            while True:  # until the command stops this worker
                time.sleep(0.1)
    return real_report_job(job)

def worker_init(*args):
    real_worker_init(*args)
    report._report_job = report_job
"""

RUNNER = """
import sys
import hook
from bayesmle.cli import report
report._worker_init = hook.worker_init
from bayesmle.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_hooked(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "hook.py").write_text(HOOK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


def test_a_worker_that_dies_fails_its_reports_instead_of_hanging(tmp_path):
    paths = [coin(tmp_path, "crash1"), coin(tmp_path, "crash2")]
    out = tmp_path / "reports"
    proc = run_hooked(tmp_path, "report", *map(str, paths), "--out", str(out), "--jobs", "2",
                      "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("crash1", "crash2"):
        assert f"error: {name}: report not written" in proc.stderr
    assert "worker process died" in proc.stderr
    assert "0 of 2 report(s) written" in proc.stdout and "Open" not in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]


def test_sigterm_stops_the_workers_and_keeps_the_previous_reports(tmp_path):
    paths = [coin(tmp_path, "term"), coin(tmp_path, "wait")]
    out = tmp_path / "reports"
    for name in ("term", "wait"):
        (out / name).mkdir(parents=True)
        (out / name / "index.html").write_text(f"previous {name}")
    proc = run_hooked(tmp_path, "report", *map(str, paths), "--out", str(out), "--jobs", "2",
                      "--no-progress")
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "terminated: reports in progress were discarded" in proc.stderr
    for name in ("term", "wait"):
        assert [p.name for p in (out / name).iterdir()] == ["index.html"]
        assert (out / name / "index.html").read_text() == f"previous {name}"
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["term", "wait"]


@pytest.mark.slow
def test_parallel_batch_with_a_partial_report(tmp_path):
    paths = [empty_level_spec(tmp_path), coin(tmp_path, "good")]
    out = tmp_path / "reports"
    proc = run("report", *map(str, paths), "--out", str(out), "--jobs", "2", "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: empty_level: partial report" in proc.stderr
    assert "2 of 2 report(s) written" in proc.stdout and "1 partial" in proc.stdout
    assert json.loads((out / "good" / "manifest.json").read_text())["partial"] is False
    assert json.loads((out / "empty_level" / "manifest.json").read_text())["partial"] is True
    k = load(paths[1]).model_spec().data["y"].sum()
    table = pd.read_csv(out / "good" / "tables" / "comparison.csv", index_col="parameter")
    assert table.loc["p", "mle_estimate"] == pytest.approx(k / 30, rel=1e-12)


CSV_SPEC = """
name = "shared_csv"
[model]
builder = "gaussian"
y = "height"
[data]
source = "csv"
path = "../shared/heights.csv"
"""


def test_data_root_lets_a_spec_read_a_shared_folder_and_nothing_else(tmp_path, capsys):
    (tmp_path / "shared").mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "shared" / "heights.csv").write_text("height\n170\n165\n180\n172\n")
    spec = tmp_path / "specs" / "shared_csv.toml"
    spec.write_text(CSV_SPEC)
    code, out, err = in_process(capsys, "validate", str(spec))
    assert code == 2 and "data.path" in err and "Traceback" not in err
    code, out, err = in_process(capsys, "validate", str(spec), "--data-root",
                                str(tmp_path / "shared"))
    assert code == 0, err
    code, out, err = in_process(capsys, "fit", str(spec), "--method", "mle", "--json",
                                "--data-root", str(tmp_path / "shared"))
    assert code == 0, err
    heights = np.array([170.0, 165.0, 180.0, 172.0])
    assert json.loads(out)["parameters"]["mu"]["estimate"] == pytest.approx(heights.mean())
    # a data root does not open the rest of the file system
    spec.write_text(CSV_SPEC.replace("../shared/heights.csv", "../../etc/passwd"))
    code, out, err = in_process(capsys, "validate", str(spec), "--data-root",
                                str(tmp_path / "shared"))
    assert code == 2 and "root:" not in err
