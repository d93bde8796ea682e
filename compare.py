#!/usr/bin/env python
"""Compare runs: group by config (seeds pooled), statistics between groups, learning and adaptation curves.

    python compare.py runs/halfcheetah-dir-mlp-seed* runs/halfcheetah-dir-rnn-seed* --output-folder docs/results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maml_rl.compare import write_comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by train.py (and test.py)")
    parser.add_argument("--output-folder", type=Path, default=Path("comparison"),
                        help="where comparison.md, comparison.json and the PNG figures go (default: comparison)")
    args = parser.parse_args(argv)
    try:
        comparison = write_comparison(args.runs, args.output_folder)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(comparison.to_markdown())
    print(f"wrote {args.output_folder}/comparison.md, comparison.json and figures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
