"""The one table of policy types: a name (``policy.type`` in a config, ``--policy`` of the scripts) and how to
build it from the config's ``policy:`` section.

:func:`register_policy` adds a type; the config's check and the scripts' ``--policy`` choices read this table,
so a policy of your own needs no other edit. A ``policy.type`` written ``package.module:name`` imports that
module first (as gymnasium does for ``module:EnvId``), so a policy registered on import of your own module
also works from ``train.py`` and inside Ray workers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from maml_rl.policies.base import Policy
from maml_rl.policies.mlp import GaussianMLPPolicy
from maml_rl.policies.rnn import CELLS, GaussianRNNPolicy

PolicyBuilder = Callable[[Any, int, int], Policy]
"""``builder(spec, obs_dim, act_dim)``: the policy that a :class:`maml_rl.config.PolicyConfig` describes, its
initial weights drawn from torch's global generator (seeded by the caller)."""

_POLICIES: dict[str, PolicyBuilder] = {}


def register_policy(name: str, builder: PolicyBuilder) -> None:
    """Registers (or replaces) the policy type ``name``."""
    if not name or ":" in name:
        raise ValueError(f"a policy type name must be non-empty and without ':', got {name!r}")
    _POLICIES[name] = builder


def policy_types() -> list[str]:
    """The registered policy types, in registration order (``mlp``, ``rnn``, then any of yours)."""
    return list(_POLICIES)


def _builder(type_name: str) -> PolicyBuilder | None:
    module, sep, name = type_name.rpartition(":")
    if sep:
        importlib.import_module(module)
    return _POLICIES.get(name)


def policy_type_problem(type_name: str) -> str | None:
    """Why ``type_name`` names no registered policy (``module:name`` imports ``module`` first), or ``None``."""
    try:
        found = _builder(type_name)
    except ImportError as e:
        return f"cannot import the module of policy type {type_name!r} ({e})"
    if found is None:
        return f"must be one of {', '.join(policy_types())} (or module:name of a policy registered on import)"
    return None


def check_policy_type(name: str) -> str:
    """``name`` if it names a registered policy type, else ``ValueError`` with what is allowed (and, for the name
    of a recurrent cell, how to choose that cell)."""
    from_cells = set(CELLS) - set(_POLICIES)
    if policy_type_problem(name) is None:
        return name
    hint = f"; {name} is a cell of the rnn policy: --policy rnn --set policy.cell={name}" if name in from_cells else ""
    raise ValueError(f"invalid choice {name!r} (choose from {', '.join(policy_types())}){hint}")


def build_policy(spec: Any, obs_dim: int, act_dim: int) -> Policy:
    """The policy a :class:`maml_rl.config.PolicyConfig` describes (initial weights from torch's global RNG)."""
    builder = _builder(spec.type)
    if builder is None:
        raise ValueError(f"unknown policy type {spec.type!r}; {policy_type_problem(spec.type)}")
    return builder(spec, obs_dim, act_dim)


register_policy(
    "mlp",
    lambda spec, obs_dim, act_dim: GaussianMLPPolicy(
        obs_dim, act_dim, spec.hidden_sizes, spec.nonlinearity, spec.init_std, tuple(spec.inputs)
    ),
)
register_policy(
    "rnn",
    lambda spec, obs_dim, act_dim: GaussianRNNPolicy(
        obs_dim,
        act_dim,
        spec.hidden_sizes,
        spec.cell,
        spec.freeze_recurrent,
        spec.init_std,
        tuple(spec.inputs),
        spec.spectral_radius,
        spec.leak,
        spec.recurrent_density,
        spec.plasticity,
    ),
)
