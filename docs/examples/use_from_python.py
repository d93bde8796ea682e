"""The library from Python: two tiny runs (MLP and RNN on 2D navigation), each evaluated on fresh tasks, then
compared, as train.py, test.py and compare.py would do.

    python docs/examples/use_from_python.py [OUTPUT_FOLDER]

Without OUTPUT_FOLDER everything goes into a temporary folder, removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from maml_rl.process import prepare_process

prepare_process()  # first, before torch is imported (passive OpenMP waiting, malloc thresholds)

from maml_rl.analysis.compare import write_comparison  # noqa: E402 - after prepare_process, on purpose
from maml_rl.analysis.evaluation import evaluate, save_results  # noqa: E402
from maml_rl.config import load_config, with_overrides  # noqa: E402
from maml_rl.training.folder import load_run  # noqa: E402
from maml_rl.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main(output: Path) -> None:
    config = load_config(REPO / "configs" / "2d-navigation.yaml")  # validated, typed, frozen
    config = with_overrides(config, ["num-batches=2", "meta-batch-size=4", "fast-batch-size=4", "horizon=20"])

    folders = []
    for policy in ("mlp", "rnn"):
        run = config.replace(policy_type=policy)  # a validated copy
        folders.append(train(run, output / f"2d-navigation-{policy}", progress=False))  # a run folder, as train.py

    for folder in folders:  # as test.py: fresh tasks from the evaluation stream, returns after 0 and 1 steps
        experiment = load_run(folder)  # the run's config and trained policy
        try:
            evaluation = evaluate(experiment, num_batches=1, seed=experiment.config.seed, progress=False)
        finally:
            experiment.close()
        save_results(evaluation, folder)  # results.npz and results.json
        before, after = (f"{row['mean']:.2f} ± {row['ci95']:.2f}" for row in evaluation.summary())
        print(f"{folder.name}: {before} before adaptation, {after} after one step")

    comparison = write_comparison(folders, output / "comparison")  # as compare.py: tables and figures
    print(comparison.to_markdown())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch))
