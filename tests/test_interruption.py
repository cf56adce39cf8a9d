"""Ctrl-C during NUTS: a KeyboardInterrupt always propagates; no partial posterior is returned.

nutpie and PyMC both stop early on KeyboardInterrupt and *return* the draws they have. These
tests interrupt a fit from inside the sampler -- a signal sent by a hook at a fixed point of the
run, never after a sleep -- and check that ``bm.fit`` raises instead of returning a result with
fewer draws than requested. The command-line side (exit 130, previous report intact) is in
``test_cli.py``.
"""

import signal

import numpy as np
import pymc as pm
import pytest

import bayesmle as bm
from bayesmle import models


@pytest.fixture
def spec():
    y = np.random.default_rng(4).normal(1.0, 2.0, size=30)
    return models.gaussian(y, mu_prior=bm.Normal(10.0), sigma_prior=bm.HalfNormal(5.0))


@pytest.fixture
def sigint_raises():
    """Python's own Ctrl-C handler (xdist workers may run with another one)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings("ignore::bayesmle.SamplingWarning")  # short chains
def test_ctrl_c_during_nutpie_raises(spec, monkeypatch, sigint_raises):
    nutpie = pytest.importorskip("nutpie")
    bm.fit(spec, "nuts", draws=50, tune=50, chains=2, random_seed=0)  # compile first
    real_sample = nutpie.sample
    seen = []

    def sample(*args, **kwargs):
        sampler = real_sample(*args, **kwargs)  # chains running in the background
        real_wait = sampler.wait

        def wait(*wargs, **wkwargs):
            seen.append(kwargs.get("blocking"))
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the chains run (this thread)
            return real_wait(*wargs, **wkwargs)

        sampler.wait = wait
        return sampler

    monkeypatch.setattr(nutpie, "sample", sample)
    with pytest.raises(KeyboardInterrupt):
        bm.fit(spec, "nuts", draws=300, tune=50, chains=2, random_seed=0)
    assert seen == [False]  # the library waits itself, so that it sees the interrupt
    monkeypatch.setattr(nutpie, "sample", real_sample)
    post = bm.fit(spec, "nuts", draws=300, tune=50, chains=2, random_seed=0)
    assert post.datatree["posterior"].sizes["draw"] == 300  # nothing left behind


def test_a_short_trace_is_never_returned(spec, monkeypatch):
    # PyMC's sampler swallows a KeyboardInterrupt raised in its per-draw callback and returns
    # the draws so far: the library must notice and raise.
    real_sample = pm.sample

    def sample(*args, **kwargs):
        def stop(trace, draw):
            if draw.draw_idx == 20:
                raise KeyboardInterrupt
        return real_sample(*args, callback=stop, **kwargs)

    monkeypatch.setattr(pm, "sample", sample)
    with pytest.raises(KeyboardInterrupt, match="interrupted after"):
        bm.fit(spec, "nuts", draws=100, tune=10, chains=1, random_seed=0, sampler="pymc")
