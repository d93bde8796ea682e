"""Policies: the Gaussian MLP and the frozen-recurrence Gaussian RNN, over explicit parameter dicts, and the
registry that names them (:mod:`.registry`)."""

from maml_rl.policies.base import Params, Policy, gaussian_kl, gaussian_log_prob
from maml_rl.policies.inputs import INPUT_NAMES, PolicyInputs
from maml_rl.policies.mlp import GaussianMLPPolicy
from maml_rl.policies.registry import build_policy, policy_types, register_policy
from maml_rl.policies.rnn import CELLS, GaussianRNNPolicy

__all__ = [
    "CELLS",
    "GaussianMLPPolicy",
    "GaussianRNNPolicy",
    "INPUT_NAMES",
    "Params",
    "Policy",
    "PolicyInputs",
    "build_policy",
    "gaussian_kl",
    "gaussian_log_prob",
    "policy_types",
    "register_policy",
]
