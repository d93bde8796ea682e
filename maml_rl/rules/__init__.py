"""The learning-rules lab: SGD, weight perturbation, node perturbation and a PPO-learned rule,
compared on a teacher-student task and on MNIST projected on its principal components.

Reproduces, with every number computed and the rules run to convergence, Cai & Cheng, "Meta Reinforcement
Learning on Neural Networks". Entry point: ``python -m maml_rl.rules --config configs/rules/teacher-student.yaml
--output-folder OUT``. The noise convention of the perturbation rules is documented in :mod:`.updates`.
"""

from .config import ConfigError, RulesConfig, load_config
from .data import DataError, Dataset, make_dataset, read_idx, write_idx
from .network import forward, init_weights, loss_fn
from .updates import SGD, NodePerturbation, WeightPerturbation

__all__ = [
    "ConfigError",
    "DataError",
    "Dataset",
    "NodePerturbation",
    "RulesConfig",
    "SGD",
    "WeightPerturbation",
    "forward",
    "init_weights",
    "load_config",
    "loss_fn",
    "make_dataset",
    "read_idx",
    "write_idx",
]
