"""Shape assertions that differentiation adds, compiled for nutpie without their error message.

``pytensor.grad`` wraps gradients in ``SpecifyShape`` nodes that restate the static shape of
the variable differentiated (the sampler's coordinate vector, whose length is fixed). PyTensor's
Numba implementation of ``SpecifyShape`` formats an f-string error message, and compiling
Numba's string formatting (``str(int)``, concatenation, ``repr``) is about a tenth of a cold
compilation of a logistic regression's NUTS kernel. The assertion cannot fail for these nodes,
so :data:`TRUST_GRADIENT_SHAPES` replaces them, in the kernel nutpie calls only, by
:class:`TrustedShape`: the same op and output type, compiled as the identity.

It is applied only to a model whose own log-density graph has no ``SpecifyShape`` and whose
data containers declare no static shape (:func:`shapes_are_derived`): every remaining
assertion was then derived by differentiation and rewriting from the coordinate vector's
length and from constants, and holds by construction. A builder that asserts a data shape
itself keeps PyTensor's checked op.
"""

from __future__ import annotations

from pytensor.graph.basic import Variable
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.graph.traversal import apply_ancestors
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.link.utils import compile_function_src
from pytensor.tensor.shape import SpecifyShape

__all__ = ["TRUST_GRADIENT_SHAPES", "TrustedShape", "shapes_are_derived"]


class TrustedShape(SpecifyShape):
    """``SpecifyShape`` whose shape holds by construction: compiled by Numba as the identity.

    Evaluated by Python (``perform``) it still checks the shape, as ``SpecifyShape`` does.
    """


@register_funcify_default_op_cache_key(TrustedShape)
def _numba_funcify_trusted_shape(op, node, **kwargs):
    names = ", ".join(f"shape_{i}" for i in range(len(node.inputs) - 1))
    src = f"def trusted_shape(x, {names}):\n    return x\n"
    return numba_basic.numba_njit(compile_function_src(src, "trusted_shape", globals()))


@node_rewriter([SpecifyShape])
def _trust_specified_shape(fgraph, node):
    if type(node.op) is not SpecifyShape:
        return None
    new = TrustedShape()(*node.inputs)
    new.name = node.outputs[0].name
    return [new]


#: The rewrite (run last) that turns the remaining ``SpecifyShape`` nodes into
#: :class:`TrustedShape`; add it to a mode only when :func:`shapes_are_derived` holds.
TRUST_GRADIENT_SHAPES = in2out(_trust_specified_shape, name="bayesmle_trust_gradient_shapes")


def shapes_are_derived(logp: Variable, data: list[Variable]) -> bool:
    """True when ``logp`` asserts no shape and no data container has a static shape.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> x = pt.vector("x")
    >>> shapes_are_derived((x**2).sum(), [x])
    True
    >>> shapes_are_derived(pt.specify_shape(x, (3,)).sum(), [x])
    False
    """
    if any(dim is not None for var in data for dim in var.type.shape):
        return False
    return not any(isinstance(node.op, SpecifyShape) for node in apply_ancestors([logp]))
