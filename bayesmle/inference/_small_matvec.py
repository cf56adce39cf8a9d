"""Matrix-vector products of small problems, compiled for nutpie as plain loops.

PyTensor writes ``X @ beta`` and the gradient's ``X.T @ r`` as ``Dot`` of a matrix and an
``(n, 1)`` column, which Numba compiles through its general BLAS ``gemm`` binding: one
compilation of about a second per memory layout, a good part of a cold NUTS kernel for a
small regression. :data:`SMALL_MATVEC` replaces those products by :class:`SmallMatVec`, two
nested loops that compile in a fraction of that. It is used only for data below the engine's
Numba threshold (``python_linker.NUMBA_MIN_VALUES`` values), where a product costs
microseconds either way; larger data keep BLAS.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.tensor.math import Dot

__all__ = ["SMALL_MATVEC", "SmallMatVec"]


class SmallMatVec(Op):
    """``A @ v`` for a float64 matrix ``A`` and vector ``v`` (a vector out)."""

    __props__ = ()

    def make_node(self, a, v):
        a, v = pt.as_tensor_variable(a), pt.as_tensor_variable(v)
        out = pt.tensor(dtype="float64", shape=(a.type.shape[0],))
        return Apply(self, [a, v], [out])

    def perform(self, node, inputs, outputs):
        a, v = inputs
        outputs[0][0] = np.asarray(a @ v, dtype=np.float64)


@register_funcify_default_op_cache_key(SmallMatVec)
def _numba_funcify_small_matvec(op, node, **kwargs):
    @numba_basic.numba_njit
    def small_matvec(a, v):
        m, k = a.shape
        out = np.zeros(m)
        if a.strides[0] >= a.strides[1]:  # rows contiguous: one dot product per row
            for i in range(m):
                acc = 0.0
                for j in range(k):
                    acc += a[i, j] * v[j]
                out[i] = acc
        else:  # columns contiguous: accumulate column by column
            for j in range(k):
                vj = v[j]
                for i in range(m):
                    out[i] += a[i, j] * vj
        return out

    return small_matvec


@node_rewriter([Dot])
def _small_matvec(fgraph, node):
    a, b = node.inputs
    if not (a.type.ndim == b.type.ndim == 2 and b.type.shape[1] == 1
            and a.type.dtype == b.type.dtype == "float64"):
        return None
    out = SmallMatVec()(a, b[:, 0])
    return [pt.expand_dims(out, 1)]


#: The rewrite (run last) that turns matrix-column ``Dot`` products into :class:`SmallMatVec`.
SMALL_MATVEC = in2out(_small_matvec, name="bayesmle_small_matvec")
