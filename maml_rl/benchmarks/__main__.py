"""The benchmarks' entry point: ``python -m maml_rl.benchmarks throughput|scaling|profile [flags]``.

Applies the same process settings as ``train.py`` (:func:`maml_rl.process.prepare_process`) before torch is
imported, so the numbers are those of a real run.
"""

from maml_rl.process import prepare_process

prepare_process()

import sys

from maml_rl.benchmarks import profile, scaling, throughput
from maml_rl.exits import BAD_INPUT, error_line

BENCHMARKS = {"throughput": throughput.main, "scaling": scaling.main, "profile": profile.main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        print(
            error_line(
                f"give a benchmark: python -m maml_rl.benchmarks {'|'.join(BENCHMARKS)} [flags] "
                "(--help after the name lists them)"
            ),
            file=sys.stderr,
        )
        sys.exit(BAD_INPUT)
    sys.exit(BENCHMARKS[sys.argv[1]](sys.argv[2:]))
