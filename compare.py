#!/usr/bin/env python
"""Compare runs: group by config (seeds pooled), statistics between groups, learning and adaptation curves.

python compare.py runs/halfcheetah-dir-mlp-seed* runs/halfcheetah-dir-rnn-seed* --output-folder docs/results
python compare.py runs/exp/rnn-seed4 docs/results/records/exp/* --save-records docs/results/records \
    --output-folder docs/results/exp   # a new run beside committed run records, and saved as one
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maml_rl.analysis.compare import write_comparison
from maml_rl.cli import ArgumentParser
from maml_rl.exits import BAD_INPUT, OK, WRITE_FAILED, error_line
from maml_rl.training.resources import check_output_folder, remove_created


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="compare.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by train.py (and test.py)")
    parser.add_argument(
        "--output-folder",
        type=Path,
        default=Path("comparison"),
        help="where comparison.md, comparison.json and the PNG figures go (default: comparison)",
    )
    parser.add_argument(
        "--allow-unequal",
        action="store_true",
        help="pool runs of unequal lengths, or unfinished ones, into a group (refused by default: their curves "
        "are cut to the shortest run); comparison.md lists every run's length either way",
    )
    parser.add_argument(
        "--level",
        type=float,
        help="a post-adaptation return to report, per run, the first meta-batch whose training return is above "
        "(how fast each run learns; fix it before looking at the curves, e.g. 100 on HalfCheetahDir)",
    )
    parser.add_argument(
        "--fall-back",
        type=float,
        dest="drop",
        help="a fall in return: report, per run, how often the post-adaptation training return falls back more "
        "than this below its best so far, and its deepest fall (how stable each run is; fix it in advance)",
    )
    parser.add_argument(
        "--save-records",
        type=Path,
        metavar="FOLDER",
        help="also save each run as a run record in FOLDER/<its parent folder's name>/<its name>/ (config, gzipped metrics, per-task test "
        "returns: a few tens of kB, no checkpoint), which compare.py reads as it reads the run; records already "
        "there are kept, so committed records and new runs can be compared together",
    )
    args = parser.parse_args(argv)
    created = None
    try:
        created = check_output_folder(args.output_folder)
        comparison = write_comparison(
            args.runs, args.output_folder, args.allow_unequal, args.level, args.drop, args.save_records
        )
    except ValueError as e:  # ConfigError, FolderError and MetricsError are ValueErrors
        remove_created(args.output_folder, created)  # a bad run folder leaves no empty output folder behind
        print(error_line(e), file=sys.stderr)
        return BAD_INPUT
    except OSError as e:
        print(error_line(f"cannot write into {args.output_folder} ({e.strerror or e})"), file=sys.stderr)
        return WRITE_FAILED
    print(comparison.to_markdown())
    print(f"wrote {args.output_folder}/comparison.md, comparison.json and figures", file=sys.stderr)
    return OK


if __name__ == "__main__":
    sys.exit(main())
