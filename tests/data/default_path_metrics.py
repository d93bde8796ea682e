"""Metrics of tiny meta-training runs on the default path (observation-only inputs, PyTorch's recurrent init).

``python tests/data/default_path_metrics.py > tests/data/default_path_metrics.json`` writes the committed file.
It was first written at commit 945b211, before policy inputs and reservoir settings existed, and the code with
them gave the same numbers (commit 91326e9). It was written again when each task got its own random stream
(a deliberate change of every run's numbers). The test of the same name checks that the default path still
gives these numbers: a change that alters them must say why and regenerate the file.
"""

from __future__ import annotations

import json

TIMING_KEYS = ("seconds", "env_steps_per_s", "time_sample_before", "time_adapt", "time_sample_after", "time_trpo")

CASES = {
    "nav-mlp": {"env-name": "2DNavigation-v0", "policy": {"type": "mlp", "hidden-sizes": [8, 8]}},
    "nav-rnn": {"env-name": "2DNavigation-v0", "policy": {"type": "rnn", "hidden-sizes": [8, 8]}},
    "nav-lstm": {"env-name": "2DNavigation-v0", "policy": {"type": "rnn", "cell": "lstm", "hidden-sizes": [8]}},
    "cheetah-rnn": {"env-name": "HalfCheetahDir-v0", "policy": {"type": "rnn", "hidden-sizes": [8]}},
}
COMMON = {"meta-batch-size": 3, "fast-batch-size": 2, "horizon": 12, "seed": 3}


def run(case: str, batches: int = 2) -> list[dict]:
    import torch

    from maml_rl.config import from_dict
    from maml_rl.runs.trainer import Experiment

    torch.set_num_threads(1)
    experiment = Experiment.build(from_dict({**COMMON, **CASES[case]}))
    experiment.learner_threads = 1
    rows = []
    for batch in range(batches):
        row = experiment.meta_batch(batch)
        rows.append({k: v for k, v in row.items() if k not in TIMING_KEYS})
    experiment.sampler.close()
    return rows


if __name__ == "__main__":
    print(json.dumps({case: run(case) for case in CASES}, indent=1))
