"""The default path's numbers, recorded: two meta-batches of small HalfCheetahDir and 2D-navigation runs.

``python tests/data/reference_numbers.py > tests/data/reference_numbers.json`` writes the committed file: per
case the metrics of each meta-batch (timings left out) and, per entry of the policy's state dict after the
second TRPO step, the SHA-256 of its bytes and its sum; then the returns and per-step rewards of an
evaluation on fresh tasks (two adaptation steps). ``tests/test_reference_numbers.py`` checks that the
code reproduces them bit for bit on a CPU of the recorded kind (:func:`cpu_kind`), and elsewhere to the
differences that other float32 kernels make (measured by running with ``ATEN_CPU_CAPABILITY=default``:
metrics within 1e-5 relative, weights within 2e-4 of their norm).

Recorded at commit 7d32e95, before the package was split into sub-packages; a change that alters these
numbers on purpose must say why and re-record them, naming the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

TIMING_KEYS = ("seconds", "env_steps_per_s", "time_sample_before", "time_adapt", "time_sample_after", "time_trpo")

CASES: dict[str, dict[str, Any]] = {
    "halfcheetah-dir-mlp": {"env-name": "HalfCheetahDir-v0", "policy": {"type": "mlp"}},
    "halfcheetah-dir-rnn": {"env-name": "HalfCheetahDir-v0", "policy": {"type": "rnn"}},
    "halfcheetah-dir-rnn-reward": {
        "env-name": "HalfCheetahDir-v0",
        "policy": {
            "type": "rnn",
            "hidden-sizes": [32],
            "inputs": ["observation", "previous-action", "previous-reward"],
        },
    },
    "2d-navigation-mlp": {"env-name": "2DNavigation-v0", "cg-damping": 0.1, "policy": {"type": "mlp"}},
    "2d-navigation-rnn": {
        "env-name": "2DNavigation-v0",
        "cg-damping": 0.1,
        "policy": {"type": "rnn", "hidden-sizes": [16]},
    },
    "2d-navigation-lstm": {
        "env-name": "2DNavigation-v0",
        "cg-damping": 0.1,
        "policy": {"type": "rnn", "cell": "lstm", "hidden-sizes": [16]},
    },
}
"""2D navigation with cg-damping 0.1: with the default 1e-5, ten CG iterations on its nearly singular Fisher
turn float32 rounding differences (another CPU's kernels) into percent-sized differences of the step, and the
check on other CPUs would say nothing."""
COMMON = {"meta-batch-size": 4, "fast-batch-size": 3, "horizon": 25, "seed": 5}


def digest(values: Any) -> dict[str, Any]:
    """SHA-256 of a tensor's or array's bytes (bit-for-bit identity) and its float64 sum (how far off, if not)."""
    import numpy as np

    array = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    array = np.ascontiguousarray(array)
    as64 = array.astype(np.float64)
    return {
        "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
        "sum": float(np.nansum(as64)),
        "norm": float(np.sqrt(np.nansum(as64**2))),
    }


def run(case: str, batches: int = 2) -> dict[str, Any]:
    """Metrics rows and the final state-dict digests of ``batches`` meta-batches of ``case``, on one thread."""
    import torch

    from maml_rl.analysis.evaluation import evaluate
    from maml_rl.config import from_dict
    from maml_rl.experiment import Experiment

    torch.set_num_threads(1)
    experiment = Experiment.build(from_dict({**COMMON, **CASES[case]}))
    experiment.learner_threads = 1
    rows = []
    try:
        for batch in range(batches):
            row = experiment.meta_batch(batch)
            rows.append({k: v for k, v in row.items() if k not in TIMING_KEYS})
        state = {k: digest(v) for k, v in experiment.policy.state_dict().items()}
        evaluation = evaluate(experiment, num_batches=1, seed=9, adapt_steps=2, progress=False)
    finally:
        experiment.sampler.close()
    return {
        "metrics": rows,
        "state": state,
        "evaluation": {"returns": digest(evaluation.returns), "step_rewards": digest(evaluation.step_rewards)},
    }


def cpu_kind() -> str:
    """The CPU model and generation and the vector kernels torch uses on it (e.g. ``AMD EPYC (family 25,
    model 1) / AVX2``): where these are the recording's, the numbers must be the recorded bits."""
    import platform

    import torch

    info = {"model name": platform.processor() or platform.machine(), "cpu family": "?", "model": "?"}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in info and not line.startswith("\n"):
                    info[key.strip()] = value.strip()
                if not line.strip():
                    break  # the first processor is enough
    except OSError:
        pass
    return (
        f"{info['model name']} (family {info['cpu family']}, model {info['model']}) / "
        f"{torch.backends.cpu.get_cpu_capability()}"
    )


if __name__ == "__main__":
    import torch

    json.dump(
        {"torch": torch.__version__, "cpu": cpu_kind(), "cases": {case: run(case) for case in CASES}},
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")
