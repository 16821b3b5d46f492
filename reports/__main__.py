"""``python -m reports SOURCE... --out DIR``: write the report of one or more sources."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite.errors import SuiteError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    parser.add_argument("sources", nargs="+",
                        help="run folders (with optuna.db), storage URLs or journal files (.log/.jsonl)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default: report)")
    args = parser.parse_args(argv)
    from reports import build_report

    try:
        path = build_report(args.sources, args.out)
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
