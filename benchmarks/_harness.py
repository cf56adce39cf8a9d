"""Timing, results and profiling helpers shared by the benchmark cases.

Every case returns a :class:`CaseResult`: measured rows (median of several repetitions, with
the spread), target checks (a ratio against the peer measured in the same run), agreement checks
(the two implementations computed the same thing) and free-text notes.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
LIBRARY_ROOT = PACKAGE_ROOT.parent / "bayesmle"
#: Environment variables that set the thread count of BLAS / OpenMP (set before numpy loads).
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Where ``python -m benchmarks`` keeps the user's own values of ``BLAS_ENV`` (JSON) before it
#: pins the benchmark processes to ``--blas-threads``.
USER_BLAS_ENV = "BENCH_USER_BLAS_ENV"


@dataclass
class Config:
    """What a case should do: repetitions, quick mode, profiling."""

    reps: int = 5
    quick: bool = False
    profile: bool = True
    blas_threads: int = 1

    def r(self, full: int, quick: int = 2) -> int:
        """Number of repetitions: the CLI's --reps capped per case, or the quick count."""
        return quick if self.quick else min(full, self.reps)


@dataclass
class Timing:
    """Repeated wall-clock timings of one call (seconds)."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> str:
        if len(self.times) == 1:
            return "1 run"
        return f"{min(self.times):.3g}–{max(self.times):.3g}"


@dataclass
class Row:
    """One measured quantity of one implementation."""

    case: str
    what: str
    impl: str
    value: float
    unit: str
    reps: int
    spread: str = ""
    note: str = ""


@dataclass
class Target:
    """A target of the issue: ratio of bayesmle to its peer, measured in the same run."""

    case: str
    what: str
    ratio: float
    limit: float
    # "le": hit when ratio <= limit (times, memory); "ge": hit when ratio >= limit (speed-ups).
    sense: str
    ours: str
    peer: str
    why: str = ""

    @property
    def hit(self) -> bool:
        return self.ratio <= self.limit if self.sense == "le" else self.ratio >= self.limit

    @property
    def target_text(self) -> str:
        return ("≤ " if self.sense == "le" else "≥ ") + f"{self.limit:g}×"

    @property
    def margin(self) -> str:
        """How far from the target, in words."""
        if self.hit:
            return "hit"
        if self.sense == "le":
            return f"{self.ratio / self.limit:.2g}× over the limit"
        return f"reaches {self.ratio / self.limit:.0%} of the target"


@dataclass
class Check:
    """An agreement check between bayesmle and its peer."""

    case: str
    what: str
    value: float
    tolerance: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.value <= self.tolerance)


@dataclass
class CaseResult:
    """Everything one case measured."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: (what was profiled, [(function, seconds, share), ...]) per profiled call
    profiles: list = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def row(self, what, impl, timing_or_value, unit="s", reps=None, note="") -> Row:
        if isinstance(timing_or_value, Timing):
            r = Row(self.name, what, impl, timing_or_value.median, unit,
                    len(timing_or_value.times), timing_or_value.spread, note)
        else:
            r = Row(self.name, what, impl, float(timing_or_value), unit, reps or 1, "", note)
        self.rows.append(r)
        return r

    def add_profile(self, what: str, rows: list[tuple[str, float, float]]) -> None:
        if rows:
            self.profiles.append((what, rows))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> CaseResult:
        out = cls(d["name"], d["title"])
        out.rows = [Row(**r) for r in d["rows"]]
        out.targets = [Target(**t) for t in d["targets"]]
        out.checks = [Check(**c) for c in d["checks"]]
        out.notes = list(d["notes"])
        out.profiles = [(what, [tuple(r) for r in rows]) for what, rows in d["profiles"]]
        out.seconds = d["seconds"]
        out.error = d["error"]
        return out


# -- timing --------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall-clock seconds of one call (after a garbage collection) and its result."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(fn: Callable[[], object], reps: int, warmup: int = 1) -> tuple[Timing, object]:
    """``warmup`` untimed calls, then ``reps`` timed ones; returns the timings and last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(reps):
        dt, out = timed(fn)
        times.append(dt)
    return Timing(times), out


def measure_pair(a: Callable[[], object], b: Callable[[], object], reps: int, warmup: int = 1
                 ) -> tuple[Timing, object, Timing, object]:
    """Time two calls alternately (a, b, a, b, ...) so that load drifts hit both alike."""
    out_a = out_b = None
    for _ in range(warmup):
        out_a, out_b = a(), b()
    ta, tb = [], []
    for _ in range(reps):
        dt, out_a = timed(a)
        ta.append(dt)
        dt, out_b = timed(b)
        tb.append(dt)
    return Timing(ta), out_a, Timing(tb), out_b


@contextmanager
def quiet():
    """Silence the warnings that PyMC, PyTensor and friends print during benchmarks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- profiling -----------------------------------------------------------------------------------
def _is_library(path: str | None) -> bool:
    return bool(path) and Path(path).resolve().is_relative_to(LIBRARY_ROOT)


def profile_breakdown(fn: Callable[[], object], top: int = 8) -> list[tuple[str, float, float]]:
    """Where one call of ``fn`` spends its time, by innermost bayesmle function.

    Samples the call with pyinstrument and attributes each sample to the innermost frame that
    belongs to ``bayesmle/`` (so ``separation.py:_solve`` collects the time spent inside SciPy's
    ``linprog`` that it called). Returns ``(label, seconds, share)`` rows, largest first, plus a
    row for time outside bayesmle. Empty if pyinstrument is not installed.
    """
    try:
        from pyinstrument import Profiler
    except ImportError:
        return []
    profiler = Profiler(interval=0.001)
    with quiet():
        profiler.start()
        fn()
        profiler.stop()
    root = profiler.last_session.root_frame()
    if root is None:
        return []
    totals: dict[str, float] = {}

    def walk(frame, owner: str | None) -> None:
        label = owner
        if _is_library(frame.file_path):
            rel = Path(frame.file_path).resolve().relative_to(LIBRARY_ROOT.parent)
            label = f"{rel}:{frame.function}"
        child_time = 0.0
        for child in frame.children:
            walk(child, label)
            child_time += child.time
        self_time = max(frame.time - child_time, 0.0)
        key = label or "(outside bayesmle)"
        totals[key] = totals.get(key, 0.0) + self_time

    walk(root, None)
    total = root.time or 1.0
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    out = [(k, v, v / total) for k, v in rows if v / total >= 0.01][:top]
    return out


def env_threads() -> str:
    """The BLAS threading seen by numpy (threadpoolctl), for the machine section."""
    try:
        import numpy  # noqa: F401  (threadpoolctl reports only the libraries already loaded)
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    info = threadpool_info()
    return ", ".join(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
        f"{i.get('architecture')})"
        for i in info
    ) or "none"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def blas_settings() -> list[tuple[str, dict, tuple[str, ...]]]:
    """``(label, env, unset)`` for a child with the default BLAS threading and one with one thread.

    The default is the environment the user started ``python -m benchmarks`` with (BLAS and
    OpenMP pick their own thread counts unless the user set them), whatever ``--blas-threads``
    pinned for the other cases.
    """
    saved = json.loads(os.environ.get(USER_BLAS_ENV, "null"))
    current = {var: os.environ.get(var) for var in BLAS_ENV}
    user = saved if saved is not None else current
    default_env = {k: v for k, v in user.items() if v is not None}
    default_unset = tuple(k for k, v in user.items() if v is None)
    label = ("default BLAS threads" if not default_env else
             "user's BLAS threads (" + ", ".join(f"{k}={v}" for k, v in default_env.items()) + ")")
    return [(label, default_env, default_unset),
            ("1 BLAS thread", {var: "1" for var in BLAS_ENV}, ())]


def run_child(module: str, *args: str, empty_cache: bool = False, env: dict | None = None,
              timeout: float = 900.0, unset: tuple[str, ...] = ()) -> dict:
    """Run ``python -m benchmarks.<module> *args`` in a fresh process; parse its JSON stdout.

    With ``empty_cache`` the child gets empty PyTensor and Numba on-disk compile caches (a
    fresh machine); otherwise it shares this machine's caches (normal use after a first run).
    ``env`` adds or overrides environment variables (a value ``None`` removes one),
    ``unset`` removes some.
    """
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        child_env = dict(os.environ)
        for var in unset:
            child_env.pop(var, None)
        for key, value in (env or {}).items():  # None removes the variable
            if value is None:
                child_env.pop(key, None)
            else:
                child_env[key] = value
        if empty_cache:
            flags = child_env.get("PYTENSOR_FLAGS", "")
            child_env["PYTENSOR_FLAGS"] = ",".join(
                f for f in (flags, f"base_compiledir={tmp}/pytensor") if f)
            child_env["NUMBA_CACHE_DIR"] = f"{tmp}/numba"
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{module}", *args], env=child_env,
            capture_output=True, text=True, cwd=os.fspath(PACKAGE_ROOT.parent), timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"child benchmarks.{module} {' '.join(args)} failed:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def top_shares(rows: list[tuple[str, float, float]], k: int = 3) -> str:
    """'`fn` 85%, `fn2` 7%' for the k largest entries of a profile breakdown."""
    if not rows:
        return "(not profiled)"
    return ", ".join(f"`{label.split('/')[-1]}` {share:.0%}" for label, _, share in rows[:k])
