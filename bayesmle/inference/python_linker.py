"""PyTensor's Python/NumPy linker for small problems: functions evaluated without compiling.

Compiling a model's objective, gradient and Hessian with Numba takes 10-30 s the first time
in a fresh process (and ~1.5 s when Numba's on-disk cache is warm); on a few thousand
observations each NumPy evaluation of the same graph takes a millisecond or two. The engine
therefore evaluates *small* problems with PyTensor's VM linker without C thunks and its
``fast_compile`` rewrites (PyTensor's ``FAST_COMPILE`` mode: nothing is compiled) and
compiles with Numba only where evaluation time dominates (:func:`linker_for`).

One addition to ``FAST_COMPILE``: an elementwise scalar operation without a NumPy
implementation (softplus, log1mexp, trigamma...) is evaluated by PyTensor's Python mode one
element at a time through ``np.frompyfunc`` -- two seconds per million elements. A final
rewrite (:data:`PYTHON_MODE` only; no global PyTensor state is touched) gives those nodes a
vectorised NumPy/SciPy implementation computing the same function with the same numerical
care (``logaddexp`` for softplus, the two-branch log1mexp of Mächler 2012).
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import scipy.special as sc
from pytensor.compile.mode import FAST_COMPILE, Mode, get_mode
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.scalar import math as scalar_math
from pytensor.scalar.basic import Second
from pytensor.tensor.elemwise import Elemwise

from bayesmle.errors import SpecError

__all__ = ["COSTLY_REWRITES", "NUMBA_MIN_VALUES", "NUMBA_MODE", "PYTHON_MODE", "Linker",
           "linker_for", "rewrite_pregrad"]

Linker = Literal["python", "numba"]

#: Data sizes (total number of values in a spec's arrays) from which the engine compiles with
#: Numba. Below it a NumPy evaluation of a GLM objective, gradient and Hessian costs at most a
#: few milliseconds, so that even a study of hundreds of fits is faster than one compilation.
NUMBA_MIN_VALUES = 200_000

_LINKERS = ("auto", "python", "numba")


def linker_for(n_values: int) -> Linker:
    """The linker the engine uses for a structure bound to ``n_values`` data values.

    ``"python"`` below :data:`NUMBA_MIN_VALUES`, ``"numba"`` from there on. The environment
    variable ``BAYESMLE_LINKER`` (``auto``, ``python`` or ``numba``) overrides the choice for
    the whole process (benchmarks, tests of both paths); it is read, never set, by the
    library. The choice depends on the data's size only, never on timing, so a fit gives the
    same answer whichever thread or process runs it.

    Examples
    --------
    >>> linker_for(1_000)
    'python'
    >>> linker_for(10**7)
    'numba'
    """
    choice = os.environ.get("BAYESMLE_LINKER", "auto").strip().lower() or "auto"
    if choice not in _LINKERS:
        raise SpecError(
            f"The environment variable BAYESMLE_LINKER is {choice!r}; valid values are "
            f"{', '.join(_LINKERS)}.")
    if choice != "auto":
        return choice  # type: ignore[return-value]
    return "numba" if n_values >= NUMBA_MIN_VALUES else "python"


# -- vectorised implementations of the scalar ops PyTensor evaluates element by element ----
def softplus(x):
    """log(1 + exp(x)) without overflow: ``logaddexp(0, x)``."""
    return np.logaddexp(0.0, x)


def log1mexp(x):
    """log(1 - exp(x)) for x <= 0 (Mächler 2012).

    ``log1p(-exp(x))`` below -log 2, ``log(-expm1(x))`` above.
    """
    x = np.asarray(x, dtype=np.result_type(x, np.float64))
    with np.errstate(all="ignore"):
        return np.where(x < -np.log(2.0), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def trigamma(x):
    """The trigamma function psi'(x)."""
    return sc.polygamma(1, x)


def second(a, b):
    """``b`` broadcast to the shape of ``a`` and ``b`` (PyTensor's ``fill`` / ``second``)."""
    return np.broadcast_to(b, np.broadcast_shapes(np.shape(a), np.shape(b)))


_VECTORISED = {
    scalar_math.Softplus: (f"{__name__}.softplus", 1, 1),
    scalar_math.Log1mexp: (f"{__name__}.log1mexp", 1, 1),
    scalar_math.TriGamma: (f"{__name__}.trigamma", 1, 1),
    Second: (f"{__name__}.second", 2, 1),
}


@node_rewriter([Elemwise])
def _vectorise_scalar_loop(fgraph, node):
    """Give an elementwise node without a NumPy implementation a vectorised one."""
    op = node.op
    if op.nfunc_spec is not None or op.inplace_pattern:
        return None
    spec = _VECTORISED.get(type(op.scalar_op))
    if spec is None or spec[1] != len(node.inputs):
        return None
    new = Elemwise(op.scalar_op, nfunc_spec=spec)(*node.inputs, return_list=True)
    for old, out in zip(node.outputs, new, strict=True):
        out.name = old.name
    return new


#: Rewrites left out of the modes the engine compiles with: they look for diagonal, selection
#: (permutation) and symmetric matrices among the operands of matrix products by PyTensor's
#: assumption inference, ~15% of building a regression's functions, and the models have no
#: such products (pure optimisations: leaving them out changes no result).
COSTLY_REWRITES = ("dot_diag_to_elemwise", "selection_dot_to_indexing",
                   "useless_symmetric_transpose")

#: ``FAST_COMPILE`` (Python/NumPy evaluation, no compilation) without
#: :data:`COSTLY_REWRITES`, plus the vectorising rewrite, run last.
PYTHON_MODE: Mode = FAST_COMPILE.excluding(*COSTLY_REWRITES).register(
    (in2out(_vectorise_scalar_loop, name="bayesmle_vectorise_scalar_loop"), 100.0))

#: PyTensor's Numba mode without :data:`COSTLY_REWRITES` (the engine's ``"numba"`` linker).
NUMBA_MODE: Mode = get_mode("NUMBA").excluding(*COSTLY_REWRITES)


def rewrite_pregrad(graph):
    """PyMC's ``rewrite_pregrad`` (canonicalize, stabilize) without :data:`COSTLY_REWRITES`.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> x = pt.vector("x")
    >>> rewrite_pregrad(pt.log(pt.exp(x))).owner is None  # simplified to x itself
    True
    """
    from pymc.pytensorf import pregrad_inner_graphs
    from pytensor.graph import rewrite_graph

    return rewrite_graph(graph, include=("canonicalize", "stabilize"),
                         exclude=COSTLY_REWRITES, custom_rewrite=pregrad_inner_graphs)
