"""The task interface shared by every task environment: sample tasks, switch to one.

A task is a small dict of floats (``{"direction": -1.0}``, ``{"velocity": 1.3}``, ``{"goal": [x, y]}``);
:meth:`TaskMixin.task_array` gives it as a flat float array for storage and batching.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from maml_rl.envs import rewards
from maml_rl.envs.camera import with_tracking_camera

Task = dict[str, Any]


def checked_actions(actions: Any, low: np.ndarray, high: np.ndarray, who: str) -> np.ndarray:
    """Actions as float64, clipped into [low, high] (as gymnasium's ClipAction does); NaN or inf is an error."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.shape[-1:] != np.shape(low):
        raise ValueError(f"{who}: actions must have {np.shape(low)[0]} values each, got shape {actions.shape}")
    if not np.all(np.isfinite(actions)):
        raise ValueError(
            f"{who}: actions must be finite, got NaN or inf in {actions if actions.ndim == 1 else 'the batch'}"
        )
    return np.clip(actions, low, high)


class TaskMixin:
    """Adds ``sample_tasks(n)`` and ``reset_task(task)`` to a ``gymnasium.Env``.

    Subclasses set :attr:`task_shapes` (each task key and the shape of its value) and implement
    :meth:`_sample_task_values` and :meth:`_check_task_value`.
    """

    task_shapes: Mapping[str, tuple[int, ...]] = {}
    np_random: np.random.Generator

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator | None = None) -> list[Task]:
        """Draws ``num_tasks`` tasks, from ``rng`` or else from the environment's own generator."""
        if not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive integer, got {num_tasks!r}")
        values = self._sample_task_values(int(num_tasks), rng if rng is not None else self.np_random)
        return [{key: _plain(values[key][i]) for key in self.task_shapes} for i in range(num_tasks)]

    def reset_task(self, task: Mapping[str, Any]) -> None:
        """Switches the environment to ``task``; rejects malformed tasks with the allowed keys."""
        if not isinstance(task, Mapping) or set(task) != set(self.task_shapes):
            raise ValueError(
                f"{type(self).__name__}.reset_task expects a dict with keys {sorted(self.task_shapes)}, got {task!r}"
            )
        clean: Task = {}
        for key, shape in self.task_shapes.items():
            value = np.asarray(task[key], dtype=np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(
                    f"{type(self).__name__}: task[{key!r}] must be a finite value of shape {shape}, got {task[key]!r}"
                )
            self._check_task_value(key, value)
            clean[key] = _plain(value)
        self._task = clean
        self._on_task(clean)

    def checked_action(self, action: Any) -> np.ndarray:
        """The action clipped into the action space; rejects NaN, inf and wrong shapes with a clear error."""
        space = self.action_space  # type: ignore[attr-defined]
        return checked_actions(action, space.low, space.high, type(self).__name__)

    @property
    def task(self) -> Task:
        """The current task."""
        return dict(self._task)

    @classmethod
    def task_array(cls, tasks: list[Mapping[str, Any]]) -> np.ndarray:
        """Tasks as a ``(num_tasks, task_dim)`` float array, keys in :attr:`task_shapes` order."""
        rows = [np.concatenate([np.ravel(np.asarray(t[k], dtype=np.float64)) for k in cls.task_shapes]) for t in tasks]
        return np.stack(rows) if rows else np.zeros((0, sum(int(np.prod(s)) for s in cls.task_shapes.values())))

    # --- for subclasses -------------------------------------------------------------------------
    def _sample_task_values(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _check_task_value(self, key: str, value: np.ndarray) -> None:
        """Raises ``ValueError`` if ``value`` is out of the family's range (default: any value)."""

    def _on_task(self, task: Task) -> None:
        """Hook: cache what ``step`` needs from the new task."""


def _plain(value: Any) -> Any:
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array.tolist()


class DirectionTasks(TaskMixin):
    """Tasks ``{"direction": ±1}``, each sign with probability ½; forward term = direction × velocity."""

    task_shapes = {"direction": ()}
    forward_term = staticmethod(rewards.direction_forward)

    def _default_task(self) -> Task:
        return {"direction": 1.0}

    def _sample_task_values(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"direction": 2.0 * rng.binomial(1, 0.5, size=n) - 1.0}

    def _check_task_value(self, key: str, value: np.ndarray) -> None:
        if float(value) not in (-1.0, 1.0):
            raise ValueError(f"{type(self).__name__}: direction must be -1 or +1, got {float(value)}")

    def _forward(self, x_velocity: float) -> float:
        return float(self.forward_term(x_velocity, self._task["direction"]))


class VelocityTasks(TaskMixin):
    """Tasks ``{"velocity": goal}``, goal ~ U[:attr:`velocity_range`]; forward term = −|velocity − goal|."""

    task_shapes = {"velocity": ()}
    velocity_range = (0.0, 2.0)
    forward_term = staticmethod(rewards.velocity_forward)

    def _default_task(self) -> Task:
        return {"velocity": float(np.mean(self.velocity_range))}

    def _sample_task_values(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"velocity": rng.uniform(*self.velocity_range, size=n)}

    def _forward(self, x_velocity: float) -> float:
        return float(self.forward_term(x_velocity, self._task["velocity"]))


class MujocoTaskEnv:
    """What the MuJoCo task families share, mixed in before gymnasium's environment class: their cost weights as
    defaults of its keyword arguments (:attr:`default_weights`), the tracking camera, an initial task, and actions
    checked (NaN rejected, clipped into the bounds) before each step, and the reward split into its terms by
    :attr:`reward_terms` (a family whose terms need more than the forward term and the action overrides
    ``_get_rew``)."""

    default_weights: Mapping[str, float] = {}
    reward_terms: Callable[[float, np.ndarray], dict[str, np.ndarray]]

    def __init__(self, task: Task | None = None, **kwargs: Any) -> None:
        for name, value in self.default_weights.items():
            kwargs.setdefault(name, value)
        super().__init__(**with_tracking_camera(kwargs))
        self.reset_task(task if task is not None else self._default_task())

    def step(self, action: np.ndarray):
        return super().step(self.checked_action(action))

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        terms = type(self).reward_terms(self._forward(x_velocity), action)
        return float(rewards.total(terms)), {f"reward_{name}": float(value) for name, value in terms.items()}
