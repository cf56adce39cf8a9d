"""What a report tells its reader besides the numbers: warnings, and the parts that failed.

A part of a report (the fit, a figure, a study, a table, a saved fit) that raises is recorded as
a :class:`PartFailure` and shown as an error box in its section; the rest of the report is
still written (a *partial* report). Errors that say the spec itself is invalid
(:data:`INPUT_ERRORS`) are not absorbed: the report is then not written at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bayesmle.errors import (
    BoundaryWarning,
    ConvergenceWarning,
    PriorError,
    SamplingWarning,
    SpecError,
)

__all__ = ["INPUT_ERRORS", "STATISTICAL", "Notes", "PartFailure", "ReportWarning"]

log = logging.getLogger("bayesmle")

#: Errors that mean the spec (or an option) is invalid: the report is rejected, not partial.
INPUT_ERRORS: tuple[type[Exception], ...] = (SpecError, PriorError)
#: Warning categories that are about the statistics (shown prominently); others are technical.
STATISTICAL = (ConvergenceWarning.__name__, SamplingWarning.__name__, BoundaryWarning.__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ReportWarning:
    """Something the reader must see: a method that failed, a bad diagnostic, a warning.

    ``severity`` is ``"error"`` (a method or a part of the report has no result),
    ``"warning"`` (a result to distrust) or ``"note"`` (technical messages from the
    libraries).

    Examples
    --------
    >>> from bayesmle.report import ReportWarning
    >>> w = ReportWarning("nuts", "warning", "R-hat = 1.02 for p", category="SamplingWarning")
    >>> w.severity, w.category
    ('warning', 'SamplingWarning')
    """

    source: str
    severity: str
    message: str
    category: str = ""


@dataclass(frozen=True)
class PartFailure:
    """A part of a report that could not be made, shown as an error box in its section.

    Attributes
    ----------
    part : str
        What failed: ``"fit"``, ``"study overdispersion"``, ``"forest plot"``...
    section : str
        The ``id`` of the report's section that shows the error box (``"studies"``...).
    error : str
        The exception's type name (``"MLENotFoundError"``).
    message : str
        The exception's message (no traceback: that is logged at DEBUG level).

    Examples
    --------
    >>> from bayesmle.report import PartFailure
    >>> f = PartFailure.of("study bias", "studies", ArithmeticError("no MLE"))
    >>> f.error, f.message, f.as_dict()["part"], f.anchor
    ('ArithmeticError', 'no MLE', 'study bias', 'failed-study-bias')
    """

    part: str
    section: str
    error: str
    message: str

    @classmethod
    def of(cls, part: str, section: str, exc: BaseException) -> PartFailure:
        """The failure of ``part`` by ``exc`` (its type name and message)."""
        return cls(part, section, type(exc).__name__, str(exc).strip() or repr(exc))

    @property
    def anchor(self) -> str:
        """The HTML ``id`` of the error box (``failed-study-bias``)."""
        return "failed-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.part).strip("-")

    def as_dict(self) -> dict[str, str]:
        """For the manifest."""
        return {"part": self.part, "section": self.section, "error": self.error,
                "message": self.message}


class Notes:
    """Collects a report's warnings, failed parts and timings while it is built."""

    def __init__(self) -> None:
        self.items: list[ReportWarning] = []
        self.failures: list[PartFailure] = []
        self.timings: dict[str, float] = {}

    def add(self, source: str, severity: str, message: str, category: str = "") -> None:
        """Record a warning (once per source and message)."""
        if not any(w.source == source and w.message == message for w in self.items):
            self.items.append(ReportWarning(source, severity, message, category))

    def recorded(self, source: str, diagnostics) -> None:
        """Record a result's diagnostics (statistical ones as warnings, the rest as notes)."""
        for d in diagnostics:
            cat = d.category_name
            self.add(source, "warning" if cat in STATISTICAL else "note", d.message, cat)

    def fail(self, part: str, section: str, exc: Exception) -> PartFailure:
        """Record that ``part`` failed with ``exc``; the traceback goes to the DEBUG log."""
        log.debug("report part %r failed", part, exc_info=(type(exc), exc, exc.__traceback__))
        return self.record(PartFailure.of(part, section, exc))

    def record(self, failure: PartFailure) -> PartFailure:
        """Record a failure already caught elsewhere (e.g. a LOO that ``compare`` absorbed)."""
        self.failures.append(failure)
        self.add(failure.part, "error", f"{failure.error}: {failure.message}", "part failed")
        return failure

    def attempt(self, part: str, section: str, func: Callable[..., T], *args: Any,
                **kwargs: Any) -> T | None:
        """``func(*args, **kwargs)``, or None after recording its failure.

        Errors of :data:`INPUT_ERRORS` (the spec is invalid) and ``KeyboardInterrupt`` /
        ``SystemExit`` propagate.
        """
        try:
            return func(*args, **kwargs)
        except INPUT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - one part must not sink the report
            self.fail(part, section, exc)
            return None

    def attempt_any(self, part: str, section: str, func: Callable[..., T], *args: Any
                    ) -> T | None:
        """Like :meth:`attempt`, but errors of :data:`INPUT_ERRORS` are recorded too.

        For parts made from results that are already valid (predictions of a fitted model),
        where a ``SpecError`` says the part does not apply, not that the spec is invalid.
        """
        try:
            return func(*args)
        except Exception as exc:  # noqa: BLE001 - one part must not sink the report
            self.fail(part, section, exc)
            return None

    def ordered(self) -> list[ReportWarning]:
        """Warnings by severity: errors, then warnings, then notes."""
        rank = {"error": 0, "warning": 1, "note": 2}
        return sorted(self.items, key=lambda w: rank[w.severity])
