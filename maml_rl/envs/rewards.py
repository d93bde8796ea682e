"""Reward formulas of the task families, written once as pure NumPy functions.

Both the gymnasium environments (one state at a time) and any batched physics path (arrays of states)
call these, so the two can never disagree about a formula. Every argument broadcasts.
"""

from __future__ import annotations

import numpy as np

REWARD_TERMS = {
    "forward": "forward reward",
    "ctrl": "control cost",
    "contact": "contact cost",
    "survive": "survive reward",
}
"""Every term a family's reward is split into (``Episodes.reward_terms``, the ``reward_<term>_*`` metrics), with
how figures name it. The ``*_reward_terms`` functions below return these keys; costs carry their sign."""

HALF_CHEETAH_CTRL_COST = 0.05
"""Weight of Σa² in both HalfCheetah tasks (pytorch-maml-rl's 0.5 × 1e-1)."""

SWIMMER_CTRL_COST = 1e-4
"""Weight of Σa² in both Swimmer tasks (Swimmer-v5's own)."""

ANT_CTRL_COST = 0.005
"""Weight of Σa² in both Ant tasks (pytorch-maml-rl's 0.5 × 1e-2)."""

ANT_CONTACT_COST = 5e-4
"""Weight of Σ clip(cfrc_ext, −1, 1)² in both Ant tasks (pytorch-maml-rl's 0.5 × 1e-3)."""

ANT_SURVIVE_REWARD = 0.05
"""Per-step bonus while the Ant's torso height is in its healthy range (pytorch-maml-rl's value)."""


def control_cost(action: np.ndarray, weight: float) -> np.ndarray:
    """``weight × Σ action²`` over the last axis, in float64 whatever the action's dtype."""
    return weight * np.sum(np.square(np.asarray(action, dtype=np.float64)), axis=-1)


def direction_forward(x_velocity: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Forward term of the *Dir tasks: velocity along the task direction (±1)."""
    return direction * x_velocity


def velocity_forward(x_velocity: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Forward term of the *Vel tasks: minus the distance to the goal velocity."""
    return -np.abs(x_velocity - goal)


def ant_velocity_forward(x_velocity: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Forward term of AntVel: ``−|velocity − goal| + 1`` (pytorch-maml-rl's offset keeps it near zero)."""
    return velocity_forward(x_velocity, goal) + 1.0


def half_cheetah_reward_terms(forward: np.ndarray, action: np.ndarray) -> dict[str, np.ndarray]:
    """HalfCheetah{Dir,Vel}'s reward terms: ``forward`` and ``ctrl`` = −0.05 Σa² (costs carry their sign)."""
    return {"forward": np.asarray(forward, dtype=np.float64), "ctrl": -control_cost(action, HALF_CHEETAH_CTRL_COST)}


def half_cheetah_reward(forward: np.ndarray, action: np.ndarray) -> np.ndarray:
    """HalfCheetah{Dir,Vel}: ``forward − 0.05 Σa²``, the sum of :func:`half_cheetah_reward_terms`."""
    return total(half_cheetah_reward_terms(forward, action))


def swimmer_reward_terms(forward: np.ndarray, action: np.ndarray) -> dict[str, np.ndarray]:
    """Swimmer{Dir,Vel}'s reward terms: ``forward`` and ``ctrl`` = −1e-4 Σa² (Swimmer-v5's weight)."""
    return {"forward": np.asarray(forward, dtype=np.float64), "ctrl": -control_cost(action, SWIMMER_CTRL_COST)}


def ant_reward_terms(
    forward: np.ndarray, action: np.ndarray, contact_forces: np.ndarray, healthy: np.ndarray
) -> dict[str, np.ndarray]:
    """Ant{Dir,Vel}'s reward terms: ``forward``, ``survive`` = 0.05·healthy, ``ctrl`` = −0.005 Σa² and
    ``contact`` = −5e-4 Σ clip(cfrc_ext, −1, 1)².

    ``contact_forces`` is ``cfrc_ext`` already clipped to [−1, 1], flattened over bodies on the last axis.
    """
    return {
        "forward": np.asarray(forward, dtype=np.float64),
        "survive": ANT_SURVIVE_REWARD * np.asarray(healthy, dtype=np.float64),
        "ctrl": -control_cost(action, ANT_CTRL_COST),
        "contact": -control_cost(contact_forces, ANT_CONTACT_COST),
    }


def ant_reward(forward: np.ndarray, action: np.ndarray, contact_forces: np.ndarray, healthy: np.ndarray) -> np.ndarray:
    """Ant{Dir,Vel}: ``forward + 0.05·healthy − 0.005 Σa² − 5e-4 Σ clip(cfrc_ext, −1, 1)²``, the sum of
    :func:`ant_reward_terms`."""
    return total(ant_reward_terms(forward, action, contact_forces, healthy))


def total(terms: dict[str, np.ndarray]) -> np.ndarray:
    """The reward: the sum of its terms, in their order (a − b is a + (−b) exactly, so costs as negative terms
    give the same floating-point reward as subtracting them)."""
    values = iter(terms.values())
    reward = next(values)
    for value in values:
        reward = reward + value
    return reward


def navigation_reward(position: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """2DNavigation: minus the Euclidean distance from the point to the goal."""
    return -np.linalg.norm(position - goal, axis=-1)


def navigation_reached(position: np.ndarray, goal: np.ndarray, tolerance: float = 0.01) -> np.ndarray:
    """2DNavigation terminates once both coordinates are within ``tolerance`` of the goal."""
    return np.all(np.abs(position - goal) < tolerance, axis=-1)
