"""What every ``bayesmle`` subcommand shares: exit codes, output, spec loading, diagnostics."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _dump(payload: dict[str, Any]) -> None:
    from bayesmle.report.build import json_ready

    print(json.dumps(json_ready(payload), indent=2, allow_nan=False))


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _frame_records(frame) -> dict[str, dict[str, Any]]:
    return {str(k): {str(c): v for c, v in row.items()} for k, row in frame.iterrows()}


def _print_frame(frame) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:.6g}"):
        print(frame.to_string())


class _Diagnostics:
    """The statistical diagnostics of what a command fitted, shown on stderr at the end."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, category: str, message: str, method: str = "") -> None:
        item = {"category": category, "message": message, **({"method": method} if method
                                                               else {})}
        if item not in self.items:
            self.items.append(item)

    def extend(self, diagnostics, method: str = "") -> _Diagnostics:
        for d in diagnostics:
            self.add(d.category_name, d.message, method)
        return self

    def show(self) -> None:
        for w in self.items:
            where = f" ({w['method']})" if "method" in w else ""
            _err(f"warning{where}: {w['category']}: {w['message']}")


# ---------------------------------------------------------------------------------------------
# Spec loading and settings
# ---------------------------------------------------------------------------------------------
def _methods(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _load(path: str, args: argparse.Namespace):
    from bayesmle.specfile import load

    spec = load(path, data_root=args.data_root)
    return spec.with_fit(draws=args.draws, tune=args.tune, chains=args.chains,
                         random_seed=args.seed, target_accept=args.target_accept,
                         methods=_methods(getattr(args, "methods", None)))


def _spec_paths(given: Sequence[str], models: str) -> list[str]:
    from bayesmle.specfile import find_specs

    if given:
        return list(given)
    return [str(p) for p in find_specs(models)]


def _parse_args_overrides(items: Sequence[str]) -> dict[str, Any]:
    from bayesmle.errors import SpecError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--arg {item!r}: write KEY=VALUE with a TOML value, e.g. "
                            f"--arg reps=5 or --arg 'ns=[10, 100]'.")
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            try:  # a bare word is a string
                out[key] = tomllib.loads(f"v = {json.dumps(value)}")["v"]
            except tomllib.TOMLDecodeError as exc:  # pragma: no cover - json strings parse
                raise SpecError(f"--arg {item!r}: the value is not valid TOML ({exc}).") from None
    return out


def _fit_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"draws": args.draws, "tune": args.tune, "chains": args.chains,
            "random_seed": args.seed, "target_accept": args.target_accept,
            "methods": _methods(getattr(args, "methods", None))}


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)
