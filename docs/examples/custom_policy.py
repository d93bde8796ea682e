"""A policy of your own: a linear Gaussian policy, registered as policy type ``linear``, then meta-trained on 2D
navigation for two tiny meta-batches.

    python docs/examples/custom_policy.py [RUN_FOLDER]

Without RUN_FOLDER the run goes into a temporary folder, removed at the end. Importing this module registers the
policy type, so the scripts find it too (``module:name`` imports the module first):

    PYTHONPATH=docs/examples python train.py --config configs/2d-navigation.yaml \
        --policy custom_policy:linear --num-batches 2 --output-folder /tmp/linear
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from maml_rl.process import prepare_process

prepare_process()  # before torch is imported (passive OpenMP waiting, malloc thresholds), as train.py does

from torch import Tensor, nn  # noqa: E402 - after prepare_process, on purpose

from maml_rl.config import from_dict  # noqa: E402
from maml_rl.policies import Params, Policy, register_policy  # noqa: E402
from maml_rl.policies.base import Hidden, linear  # noqa: E402
from maml_rl.training.log import read_metrics  # noqa: E402
from maml_rl.training.trainer import train  # noqa: E402


class LinearGaussianPolicy(Policy):
    """``mean = W x + b``, state-independent log-std (from :class:`Policy`).

    Parameters ``mean.weight``, ``mean.bias``, ``log_std``. Naming the head ``mean`` makes ``inner-params:
    readout`` adapt it (:meth:`Policy.readout_names`). Every parameter arrives in ``params`` with a leading task
    axis, so each task computes with its own adapted copy; :func:`linear` does the per-task matrix product.
    """

    def __init__(self, obs_dim: int, act_dim: int, init_std: float = 1.0, inputs: tuple[str, ...] = ("observation",)):
        super().__init__(obs_dim, act_dim, init_std, inputs)  # sets input_dim (observation + any extra inputs)
        self.mean = nn.Linear(self.input_dim, act_dim)
        nn.init.zeros_(self.mean.bias)

    def _mean_step(self, obs: Tensor, params: Params, hidden: Hidden) -> tuple[Tensor, Hidden]:
        # one time step: obs (tasks, batch, input_dim) -> means (tasks, batch, act_dim); no hidden state to carry
        return linear(obs, params["mean.weight"], params["mean.bias"]), hidden

    def _mean_sequence(self, obs: Tensor, params: Params) -> Tensor:
        # whole episodes: obs (tasks, T, episodes, input_dim) -> means (tasks, T, episodes, act_dim)
        tasks, steps, episodes, _ = obs.shape
        mean = linear(obs.reshape(tasks, steps * episodes, -1), params["mean.weight"], params["mean.bias"])
        return mean.reshape(tasks, steps, episodes, -1)


# The builder gets the config's policy: section (a PolicyConfig) and the task family's dimensions; the initial
# weights come from torch's global generator, which the library seeds with the run's seed before calling it.
register_policy(
    "linear",
    lambda spec, obs_dim, act_dim: LinearGaussianPolicy(obs_dim, act_dim, spec.init_std, tuple(spec.inputs)),
)


def main(argv: list[str]) -> int:
    config = from_dict(
        {
            "env-name": "2DNavigation-v0",
            "num-batches": 2,
            "meta-batch-size": 4,  # tasks per meta-batch
            "fast-batch-size": 4,  # episodes per task
            "horizon": 20,
            "policy": {"type": "linear"},
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(argv[0]) if argv else Path(scratch) / "linear"
        train(config, folder, progress=False)
        for row in read_metrics(folder):
            before, after = row["returns_before"], row["returns_after"]
            print(f"meta-batch {row['batch']}: return {before:.2f} before adaptation, {after:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
