"""Case mixed_lmm: REML linear mixed model (n=10,000, 200 groups), bayesmle vs statsmodels MixedLM.

``y = 1 + 2 x + u_g0 + u_g1 x + N(0, 1)`` with correlated random intercepts and slopes
(sd 1 and 0.6, correlation 0.5) over 200 groups of 50 rows, fitted as ``y ~ x + (1 + x | g)``
by REML. bayesmle: build the ``MixedDesign`` from the arrays (level codes included) and
``fit_lmm(design, "reml")``; statsmodels: ``MixedLM(y, X, g, exog_re=X).fit(reml=True)``
(its defaults). Timed alternately in one process, medians of the repetitions.

The comparison is run twice, each in a fresh process: with one BLAS thread
(``OPENBLAS_NUM_THREADS=1`` etc., the suite's default) and with the BLAS threading left at its
default (the variables removed: OpenBLAS uses every core). Run on its own with
``python -m benchmarks.mixed_lmm`` (add ``--quick`` for n=2,000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np

from benchmarks._harness import (
    BLAS_ENV,
    PACKAGE_ROOT,
    CaseResult,
    Check,
    Config,
    Target,
    Timing,
    measure_pair,
    profile_breakdown,
    top_shares,
)

NAME = "mixed_lmm"
TITLE = "LMM REML (random intercept and slope) vs statsmodels MixedLM"


def simulate(n: int, groups: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``y`` and the group label of each row."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), n // groups)
    rng.shuffle(g)
    x = rng.standard_normal(n)
    cov = np.array([[1.0, 0.5 * 0.6], [0.5 * 0.6, 0.36]])
    u = rng.standard_normal((groups, 2)) @ np.linalg.cholesky(cov).T
    y = 1.0 + 2.0 * x + u[g, 0] + u[g, 1] * x + rng.standard_normal(n)
    return x, y, g


def fit_ours(x: np.ndarray, y: np.ndarray, g: np.ndarray):
    """From the raw arrays: design (level codes, blocks) and REML fit."""
    from bayesmle.inference.mixed.lmm import fit_lmm
    from bayesmle.models.mixed_design import MixedDesign, RandomBlock

    levels, codes = np.unique(g, return_inverse=True)
    X = np.column_stack([np.ones_like(x), x])
    block = RandomBlock("g", ("Intercept", "x"), tuple(map(str, levels)), codes, X)
    design = MixedDesign(X, ("Intercept", "x"), y, (block,))
    return fit_lmm(design, "reml")


def fit_peer(x: np.ndarray, y: np.ndarray, g: np.ndarray):
    from statsmodels.regression.mixed_linear_model import MixedLM

    X = np.column_stack([np.ones_like(x), x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MixedLM(y, X, g, exog_re=X).fit(reml=True)


def fit_ours_formula(frame):
    """What a user types: the formula on the DataFrame (spec built inside the timer), REML."""
    import bayesmle as bm

    return bm.fit(bm.models.glm("y ~ x + (1 + x | g)", frame), "reml").mixed


def fit_peer_formula(frame):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm("y ~ x", frame, groups=frame["g"], re_formula="~x").fit(reml=True)


def measure(reps: int, quick: bool, profile: bool) -> dict:
    """One comparison in this process (its BLAS threading as the environment sets it)."""
    from benchmarks._harness import env_threads

    n, groups = (2_000, 40) if quick else (10_000, 200)
    x, y, g = simulate(n, groups, seed=1)
    import pandas as pd

    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    t_ours_f, _, t_peer_f, _ = measure_pair(lambda: fit_ours_formula(frame),
                                            lambda: fit_peer_formula(frame), reps)
    t_ours, ours, t_peer, peer = measure_pair(lambda: fit_ours(x, y, g),
                                              lambda: fit_peer(x, y, g), reps)
    cov = np.asarray(peer.cov_re)
    sd_peer = np.sqrt(np.diag(cov))
    corr_peer = cov[0, 1] / (sd_peer[0] * sd_peer[1])
    params_ours = np.r_[ours.beta, ours.sd, ours.corr, ours.sigma]
    params_peer = np.r_[np.asarray(peer.fe_params), sd_peer, corr_peer, np.sqrt(peer.scale)]
    return {
        "n": n, "groups": groups, "threads": env_threads(),
        "ours": t_ours.times, "peer": t_peer.times,
        "ours_formula": t_ours_f.times, "peer_formula": t_peer_f.times,
        "ours_note": f"converged={ours.converged}, {ours.n_iter} iterations, "
                     f"{ours.n_eval} evaluations, projected gradient {ours.grad_norm:.1e}",
        "loglik_gain": float(ours.loglik - peer.llf),
        "max_rel_param_diff": float(np.max(np.abs(params_ours - params_peer)
                                           / np.abs(params_peer))),
        "profile": profile_breakdown(lambda: fit_ours(x, y, g)) if profile else [],
    }


def _child(threads: str | None, cfg: Config) -> dict:
    """``measure`` in a fresh process, with ``threads`` BLAS threads (None: library default)."""
    env = dict(os.environ)
    for var in BLAS_ENV:
        env.pop(var, None)
        if threads is not None:
            env[var] = threads
    args = [sys.executable, "-m", "benchmarks.mixed_lmm", "--child", str(cfg.r(7, 2))]
    args += ["--quick"] if cfg.quick else []
    args += ["--profile"] if cfg.profile else []
    proc = subprocess.run(args, env=env, capture_output=True, text=True,
                          cwd=os.fspath(PACKAGE_ROOT.parent), timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks.mixed_lmm child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    for threads, label in (("1", "1 BLAS thread"), (None, "default BLAS threads")):
        d = _child(threads, cfg)
        if not res.notes:
            res.notes.append(
                f"n={d['n']:,}, {d['groups']} groups, y ~ x + (1 + x | g), REML; bayesmle's time "
                "includes building the MixedDesign from the arrays; statsmodels with its default "
                "fit().")
        res.notes.append(f"{label}: {d['threads']}.")
        t_ours, t_peer = Timing(d["ours"]), Timing(d["peer"])
        res.row(f"REML fit ({label})", "bayesmle fit_lmm", t_ours, note=d["ours_note"])
        res.row(f"REML fit ({label})", "statsmodels MixedLM", t_peer)
        ratio = t_ours.median / t_peer.median
        prof = [tuple(r) for r in d["profile"]]
        res.targets.append(Target(
            NAME, f"REML fit time / statsmodels MixedLM ({label})", ratio, 2.0, "le",
            f"{t_ours.median:.3g} s", f"{t_peer.median:.3g} s",
            why=f"Profile of one bayesmle fit: {top_shares(prof)}."))
        # statsmodels' default stop is loose: bayesmle's REML log-likelihood must not be lower,
        # and the estimates agree to statsmodels' tolerance.
        res.checks.append(Check(NAME, f"statsmodels llf − bayesmle loglik ({label})",
                                -d["loglik_gain"], 1e-6))
        res.checks.append(Check(NAME, f"max relative difference of [beta, sd, corr, sigma] "
                                      f"({label})", d["max_rel_param_diff"], 1e-3))
        res.add_profile(f"one bayesmle fit ({label})", prof)
        t_of, t_pf = Timing(d["ours_formula"]), Timing(d["peer_formula"])
        res.row(f"formula + REML fit ({label})", "bm.fit(bm.models.glm(...), 'reml')", t_of)
        res.row(f"formula + REML fit ({label})", "smf.mixedlm(...).fit(reml=True)", t_pf)
        res.targets.append(Target(
            NAME, f"formula + REML fit time / statsmodels' formula API ({label})",
            t_of.median / t_pf.median, 2.0, "le", f"{t_of.median:.3g} s",
            f"{t_pf.median:.3g} s",
            why="What a user types: the spec (formula parsed and checked, design built) inside "
                "the timer, as statsmodels' formula API."))
    return res


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        print(json.dumps(measure(int(argv[1]), "--quick" in argv, "--profile" in argv)))
        return 0
    cfg = Config(quick="--quick" in argv, profile="--no-profile" not in argv)
    result = run(cfg)
    for r in result.rows:
        print(f"{r.what:<40} {r.impl:<22} median {r.value:.4g} s ({r.reps} runs, {r.spread})"
              + (f"  [{r.note}]" if r.note else ""))
    for t in result.targets:
        print(f"{t.what}: {t.ratio:.3g}x (target {t.target_text}: {t.margin})")
    for c in result.checks:
        print(f"check {c.what}: {c.value:.3g} (tolerance {c.tolerance:g}) "
              f"{'ok' if c.ok else 'FAILED'}")
    for what, rows in result.profiles:
        print(f"profile, {what}: " + ", ".join(f"{lab.split('/')[-1]} {share:.0%}"
                                               for lab, _, share in rows[:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
