"""Run one case in this (fresh) process: ``python -m benchmarks._child CASE CONFIG OUT``."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

from benchmarks._harness import CaseResult, Config


def main(argv: list[str]) -> int:
    name, config, out = argv
    cfg = Config(**json.loads(config))
    module = importlib.import_module(f"benchmarks.{name}")
    t0 = time.perf_counter()
    try:
        result = module.run(cfg)
    except Exception:  # report the failure in RESULTS.md instead of losing the other cases
        result = CaseResult(name, module.TITLE, error=traceback.format_exc())
    result.seconds = time.perf_counter() - t0
    with open(out, "w") as fh:
        json.dump(result.to_json(), fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
