"""Command line: fit the bundled examples four ways and print the comparison tables."""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import pandas as pd

import bayesmle as bm
from bayesmle.examples import EXAMPLES, comparison_table

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table of every bundled example (command-line entry)."""
    parser = argparse.ArgumentParser(
        prog="python -m bayesmle.cli",
        description="Fit the bundled example models by MLE, MAP, Laplace and NUTS and print "
                    "the estimates side by side.")
    parser.add_argument("names", nargs="*", choices=[[], *EXAMPLES], default=[],
                        help="examples to run (default: all)")
    parser.add_argument("--seed", type=int, default=20261122, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = args.names or list(EXAMPLES)
    pd.set_option("display.width", 160)
    pd.set_option("display.float_format", lambda v: f"{v:.4g}")
    for name in names:
        t0 = time.perf_counter()
        spec = EXAMPLES[name](np.random.default_rng(args.seed))
        try:
            table = comparison_table(spec, random_seed=args.seed)
        except bm.errors.BayesMLEError as exc:
            print(f"== {name}: failed: {exc}", file=sys.stderr)
            return 1
        print(f"\n== {name}  ({spec.description})  [{time.perf_counter() - t0:.1f}s]")
        print("priors: " + ", ".join(f"{k} ~ {p!r}" for k, p in spec.priors.items()))
        print(table.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
