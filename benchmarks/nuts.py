"""Case 5: NUTS bulk ESS per second, bayesmle's default vs the PyMC samplers.

Two models, flat priors (identical posteriors on both sides):

* logistic regression, n=2000, d=10 (independent standard-normal predictors);
* linear regression, n=1000, d=10, equicorrelated predictors (rho=0.99): the posterior of the
  slopes is strongly correlated, which a diagonal mass matrix cannot absorb.

Samplers, all with 4 chains on 2 cores, 1000 tuning + 1000 kept draws, the same seed:

* ``bayesmle.fit(spec, "nuts", random_seed=...)`` -- its default (nutpie, 4 chains, from the
  builder's start values, in its internal QR parametrisation);
* ``pymc.sample`` on the plain PyMC model (``intercept + X @ coef``) with PyMC's NUTS, with
  ``nuts_sampler="nutpie"`` and with ``nuts_sampler="numpyro"`` (if numpyro imports; JAX gets 2
  host devices so its chains run in parallel).

ESS is the minimum bulk ESS (arviz_stats) over every reported parameter (intercept, each
coefficient, sigma). "Compile included" divides by the wall time of the whole call, the first
call on that model in a fresh process; "compile excluded" by the sampling time the backend
stamps on the result (``sampling_time``: nutpie's and PyMC's sampling loop; for numpyro it still
contains the JIT compilation of the sampler, which happens inside the sampling call).

Every measured call runs in its own fresh child process (``python -m benchmarks.nuts run ...``),
one sampler after the other within a repetition, so that the load of the shared machine drifts
over all of them alike. Two cache states:

* **warm**: PyTensor's and Numba's on-disk caches as they are after a first use (a priming child
  per sampler runs both models with a few draws first); the child first runs its sampler on a
  tiny model of another shape, so that one-time process costs (Numba/JAX start-up) are not
  counted, then times the first call on the benchmark model;
* **empty**: fresh, empty PyTensor and Numba cache directories for each child (a fresh machine);
  the child imports the sampler's modules (untimed) and times the first call, every compilation
  included.
"""

from __future__ import annotations

import json
import os
import sys

# Before JAX is imported anywhere: two CPU devices, so numpyro can run chains in parallel.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import numpy as np  # noqa: E402

from benchmarks import _data  # noqa: E402
from benchmarks._harness import (  # noqa: E402
    CaseResult,
    Config,
    Target,
    profile_breakdown,
    quiet,
    run_child,
    timed,
)

NAME = "nuts"
TITLE = "5. NUTS: bulk ESS per second vs PyMC's samplers"

CHAINS, CORES = 4, 2


def _datasets(quick: bool):
    n_log, n_lin = (1000, 500) if quick else (2000, 1000)
    X, y = _data.logistic(n_log, 10, seed=20, scale=0.5)
    Xc, yc = _data.linear(n_lin, 10, seed=21, rho=0.99)
    return {
        f"logistic n={n_log}, d=10": ("logistic", X, y),
        f"linear n={n_lin}, d=10, rho=0.99": ("linear", Xc, yc),
    }


def plain_model(kind: str, X: np.ndarray, y: np.ndarray):
    """The model as a PyMC user writes it: flat priors, ``intercept + X @ coef``.

    X and y are ``pm.Data`` (as in bayesmle's model), so that neither side's compiled graph
    depends on the data values and both find the same things in the on-disk compile caches.
    """
    import pymc as pm

    with pm.Model() as model:
        x_data = pm.Data("X", X)
        y_data = pm.Data("y", y)
        a = pm.Flat("intercept")
        b = pm.Flat("coef", shape=X.shape[1])
        eta = a + x_data @ b
        if kind == "logistic":
            pm.Bernoulli("y_obs", logit_p=eta, observed=y_data)
        else:
            sigma = pm.HalfFlat("sigma")
            pm.Normal("y_obs", mu=eta, sigma=sigma, observed=y_data)
    return model


def _min_ess(dt, names) -> float:
    from arviz_stats import ess

    out = ess(dt, var_names=list(names), method="bulk")
    return float(min(np.min(out[v].values) for v in names))


def _sampling_time(dt) -> float:
    for group in ("posterior", "sample_stats"):
        try:
            t = dt[group].attrs.get("sampling_time")
        except KeyError:
            continue
        if t is not None:
            return float(t)
    return float("nan")


def _divergences(dt) -> int:
    try:
        return int(dt["sample_stats"]["diverging"].values.sum())
    except KeyError:
        return -1


LABELS = {
    "bayesmle": "bayesmle (default: nutpie, QR)",
    "pymc": "pymc.sample (PyMC NUTS)",
    "nutpie": "pymc.sample nutpie",
    "numpyro": "pymc.sample numpyro",
}


def _has_numpyro() -> bool:
    try:
        import numpyro  # noqa: F401
    except ImportError:
        return False
    return True


def _sampler(key: str, kind: str, X, y, draws: int, tune: int):
    """The call of sampler ``key`` on one model: ``seed -> DataTree``."""
    import pymc as pm

    import bayesmle as bm
    from bayesmle import models

    if key == "bayesmle":
        spec = (models.logistic_regression(X, y) if kind == "logistic"
                else models.linear_regression(X, y))
        return lambda seed: bm.fit(spec, "nuts", random_seed=seed, draws=draws,
                                   tune=tune).datatree
    plain = plain_model(kind, X, y)
    common = dict(draws=draws, tune=tune, chains=CHAINS, cores=CORES, progressbar=False,
                  compute_convergence_checks=False, quiet=True, model=plain)
    if key != "pymc":
        common["nuts_sampler"] = key
    return lambda seed: pm.sample(random_seed=seed, **common)


def _import_backend(key: str) -> None:
    """Import what sampler ``key`` uses, so that imports are never part of a timed call."""
    import pymc  # noqa: F401
    import pytensor.link.numba.dispatch  # noqa: F401

    import bayesmle  # noqa: F401
    if key in ("bayesmle", "nutpie"):
        import nutpie  # noqa: F401
    if key == "numpyro":
        import jax  # noqa: F401
        import numpyro  # noqa: F401
        import pymc.sampling.jax  # noqa: F401


def _tiny():
    return _data.logistic(60, 2, seed=3)


def child_run(key: str, kind: str, seed: int, quick: bool, warm: bool, profile: bool) -> dict:
    """One measured first call of sampler ``key`` on model ``kind`` in this fresh process."""
    _import_backend(key)
    if warm:  # one-time process costs out of the measurement (another shape, same family)
        X0, y0 = _tiny()
        with quiet():
            _sampler(key, "logistic", X0, y0, 20, 20)(0)
    draws = tune = 300 if quick else 1000
    label = next(k for k in _datasets(quick) if _datasets(quick)[k][0] == kind)
    _, X, y = _datasets(quick)[label]
    call = _sampler(key, kind, X, y, draws, tune)
    names = ["intercept", "coef"] + (["sigma"] if kind == "linear" else [])
    if profile:
        holder = {}
        rows = profile_breakdown(lambda: holder.setdefault("dt", call(seed)))
        return {"profile": rows}
    with quiet():
        wall, dt = timed(lambda: call(seed))
    return {"ess": _min_ess(dt, names), "wall": wall, "sampling": _sampling_time(dt),
            "divergences": _divergences(dt)}


def child_prime(key: str, quick: bool) -> dict:
    """Fill the on-disk caches for sampler ``key`` (both models and the tiny one)."""
    _import_backend(key)
    X0, y0 = _tiny()
    with quiet():
        _sampler(key, "logistic", X0, y0, 20, 20)(0)
        for kind, X, y in _datasets(quick).values():
            _sampler(key, kind, X, y, 20, 20)(0)
    return {}


def main(argv: list[str]) -> None:
    """``python -m benchmarks.nuts run KEY KIND SEED QUICK WARM PROFILE`` / ``prime KEY QUICK``."""
    if argv[0] == "prime":
        out = child_prime(argv[1], argv[2] == "1")
    else:
        key, kind, seed, quick, warm, profile = argv[1:]
        out = child_run(key, kind, int(seed), quick == "1", warm == "1", profile == "1")
    print(json.dumps(out))


def _median(values) -> float:
    return float(np.median(values)) if values else float("nan")


def run(cfg: Config) -> CaseResult:
    res = CaseResult(NAME, TITLE)
    draws = 300 if cfg.quick else 1000
    reps = cfg.r(3, 1)
    flag = "1" if cfg.quick else "0"
    keys = [k for k in LABELS if k != "numpyro" or _has_numpyro()]
    if "numpyro" not in keys:
        res.notes.append("numpyro skipped: it does not import here.")
    res.notes.append(
        f"{CHAINS} chains on {CORES} cores, tune={draws}, draws={draws}, flat priors. Each run "
        f"is the first call of a sampler on the model in a fresh child process; {reps} "
        "run(s) per sampler and cache state (seeds 1000, 1001, ...), samplers alternating "
        "within a repetition. Warm caches: after a priming run of every sampler and, in the "
        "child, a warm-up call on a tiny model of another shape. Empty caches: fresh PyTensor "
        "and Numba cache directories per child, imports untimed, every compilation counted. "
        "Rows: medians over runs of ESS / wall time (compile included) and ESS / sampling "
        "time (compile excluded).")
    for key in keys:  # the warm state: caches filled once, untimed
        t_prime, _ = timed(lambda k=key: run_child(NAME, "prime", k, flag))
        res.notes.append(f"Priming run of {LABELS[key]}: {t_prime:.0f} s (not counted).")
    for label, (kind, _, _) in _datasets(cfg.quick).items():
        runs: dict[tuple[str, str], list[dict]] = {}
        for cache in ("warm", "empty"):
            for rep in range(reps):
                for key in keys:
                    out = run_child(NAME, "run", key, kind, str(1000 + rep), flag,
                                    "1" if cache == "warm" else "0", "0",
                                    empty_cache=cache == "empty")
                    runs.setdefault((cache, key), []).append(out)
        rates: dict[tuple[str, str], float] = {}
        for (cache, key), outs in runs.items():
            incl = _median([o["ess"] / o["wall"] for o in outs])
            excl = _median([o["ess"] / o["sampling"] for o in outs])
            rates[(cache, "compile included", key)] = incl
            rates[(cache, "compile excluded", key)] = excl
            notes = "; ".join(f"ESS {o['ess']:.0f}, wall {o['wall']:.1f} s, sampling "
                              f"{o['sampling']:.1f} s, {o['divergences']} div." for o in outs)
            res.row(f"{label}: ESS/s, compile included, {cache} caches", LABELS[key], incl,
                    "ESS/s", len(outs), note=notes)
            res.row(f"{label}: ESS/s, compile excluded (sampling time), {cache} caches",
                    LABELS[key], excl, "ESS/s", len(outs))
        for cache, what in (("warm", "compile included"), ("empty", "compile included"),
                            ("warm", "compile excluded")):
            ours = rates[(cache, what, "bayesmle")]
            peers = {k: rates[(cache, what, k)] for k in keys if k != "bayesmle"}
            best = max(peers, key=peers.get)
            res.targets.append(Target(
                NAME, f"{label}: ESS/s ({what}, {cache} caches) / best PyMC sampler "
                f"({LABELS[best]})", ours / peers[best], 1.0, "ge", f"{ours:.3g} ESS/s",
                f"{peers[best]:.3g} ESS/s", why=_WHY[kind]))
    if cfg.profile:
        kind, _, _ = next(iter(_datasets(cfg.quick).values()))
        out = run_child(NAME, "run", "bayesmle", kind, "1000", flag, "1", "1")
        res.add_profile(f"bayesmle NUTS, {kind} model, first call in a fresh process (warm "
                        "on-disk caches)", [tuple(r) for r in out["profile"]])
    return res


_WHY = {
    "logistic": "With independent predictors the posterior is nearly isotropic: every sampler "
                "takes 5-7 leapfrog steps per draw, so compilation and the cost per draw "
                "decide. numpyro reaches more ESS per draw here (see the row notes) because its "
                "step-size adaptation ends at a smaller step (mean 0.63, acceptance 0.90 for a "
                "target of 0.8; nutpie and PyMC: 0.81-0.84, acceptance 0.80): 7 instead of 5.4 "
                "leapfrog steps per draw, whose endpoints are anti-correlated; nutpie with "
                "target_accept=0.9 gets the same ESS per draw. See benchmarks/README.md.",
    "linear": "Compare the row notes (ESS, wall and sampling time per run).",
}


if __name__ == "__main__":
    main(sys.argv[1:])
