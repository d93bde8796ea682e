"""Policies: the Gaussian MLP and the frozen-recurrence Gaussian RNN, over explicit parameter dicts."""

from maml_rl.policies.base import Params, Policy, gaussian_kl, gaussian_log_prob
from maml_rl.policies.inputs import INPUT_NAMES, PolicyInputs
from maml_rl.policies.mlp import GaussianMLPPolicy
from maml_rl.policies.rnn import CELLS, GaussianRNNPolicy

__all__ = [
    "CELLS",
    "GaussianMLPPolicy",
    "GaussianRNNPolicy",
    "INPUT_NAMES",
    "PolicyInputs",
    "Params",
    "build_policy",
    "Policy",
    "gaussian_kl",
    "gaussian_log_prob",
]


def build_policy(spec, obs_dim: int, act_dim: int) -> Policy:
    """The policy a :class:`maml_rl.config.PolicyConfig` describes (initial weights from torch's global RNG)."""
    inputs = tuple(spec.inputs)
    if spec.type == "mlp":
        return GaussianMLPPolicy(obs_dim, act_dim, spec.hidden_sizes, spec.nonlinearity, spec.init_std, inputs)
    if spec.type == "rnn":
        return GaussianRNNPolicy(obs_dim, act_dim, spec.hidden_sizes, spec.cell, spec.freeze_recurrent, spec.init_std,
                                 inputs, spec.spectral_radius, spec.leak, spec.recurrent_density)
    raise ValueError(f"unknown policy type {spec.type!r}; choose mlp or rnn")
