"""``import bayesmle`` imports what a fit needs; the rest is imported on first access.

Each check runs in a fresh interpreter (``sys.executable``), since this test process has
imported everything already. Nothing here is timed: the checks are on ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

import bayesmle as bm

ROOT = str(Path(bm.__file__).resolve().parents[1])

#: Imported by ``import bayesmle`` before; not needed by a fit.
LAZY = ("matplotlib", "scipy.stats", "numba", "arviz_stats", "arviz_plots", "bayesmle.studies",
        "bayesmle.losses", "bayesmle.report", "bayesmle.cli")


def run_fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON value last, which is returned."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fresh_import() -> dict:
    return run_fresh(
        "import json, sys\n"
        "import bayesmle as bm\n"
        f"lazy = {LAZY!r}\n"
        "loaded = [m for m in lazy if m in sys.modules]\n"
        "names = {n: repr(type(getattr(bm, n))) for n in bm.__all__}\n"
        "print(json.dumps({'loaded': loaded, 'dir': dir(bm), 'all': bm.__all__,\n"
        "                  'names': names, 'after': sorted(m for m in lazy if m in sys.modules)}))"
    )


def test_import_leaves_out_what_a_fit_does_not_need(fresh_import):
    assert fresh_import["loaded"] == []


def test_every_public_name_resolves_and_is_listed(fresh_import):
    assert set(fresh_import["all"]) <= set(fresh_import["dir"])
    assert set(fresh_import["names"]) == set(fresh_import["all"])
    assert fresh_import["names"]["studies"] == repr(type(bm))  # a module
    assert fresh_import["names"]["losses"] == repr(type(bm))
    assert fresh_import["names"]["compare"] == repr(type(bm.compare))  # the function
    # resolving every public name imports the lazy subpackages (and scipy.stats, which the
    # studies use) and nothing else listed
    assert set(fresh_import["after"]) - {"scipy.stats"} == {"bayesmle.studies",
                                                            "bayesmle.losses"}


def test_priors_losses_and_draws_do_not_import_scipy_stats():
    # scipy.stats (~1 s) is imported inside the functions that use it. The package
    # ``__init__``s of bayesmle and bayesmle.inference are replaced by empty packages so that
    # these modules are imported on their own (other modules may still import scipy.stats).
    out = run_fresh(
        "import importlib.util, json, sys, types\n"
        "for name in ('bayesmle', 'bayesmle.inference'):\n"
        "    found = importlib.util.find_spec(name)\n"
        "    pkg = types.ModuleType(name)\n"
        "    pkg.__path__ = list(found.submodule_search_locations)\n"
        "    sys.modules[name] = pkg\n"
        "import bayesmle.priors, bayesmle.losses, bayesmle.inference.draws\n"
        "print(json.dumps([m for m in ('scipy.stats', 'matplotlib', 'arviz_stats')\n"
        "                  if m in sys.modules]))"
    )
    assert out == []


@pytest.mark.parametrize("first_access", [
    "import bayesmle as bm",  # attribute access through the module __getattr__
    "import bayesmle as bm\nfrom bayesmle import studies, losses",  # from-import
    # submodules imported first, among them modules named like the function they define
    "import bayesmle.studies.shrinkage, bayesmle.losses.metrics, bayesmle.compare\n"
    "import bayesmle as bm",
])
def test_lazy_names_are_the_functions(first_access):
    out = run_fresh(
        "import json\n"
        f"{first_access}\n"
        "from bayesmle.studies import map_to_mle\n"
        "fs = [bm.studies.map_to_mle, map_to_mle, bm.studies.shrinkage, bm.losses.mse,\n"
        "      bm.losses.loss_table, bm.compare]\n"
        "print(json.dumps([[callable(f), f.__module__, f.__name__] for f in fs]))"
    )
    assert out == [[True, "bayesmle.studies.map_to_mle", "map_to_mle"],
                   [True, "bayesmle.studies.map_to_mle", "map_to_mle"],
                   [True, "bayesmle.studies.shrinkage", "shrinkage"],
                   [True, "bayesmle.losses.metrics", "mse"],
                   [True, "bayesmle.losses.dictionary", "loss_table"],
                   [True, "bayesmle.compare", "compare"]]


def test_every_study_and_loss_name_resolves():
    import bayesmle.losses
    import bayesmle.studies

    for pkg in (bayesmle.studies, bayesmle.losses):
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None
    assert callable(bm.studies.shrinkage) and callable(bm.studies.coverage)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = bm.not_a_name
    assert not hasattr(bm, "__wrapped__")


def test_pickles_load_in_a_fresh_process(tmp_path):
    # Dask workers unpickle specs, results and loss records (pickled by cloudpickle, as Dask
    # does: a spec holds its builder's closures) in a process that has not imported the lazy
    # subpackages.
    rng = np.random.default_rng(3)
    y = rng.normal(1.0, 2.0, size=50)
    spec = bm.models.gaussian(y)
    result = bm.fit(spec, "mle")
    path = tmp_path / "objects.pkl"
    path.write_bytes(cloudpickle.dumps({"spec": spec, "result": result,
                                        "loss": bm.losses.LOSSES[0]}))
    out = run_fresh(
        "import json, pickle, sys\n"
        f"objs = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "r = objs['result']\n"
        "print(json.dumps({'mu': float(r.params['mu']), 'n': len(objs['spec'].data['y']),\n"
        "                  'loss': objs['loss'].name}))"
    )
    # the MLE of a Gaussian mean is the sample mean (closed form)
    assert out["mu"] == pytest.approx(y.mean(), abs=1e-8)
    assert out["n"] == 50
    assert out["loss"] == bm.losses.LOSSES[0].name
