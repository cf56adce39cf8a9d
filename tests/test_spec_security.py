"""Spec files are data, not code (issue 12): formulas, CSV paths and names from untrusted files.

Every attack is checked by its effect, not by the code's own numbers: a payload would create a
sentinel file (or write to one), and the test asserts the file does not exist afterwards.
Positive controls run the same payloads through formulaic directly and show that they *do*
create the sentinel there, so the sentinel checks are not vacuous. Legitimate formulas are
compared with formulaic's own design matrices (an independent reference); CSV errors are
checked not to contain a secret marker written into the target file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesmle.errors import DataError, SpecError
from bayesmle.formula_check import (
    MAX_FORMULA_LENGTH,
    MAX_TERMS,
    check_formula,
    evaluation_context,
    model_matrix,
)
from bayesmle.specfile import load, load_many

ROOT = Path(__file__).resolve().parents[1]
SECRET = "SECRET-MARKER-7f3a9c"

FRAME = pd.DataFrame({
    "y": [1.0, 2.5, 2.0, 4.5, 5.0, 7.5, 6.0, 9.0],
    "x1": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    "x2": [0.5, 1.5, 1.0, 2.5, 3.0, 2.0, 4.0, 3.5],
    "g": ["a", "b", "a", "c", "b", "c", "a", "b"],
    "my col": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
})
PREDICTORS = FRAME.drop(columns="y")


def attacks(s: str) -> dict[str, str]:
    """Formulas whose evaluation would create the file ``s`` (or read/probe the system)."""
    touch = f"__import__('os').system('touch {s}')"
    write = f"open('{s}', 'w')"
    return {
        "brace_import": f"y ~ x1 + {{{touch}}}",
        "I_import": f"y ~ I({touch})",
        "I_import_bare": "y ~ I(__import__('os'))",
        "open_write": f"y ~ x1 + open('{s}', 'w').write('x')",
        "brace_open": f"y ~ {{{write}}}",
        "lambda": f"y ~ {{(lambda: {write})()}}",
        "lambda_in_I": f"y ~ I((lambda: {write})())",
        "comprehension": f"y ~ {{[{write} for _ in x1]}}",
        "generator": f"y ~ I(sum({write} for _ in x1))",
        "fstring": f"y ~ I(f'{{{write}}}')",
        "exec": f'y ~ exec("{write}")',
        "eval": f'y ~ x1 + eval("{write}")',
        "getattr": f"y ~ getattr(__builtins__, 'open')('{s}', 'w')",
        "globals": "y ~ {globals()}",
        "os_system": f"y ~ os.system('touch {s}')",
        "np_dict": "y ~ np.__dict__",
        "np_save": f"y ~ np.save('{s}', x1)",
        "np_attr_chain": f"y ~ np.lib.npyio.savetxt('{s}', x1)",
        "C_class": "y ~ C(g).__class__",
        "C_subclasses": "y ~ {C(g).__class__.__base__.__subclasses__()}",
        "tuple_subclasses": "y ~ {().__class__.__base__.__subclasses__()}",
        "nested_braces": f"y ~ {{{{{touch}}}}}",
        "brace_in_string": f"y ~ C(g, Treatment('}}')) + {{{touch}}}",
        "fullwidth_open": f"y ~ ｏｐｅｎ('{s}', 'w')",
        "fullwidth_import": f"y ~ I(_＿ｉｍｐｏｒｔ＿＿('os').system('touch {s}'))",
        "backtick_dunder": f"y ~ x1 + {{`__import__`('os').system('touch {s}')}}",
        "backtick_code_name": f"y ~ `x1` + `{{{touch}}}`",
        "backtick_in_python": f"y ~ I(`x1` + {touch})",
        "subscript": "y ~ x1[0]",
        "walrus": f"y ~ {{(z := {write})}}",
        "starred": "y ~ I(*x1)",
        "double_star_kwargs": "y ~ scale(x1, **{'center': True})",
        "string_term": "y ~ x1 + 'x2'",
        "levels_code": f"y ~ C(g, levels={write})",
        "contrast_code": f"y ~ C(g, Treatment({write}))",
        "contrast_not_allowed": "y ~ C(g, contr.treatment('a'))",
        "keyword_dunder": "y ~ scale(x1, __class__=1)",
        "newline_payload": f"y ~ x1 +\n{{{touch}}}",
        "lhs_code": f"{{{write}.close()}} ~ x1",
        "pipe_multipart": f"y ~ x1 | {{{touch}}}",
        "brackets": f"y ~ [x1 ~ {{{touch}}}]",
        "method_on_transform": "y ~ np.log(x1).__class__",
        "conditional": f"y ~ {{x1 if {write} else x2}}",
        "comparison": "y ~ I(x1 > 2)",
        "power_bomb": "y ~ I(x1 * 9 ** 9 ** 9)",
        "terms_bomb": "y ~ (x1 + x2 + g + `my col`)**9",
        "poly_bomb": "y ~ poly(x1, degree=100000)",
        "bidi_override": "y ~ x1 \u202e+ x2",
        "null_byte": "y ~ x1\x00",
        "unclosed_brace": f"y ~ x1 + {{{touch}",
        "lag_not_allowed": "y ~ lag(x1)",
        "Q_not_allowed": "y ~ Q('x1')",
    }


ATTACK_NAMES = sorted(attacks("/s"))


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a formula payload was executed"


def spec_text(formula: str, csv: str = "f.csv", extra: str = "") -> str:
    return (f'{extra}[model]\nbuilder = "linear_regression"\nformula = '
            f'{json.dumps(formula, ensure_ascii=False)}\n'
            f'[data]\nsource = "csv"\npath = {json.dumps(csv)}\n')


def write_spec(folder: Path, formula: str, name: str = "spec.toml", **kwargs) -> Path:
    FRAME.to_csv(folder / "f.csv", index=False)
    path = folder / name
    path.write_text(spec_text(formula, **kwargs), encoding="utf-8")
    return path


# -- formulas: attacks --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_formulas_are_spec_errors_and_run_nothing(name, sentinel):
    formula = attacks(str(sentinel))[name]
    with pytest.raises(SpecError) as info:
        check_formula(formula)
    assert str(info.value).startswith("`formula` = "), info.value
    with pytest.raises(SpecError):
        check_formula(formula, columns=FRAME.columns)
    with pytest.raises(SpecError):
        model_matrix(formula, FRAME)
    assert not sentinel.exists()


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_formulas_in_a_spec_file_are_rejected_by_load(name, tmp_path, sentinel):
    formula = attacks(str(sentinel))[name]
    path = write_spec(tmp_path, formula)
    with pytest.raises(SpecError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: `model.formula`"), message
    assert "Traceback" not in message


@pytest.mark.parametrize(("name", "fragment"), [
    ("brace_import", "`__import__` is a reserved (dunder) name"),
    ("open_write", "the term `.write('x')` is not a valid expression"),
    ("exec", "`exec(...)` is not an allowed transform"),
    ("os_system", "`os.system` is attribute access"),
    ("lambda", "a lambda"),
    ("comprehension", "a comprehension"),
    ("fstring", "an f-string"),
    ("subscript", "indexing"),
    ("fullwidth_open", "`open(...)` is not an allowed transform"),
    ("string_term", "strings are allowed only inside a contrast"),
    ("terms_bomb", f"more than {MAX_TERMS} terms"),
    ("bidi_override", "U+202E"),
])
def test_attack_messages_name_the_term_and_what_is_allowed(name, fragment, sentinel):
    with pytest.raises(SpecError) as info:
        check_formula(attacks(str(sentinel))[name], key="model.formula")
    message = str(info.value)
    assert message.startswith("`model.formula` = "), message
    assert fragment in message, message
    if "the term" in message and "terms" not in fragment:
        assert "Allowed in a formula:" in message and "C(column" in message


def test_positive_control_formulaic_alone_runs_the_payloads(tmp_path):
    """Without the check, formulaic executes these payloads: the sentinel is a real witness."""
    import formulaic
    from formulaic.parser import DefaultFormulaParser

    touch = "__import__('pathlib').Path('{}').touch()"
    evaluated = tmp_path / "evaluated"
    formulaic.model_matrix(f"x1 + {{{touch.format(evaluated)} or x1}}", PREDICTORS)
    assert evaluated.exists()
    # Merely *parsing* a two-sided formula evaluates part of its left side.
    parsed = tmp_path / "parsed"
    DefaultFormulaParser().get_terms(f"{{{touch.format(parsed)}(1)}} ~ x1")
    assert parsed.exists()


def test_left_side_payload_is_refused_before_formulaic_parses(sentinel):
    payload = f"{{__import__('pathlib').Path('{sentinel}').touch()(1)}} ~ x1"
    with pytest.raises(SpecError, match="the left of `~` must be one column name"):
        check_formula(payload)


@pytest.mark.parametrize("payload", [
    "{{__import__('os').system('touch {s}')}}",
    "{{open('{s}', 'w')}}",
    "{{exec(\"open('{s}', 'w')\")}}",
    "np.save('{s}', x1)",
])
def test_evaluation_context_alone_refuses_builtins(payload, sentinel):
    """Second line of defence: formulaic with the restricted namespace, no check."""
    import formulaic

    with pytest.raises(formulaic.errors.FormulaicError):
        formulaic.model_matrix("x1 + " + payload.format(s=sentinel), PREDICTORS,
                               context=evaluation_context())


def test_cli_validate_exits_2_without_traceback(tmp_path, sentinel):
    payloads = attacks(str(sentinel))
    paths = [write_spec(tmp_path, payloads[name], f"{name}.toml")
             for name in ("brace_import", "lhs_code", "fullwidth_open")]
    proc = subprocess.run([sys.executable, "-m", "bayesmle.cli", "validate", *map(str, paths)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for path in paths:
        assert f"error: {path}: `model.formula`" in proc.stderr, proc.stderr
    assert not sentinel.exists()


# -- formulas: what is allowed still works, unchanged -------------------------------------------
LEGIT = [
    "x1 + np.log(x2) + C(g)",
    ".",
    "0 + x1",
    "x1 * x2",
    "I(x1**2) + scale(x2)",
    "C(g, Treatment('b'))",
    "C(g, Treatment(reference='c')) + x1",
    "C(g, Sum)",
    "C(g, levels=['c', 'b', 'a'])",
    "`my col` + x1",
    "x1 + {x1 + x2} + I(-x2 / 2)",
    "x1 - 1 + log1p(x2) + sqrt(x1) + np.exp(x2) + abs(x1)",
    "poly(x1, 2) + center(x2)",
    "poly(x1, degree=2, raw=True)",
    "bs(x1, df=4)",
    "(x1 + x2 + g)**2",
    "x1:g + x2 %in% g",
    "x1 / g",
]


@pytest.mark.parametrize("rhs", LEGIT)
def test_legit_formulas_give_formulaic_s_own_design(rhs):
    import formulaic

    check_formula(f"y ~ {rhs}")
    check_formula(rhs, columns=PREDICTORS.columns)
    namespace = {"np": np, "log1p": np.log1p, "sqrt": np.sqrt}  # not formulaic's defaults
    expected = pd.DataFrame(formulaic.model_matrix(rhs, PREDICTORS, na_action="ignore",
                                                   context=namespace))
    got = pd.DataFrame(model_matrix(rhs, PREDICTORS))
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("rhs", ["x1 + np.log(x2) + C(g)", ".", "0 + x1", "x1*x2",
                                 "I(x1**2) + scale(x2)", "C(g, Treatment('b'))",
                                 "`my col` + x1"])
def test_legit_formulas_through_a_spec_file(rhs, tmp_path):
    import formulaic

    spec = load(write_spec(tmp_path, f"y ~ {rhs}"))
    expected = pd.DataFrame(formulaic.model_matrix(rhs, pd.read_csv(tmp_path / "f.csv").drop(
        columns="y"), na_action="ignore"))
    X = spec.data_kwargs()["X"]
    assert list(X.columns) == [c for c in expected.columns if c != "Intercept"]
    np.testing.assert_array_equal(X.to_numpy(), expected.drop(columns="Intercept",
                                                              errors="ignore").to_numpy())
    assert spec.options == {"intercept": "Intercept" in expected.columns}


def test_dot_expansion_never_evaluates_column_names(tmp_path, sentinel):
    """`.` looks columns up by name: a column named like code stays a name."""
    import formulaic

    code = f"{{open('{sentinel}', 'w')}}"
    frame = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "x1": [1.0, 2.0, 3.0, 5.0],
                          code: [0.5, 0.1, 0.9, 0.3]})
    frame.to_csv(tmp_path / "f.csv", index=False)
    (tmp_path / "spec.toml").write_text(spec_text("y ~ ."))
    X = load(tmp_path / "spec.toml").data_kwargs()["X"]
    expected = pd.DataFrame(formulaic.model_matrix(".", frame.drop(columns="y")))
    np.testing.assert_array_equal(X.to_numpy(), expected.drop(columns="Intercept").to_numpy())


def test_bounds_on_size(sentinel):
    with pytest.raises(SpecError, match=f"at most {MAX_FORMULA_LENGTH}"):
        check_formula("y ~ " + " + ".join(["x1"] * 1000))
    with pytest.raises(SpecError, match="nested"):
        check_formula("y ~ I(" + "(" * 30 + "x1" + ")" * 30 + " + " + "-" * 30 + "x1)")
    with pytest.raises(SpecError, match="terms"):
        check_formula("y ~ " + "*".join(f"x{i}" for i in range(16)))
    with pytest.raises(SpecError, match="exponent"):
        check_formula("y ~ I(x1 ** 1000)")
    with pytest.raises(SpecError, match="terms"):  # `.` counts the data's columns
        check_formula("y ~ .**3", columns=[f"c{i}" for i in range(30)])


def test_unknown_names_list_only_plausible_columns():
    columns = ["x1", "root:x:0:0:" + SECRET + ":/root:/bin/bash", *[f"v{i}" for i in range(30)]]
    with pytest.raises(SpecError) as info:
        check_formula("y ~ zz", columns=columns)
    message = str(info.value)
    assert "`zz` is not a column" in message and "x1, v0" in message
    assert SECRET not in message and "other columns" in message


# -- fuzz: any formula is either refused or evaluated harmlessly ---------------------------------
FUZZ_SENTINEL = Path(os.environ.get("TMPDIR", "/tmp")) / f"bayesmle-fuzz-{os.getpid()}"
_S = str(FUZZ_SENTINEL)
GOOD_ATOMS = ["x1", "x2", "g", "`my col`", "1", "0", ".", "np.log(x2)", "log1p(x1)", "C(g)",
              "C(g, Treatment('b'))", "I(x1**2)", "{x1 + x2}", "scale(x2)", "center(x1)",
              "poly(x1, 2)", "sqrt(x2)", "I(-x1 / 2)"]
BAD_ATOMS = [f"{{__import__('os').system('touch {_S}')}}", f"open('{_S}', 'w')",
             f"I(open('{_S}', 'w'))", f"{{(lambda: open('{_S}', 'w'))()}}",
             f"{{[open('{_S}', 'w') for _ in x1]}}", "np.__dict__", "C(x1).__class__",
             f"np.save('{_S}', x1)", f"exec(\"open('{_S}', 'w')\")", "{globals()}",
             f"ｏｐｅｎ('{_S}', 'w')", "{`__import__`('os')}", "x1[0]", "'x1'",
             f"C(g, levels=open('{_S}', 'w'))", "getattr(np, 'save')", "I(x1 if x1 else x2)"]
OPERATORS = [" + ", " + ", " + ", " - ", ":", "*", " / ", "**2", " %in% ", " ", ""]
JUNK = ["{", "}", "(", ")", "`", "'", '"', "[", "]", "~", "|", "%", "\n", "\\", ".", "__",
        "＿", "ｅｖａｌ", "lambda", ":=", "#"]

good, bad, junk = map(st.sampled_from, (GOOD_ATOMS, BAD_ATOMS, JUNK))
piece = st.one_of(*[good] * 8, bad, junk)  # mostly allowed pieces
formulas = st.builds(
    lambda lhs, parts, ops: lhs + "".join(o + p for o, p in zip(["", *ops], parts,
                                                                 strict=False)),
    st.sampled_from(["y ~ ", "~ ", "", "y ~ 0 + ", "{x1} ~ "]),
    st.lists(piece, min_size=1, max_size=6),
    st.lists(st.sampled_from(OPERATORS), min_size=6, max_size=6),
)


class _Hang(Exception):
    pass


def _bounded(call: Callable[[], object], seconds: int = 60) -> None:
    """Run ``call`` with an alarm as a guard against a hang (a failure, not a timing test)."""
    if not hasattr(signal, "SIGALRM"):  # pragma: no cover - Windows
        call()
        return

    def alarm(signum, frame):
        raise _Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@settings(derandomize=True, deadline=None, max_examples=200,
          suppress_health_check=[HealthCheck.too_slow])
@given(formula=formulas)
def test_fuzz_formulas_are_refused_or_harmless(formula):
    def attempt():
        try:
            check_formula(formula, columns=FRAME.columns)
        except SpecError:
            return
        rhs = formula.split("~", 1)[1] if "~" in formula else formula
        try:
            model_matrix(rhs, PREDICTORS)
        except SpecError:
            pass

    try:
        _bounded(attempt)
    finally:
        executed = FUZZ_SENTINEL.exists()
        FUZZ_SENTINEL.unlink(missing_ok=True)
    assert not executed, f"payload executed for {formula!r}"


# -- data paths ---------------------------------------------------------------------------------
def secret_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"y,x1\n{SECRET},1\n1.0,2.0\n")
    return path


def csv_spec(folder: Path, csv: str, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.toml"
    path.write_text(f'{kwargs.get("extra", "")}[model]\nbuilder = "gaussian"\ny = "y"\n'
                    f'[data]\nsource = "csv"\npath = {json.dumps(csv)}\n'
                    f'{kwargs.get("data_extra", "")}')
    return path


def test_csv_path_escaping_the_folder_is_refused(tmp_path):
    secret_file(tmp_path / "outside.csv")
    spec = csv_spec(tmp_path / "specs" / "deep", "../../outside.csv")
    with pytest.raises(SpecError) as info:
        load(spec)
    message = str(info.value)
    assert '`data.path` = "../../outside.csv"' in message
    assert "outside the allowed folder" in message
    assert str((tmp_path / "specs" / "deep").resolve()) in message
    assert SECRET not in message


@pytest.mark.parametrize("target", ["/etc/passwd", "absolute"])
def test_absolute_csv_path_is_refused(tmp_path, target):
    if target == "absolute":
        target = str(secret_file(tmp_path / "specs" / "inside.csv"))  # even inside
    spec = csv_spec(tmp_path / "specs", target)
    with pytest.raises(SpecError) as info:
        load(spec)
    message = str(info.value)
    assert "`data.path`" in message and "absolute paths are not allowed" in message
    assert SECRET not in message and "root:" not in message


def test_etc_passwd_by_dot_dots_is_refused(tmp_path):
    spec = csv_spec(tmp_path, "../" * 30 + "etc/passwd")
    with pytest.raises(SpecError, match="outside the allowed folder") as info:
        load(spec)
    assert "root:" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_pointing_outside_is_refused(tmp_path):
    secret = secret_file(tmp_path / "private" / "secret.csv")
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "data.csv").symlink_to(secret)
    with pytest.raises(SpecError) as info:
        load(csv_spec(folder, "data.csv"))
    assert "outside the allowed folder" in str(info.value) and SECRET not in str(info.value)
    (folder / "linked").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(SpecError, match="outside the allowed folder"):
        load(csv_spec(folder, "linked/secret.csv"))


def test_csv_inside_the_folder_and_under_data_root_work(tmp_path):
    data = pd.DataFrame({"y": [1.5, 2.0, 3.25, 2.5]})
    folder = tmp_path / "specs"
    (folder / "sub").mkdir(parents=True)
    data.to_csv(folder / "sub" / "d.csv", index=False)
    spec = load(csv_spec(folder, "sub/../sub/d.csv"))
    np.testing.assert_array_equal(spec.model_spec().data["y"], data["y"].to_numpy())

    shared = tmp_path / "shared"
    shared.mkdir()
    data.to_csv(shared / "d.csv", index=False)
    path = csv_spec(folder, "../shared/d.csv")
    with pytest.raises(SpecError, match="outside the allowed folder"):
        load(path)
    spec = load(path, data_root=shared)
    np.testing.assert_array_equal(spec.model_spec().data["y"], data["y"].to_numpy())
    assert [s.name for s in load_many([path], data_root=shared)] == ["spec"]
    secret_file(tmp_path / "other" / "x.csv")  # the data root opens only itself
    with pytest.raises(SpecError, match="outside the allowed folder") as info:
        load(csv_spec(folder, "../other/x.csv"), data_root=shared)
    assert str(shared.resolve()) in str(info.value)


def test_parse_errors_do_not_quote_the_file(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "bad.csv").write_text(f"y,x\n1,2\n3,4,{SECRET},5\n")
    with pytest.raises(DataError) as info:
        load(csv_spec(folder, "bad.csv"))
    message = str(info.value)
    assert "cannot read this CSV file (ParserError, line 3)" in message
    assert SECRET not in message
    (folder / "bin.csv").write_bytes(b"y\n\xff\xfe" + SECRET.encode() + b"\n")
    with pytest.raises(DataError) as info:
        load(csv_spec(folder, "bin.csv"))
    assert "UnicodeDecodeError" in str(info.value) and SECRET not in str(info.value)


def test_missing_column_errors_do_not_echo_an_odd_header(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "passwd.csv").write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n"
                                       "daemon:x:1:1:daemon:/usr/sbin:/bin/sh\n")
    with pytest.raises(SpecError) as info:
        load(csv_spec(folder, "passwd.csv"))
    message = str(info.value)
    assert "`model.y`" in message and SECRET not in message and "root:" not in message


def test_huge_files_and_non_files_are_refused_without_reading(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    with open(folder / "huge.csv", "wb") as handle:  # sparse: nothing is written
        handle.truncate(2 * 1024**3 + 1)
    with pytest.raises(DataError, match="2 GiB"):
        load(csv_spec(folder, "huge.csv"))
    if hasattr(os, "mkfifo"):  # opening a FIFO for reading would block without care
        os.mkfifo(folder / "fifo.csv")
        with pytest.raises(SpecError, match="not a regular file"):
            load(csv_spec(folder, "fifo.csv"))
    (folder / "dir.csv").mkdir()
    with pytest.raises(SpecError, match="not a regular file"):
        load(csv_spec(folder, "dir.csv"))


@pytest.mark.parametrize("sep", ["", ",,", "(a+)+$", "a", '"', "\n"])
def test_csv_separator_is_one_plain_character(tmp_path, sep):
    folder = tmp_path / "specs"
    folder.mkdir()
    pd.DataFrame({"y": [1.0, 2.0]}).to_csv(folder / "d.csv", index=False)
    with pytest.raises(SpecError, match="`data.sep`"):
        load(csv_spec(folder, "d.csv", data_extra=f"sep = {json.dumps(sep)}\n"))


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a" * 300, "index.html", "index", "INDEX", "../x", "a/b", "",
                                  ".hidden", "x.", "con", "nul.txt", "bad name", "tab\t",
                                  "newline\n", "é"])
def test_bad_names_are_spec_errors_naming_key_value_and_rule(tmp_path, name):
    pd.DataFrame({"y": [1.0, 2.0]}).to_csv(tmp_path / "d.csv", index=False)
    path = csv_spec(tmp_path, "d.csv", extra=f"name = {json.dumps(name)}\n")
    with pytest.raises(SpecError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: `name` = "), message
    assert "Valid: 1-64 characters" in message and "index.html" in message
    assert len(message) < 600 and "a" * 100 not in message  # the value is shortened


def test_good_names_and_the_default_name(tmp_path):
    pd.DataFrame({"y": [1.0, 2.0]}).to_csv(tmp_path / "d.csv", index=False)
    for name in ("coin", "a" * 64, "v1.2_final-B", "7up", "indexes"):
        path = csv_spec(tmp_path, "d.csv", extra=f"name = {json.dumps(name)}\n")
        assert load(path).name == name
    path = tmp_path / "index.toml"
    path.write_text(csv_spec(tmp_path, "d.csv").read_text())
    with pytest.raises(SpecError, match="the default `name` is the spec file's name"):
        load(path)



def test_a_design_too_large_is_refused_before_it_is_built_dense():
    # 15,000 distinct levels: a dense design would hold 15,000 x 15,001 entries (1.8 GB)
    from bayesmle.formula_check import MAX_DESIGN_ENTRIES

    n = 15_000
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "g": [f"id{i}" for i in range(n)]})
    assert n * (n + 1) > MAX_DESIGN_ENTRIES
    with pytest.raises(SpecError, match="at most 100,000,000"):
        model_matrix("x + C(g)", frame)
