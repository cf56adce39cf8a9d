"""Shared by the command-line tests: run ``bayesmle.cli.main`` in this process."""

from __future__ import annotations

from bayesmle.cli import main


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``main(args)`` in this process: the exit code, stdout and stderr (cheap variants of
    what the subprocess tests cover)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
