"""Helpers shared by the simulation studies: prior arguments, quiet fits, figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bayesmle.errors import SpecError
from bayesmle.priors import Prior

__all__ = ["build", "check_builder", "fit_quietly", "new_figure", "prior_kwargs"]


def check_builder(builder: Any) -> Callable:
    """A builder must be callable (a function of data and priors returning a ModelSpec)."""
    if not callable(builder):
        raise SpecError(f"`builder` must be a model builder such as bayesmle.models."
                        f"linear_regression, got {builder!r}.")
    return builder


def build(builder: Callable, data: Any, priors: Mapping[str, Any] | None = None):
    """``builder(**data, **priors)``, with a SpecError when the arguments do not fit it.

    ``data`` comes from the user (a dict of builder arguments, or what ``simulate`` returned);
    a key the builder does not take, or a missing required argument, is named in the error
    instead of surfacing as a bare TypeError from inside a replicate.
    """
    import inspect

    name = getattr(builder, "__name__", repr(builder))
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise SpecError(f"The data for builder {name!r} must be a dict of its argument names "
                        f"to values (e.g. {{'X': X, 'y': y}}), got {type(data).__name__}.")
    kwargs = {**data, **(priors or {})}
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise SpecError(
                f"builder {name!r} cannot take the arguments {sorted(kwargs)}: {exc}. Its "
                f"arguments: {list(signature.parameters)}.") from None
    return builder(**kwargs)


def prior_kwargs(prior: Prior | Mapping[str, Prior] | None, name: str = "prior"
                 ) -> dict[str, Prior]:
    """Turn ``prior`` into builder keyword arguments.

    A :class:`~bayesmle.priors.Prior` is passed as ``prior=`` (the coefficient prior of the
    regression builders); a mapping is passed as is (e.g. ``{"mu_prior": Normal(1.0)}`` for
    :func:`~bayesmle.models.gaussian`).
    """
    if prior is None:
        return {}
    if isinstance(prior, Prior):
        return {"prior": prior}
    if isinstance(prior, Mapping) and all(isinstance(v, Prior) for v in prior.values()):
        return dict(prior)
    raise SpecError(f"`{name}` must be a Prior (given to the builder as prior=) or a dict of "
                    f"builder prior keywords to Priors (e.g. {{'mu_prior': Normal(1.0)}}), got "
                    f"{prior!r}.")


def fit_quietly(spec, method: str, **options):
    """``fit`` that returns ``(result, converged)`` instead of warning: diagnostics are data.

    Studies fit thousands of simulated data sets; a replicate that does not converge (or whose
    NUTS diagnostics fail) is counted and reported in the study's table rather than emitted as
    a warning each time. Nothing process-global (warning filters) is touched.
    """
    from bayesmle.inference.driver import run

    result = run(spec, method, **options)
    return result, bool(getattr(result, "converged", True))


def new_figure(ncols: int = 1, width: float = 5.0, height: float = 4.0):
    """A matplotlib Figure not attached to pyplot (no global state), with its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes
