"""The command line under attack (issue 12): hostile spec files through every command.

A folder of hostile specs -- a formula that would run code, a CSV path out of the folder, a
report name that would replace the top-level index, absurd draws and replicate counts, wrong
types -- goes through ``validate``, ``fit``, ``compare``, ``study`` and ``report``. For each:
exit code 2, a one-line ``error:`` naming the key, no Python traceback, the payload never runs
(a sentinel file never appears), and no file is created or changed anywhere in the test's
folder except inside ``--out`` (and nothing at all there for a batch rejected up front).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_helpers import in_process

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
name = "{name}"
[model]
builder = "bernoulli"
y = "y"
[data]
source = "synthetic"
n = 20
seed = 3
truth = {{ p = 0.6 }}
[priors]
p = "Beta(2, 2)"
[fit]
methods = ["mle", "map"]
{extra}
"""

REGRESSION = """
name = "{name}"
[model]
builder = "linear_regression"
formula = "{formula}"
[data]
source = "csv"
path = "{path}"
"""


def hostile(folder: Path, sentinel: Path) -> dict[str, tuple[Path, str]]:
    """Hostile specs by name -> (path, a fragment the error message must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("y,x1,x2\n1.0,0.5,2\n2.1,1.5,3\n2.9,2.5,5\n4.2,3.5,4\n")
    payload = f"__import__('pathlib').Path('{sentinel}').touch()"
    specs = {
        "code_in_formula": (REGRESSION.format(
            name="evil1", formula=f"y ~ x1 + {{{payload}}}".replace('"', '\\"'),
            path="data.csv"), "formula"),
        "code_in_I": (REGRESSION.format(
            name="evil2", formula=f"y ~ I({payload})".replace('"', '\\"'), path="data.csv"),
            "formula"),
        "code_on_the_left": (REGRESSION.format(
            name="evil3", formula=f"{{{payload}}} ~ x1".replace('"', '\\"'), path="data.csv"),
            "formula"),
        "path_escape": (REGRESSION.format(name="evil4", formula="y ~ x1",
                                          path="../../../etc/passwd"), "data.path"),
        "absolute_path": (REGRESSION.format(name="evil5", formula="y ~ x1",
                                            path="/etc/passwd"), "data.path"),
        "index_name": (GOOD.format(name="index.html", extra=""), "name"),
        "long_name": (GOOD.format(name="a" * 300, extra=""), "name"),
        "path_name": (GOOD.format(name="../outside", extra=""), "name"),
        "huge_draws": (GOOD.format(name="draws", extra="draws = 100000000000"), "draws"),
        "float_draws": (GOOD.format(name="fdraws", extra="draws = 1e11"), "draws"),
        "huge_reps": (GOOD.format(name="reps", extra="[studies.map_to_mle]\nns = [5]\n"
                                                     "reps = 1000000000"), "reps"),
        "string_seed": (GOOD.format(name="seed", extra='random_seed = "1"'), "random_seed"),
    }
    out = {}
    for key, (text, fragment) in specs.items():
        path = folder / f"{key}.toml"
        path.write_text(text)
        out[key] = (path, fragment)
    return out


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


COMMANDS = {
    "validate": lambda spec, out: ["validate", spec],
    "fit": lambda spec, out: ["fit", spec, "--method", "map"],
    "compare": lambda spec, out: ["compare", spec],
    "study": lambda spec, out: ["study", "map_to_mle", spec],
    "report": lambda spec, out: ["report", spec, "--out", out, "--no-progress"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_every_hostile_spec(tmp_path, capsys, command):
    sentinel = tmp_path / "pwned"
    specs = hostile(tmp_path / "specs", sentinel)
    out = tmp_path / "reports"
    before = snapshot(tmp_path)
    for key, (path, fragment) in specs.items():
        code, stdout, stderr = in_process(capsys, *COMMANDS[command](str(path), str(out)))
        assert code == 2, (key, code, stderr)
        assert stderr.startswith("error: ") and fragment in stderr, (key, stderr)
        assert "Traceback" not in stderr and "root:" not in stderr, (key, stderr)
        assert not sentinel.exists(), key
    assert snapshot(tmp_path) == before  # nothing written, not even an empty --out


def test_a_batch_with_one_hostile_spec_writes_nothing(tmp_path, capsys):
    sentinel = tmp_path / "pwned"
    specs = hostile(tmp_path / "specs", sentinel)
    good = tmp_path / "specs" / "good.toml"
    good.write_text(GOOD.format(name="good", extra=""))
    before = snapshot(tmp_path)
    code, _, stderr = in_process(capsys, "report", str(good),
                                 str(specs["code_in_formula"][0]), "--out",
                                 str(tmp_path / "reports"), "--no-progress")
    assert code == 2 and "formula" in stderr and not sentinel.exists()
    assert snapshot(tmp_path) == before


def test_a_good_report_touches_only_its_output_folder(tmp_path, capsys):
    (tmp_path / "specs").mkdir()
    good = tmp_path / "specs" / "good.toml"
    good.write_text(GOOD.format(name="good", extra=""))
    before = snapshot(tmp_path)
    code, _, stderr = in_process(capsys, "report", str(good), "--out", str(tmp_path / "out"),
                                 "--no-progress", "--no-studies")
    assert code == 0, stderr
    after = snapshot(tmp_path)
    changed = {k for k in after if before.get(k) != after[k]} | (set(before) - set(after))
    assert changed and all(k == "out" or k.startswith("out" + os.sep) for k in changed), changed


def test_hostile_spec_in_a_fresh_process_has_no_traceback(tmp_path):
    sentinel = tmp_path / "pwned"
    specs = hostile(tmp_path / "specs", sentinel)
    proc = subprocess.run([sys.executable, "-m", "bayesmle.cli", "validate",
                           *(str(p) for p, _ in specs.values())],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and not sentinel.exists()
    assert proc.stderr.count("error: ") == len(specs)
