"""Batched MuJoCo physics for the HalfCheetah, Ant and Swimmer task families: all slots stepped by one C call.

All ``tasks × episodes`` slots are simulations of one :class:`~mujoco.MjModel` held by MuJoCo's batch API
(``mujoco/mjbatch.h``, new in MuJoCo 4.0), which steps them on its own thread pool (one thread per CPU the
process may use) with the GIL released. Observations, rewards and terminations are NumPy array operations
over all slots, using the reward functions of :mod:`maml_rl.envs.rewards` and the task classes'
``forward_term``. The results equal the gymnasium environments' exactly (``tests/test_batched_physics.py``).

Why the batch API rather than ``mujoco.rollout``, which steps as fast on an otherwise idle machine:

* **Warm start.** ``rollout`` takes and returns ``mjSTATE_FULLPHYSICS`` states, which leave out
  ``qacc_warmstart``, so each call's constraint solver starts elsewhere than a persistent ``MjData``
  (gymnasium) does, and trajectories with contacts drift apart (HalfCheetah's ``qpos`` by ~1e-2 within 100
  steps). A batch keeps each simulation's ``mjSTATE_INTEGRATION`` state, warm start included.
* **Ant's contact forces.** gymnasium calls ``mj_rnePostConstraint`` after ``mj_step`` to fill ``cfrc_ext``.
  Ant-v5 integrates with RK4, so at that point ``MjData`` holds the contacts and constraint forces of the last
  Runge-Kutta stage. A force sensor in the model would make ``mj_step`` compute ``cfrc_ext`` itself, but at the
  start of the last substep (before the RK stages), which differs from gymnasium's by up to ~100 N. A
  *persistent* batch (one ``MjData`` per simulation) keeps the stage data, and ``mjb_apply`` runs
  ``mj_rnePostConstraint`` on every simulation's ``MjData`` on the same thread pool, as gymnasium does:
  bit-identical, and cheap next to the four RK4 stages of each substep. (``mjb_apply`` does not refresh the
  batch's copied-out fields, so an ``mjb_forward`` that computes nothing follows it.)
* ``mujoco.batch.Batch``, the Python wrapper of that API, does not expose ``mjb_apply``, so this module calls
  the C API through :mod:`ctypes`, which releases the GIL during each call.

One cost: a batch call splits its simulations evenly among its threads, while ``rollout`` hands out small
chunks, so when another process keeps one core busy a batch call waits for the slower thread.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import seeding

from maml_rl.envs import rewards
from maml_rl.envs.task import Task, checked_actions
from maml_rl.envs.task_batch import TaskBatch, check_len
from maml_rl.process import usable_cores


def _load_mujoco_library() -> ctypes.CDLL:
    """The MuJoCo shared library that the ``mujoco`` package itself loaded (same file, so the same handle)."""
    folder = os.path.dirname(mujoco.__file__)
    candidates = sorted(
        glob.glob(os.path.join(folder, "libmujoco.so*"))
        + glob.glob(os.path.join(folder, "libmujoco*.dylib"))
        + glob.glob(os.path.join(folder, "mujoco.dll"))
    )
    if not candidates:
        raise ImportError(f"no MuJoCo shared library found in {folder}")
    lib = ctypes.CDLL(candidates[0])
    if not hasattr(lib, "mjb_makeBatch"):
        raise ImportError(
            f"MuJoCo {mujoco.__version__} has no batch API (mjbatch.h); the batched physics backend needs "
            "mujoco>=4.0. Upgrade mujoco or use sampler backend 'gymnasium'."
        )
    p, i, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures = {
        "mjb_defaultConfig": (None, [p]),
        "mjb_makeBatch": (p, [p, i, p, c, i]),
        "mjb_deleteBatch": (None, [p]),
        "mjb_nstate": (i, [p]),
        "mjb_state": (p, [p]),
        "mjb_stateComponent": (p, [p, i, ctypes.POINTER(i)]),
        "mjb_step": (i, [p, p, i, i, i]),
        "mjb_forward": (i, [p, p, i, i]),
        "mjb_reset": (i, [p, p, i, p, i]),
        "mjb_apply": (i, [p, p, i, p, p, i]),
        "mjb_output": (p, [p, c, ctypes.POINTER(i), ctypes.POINTER(i)]),
        "mjb_status": (ctypes.POINTER(i), [p]),
        "mjb_error": (c, [p, i]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load_mujoco_library()
    return _LIB


class _BatchConfig(ctypes.Structure):
    # mjBatchConfig, with spare room in case a later MuJoCo appends fields that mjb_defaultConfig fills
    _fields_ = [("nthread", ctypes.c_int), ("persistent", ctypes.c_ubyte), ("_spare", ctypes.c_ubyte * 64)]


class MjBatch:
    """A thin wrapper of ``mjbatch.h``: ``nsim`` simulations of a copy of ``model`` on a thread pool.

    :attr:`state` is the live ``(nsim, nstate)`` array of ``mjSTATE_INTEGRATION`` rows (writes take effect
    at a simulation's next call); :meth:`component` and :meth:`output` give live views of one state component
    and of an ``MjData`` field copied out after every call. ``ids=None`` means every simulation.
    """

    def __init__(self, model: mujoco.MjModel, nsim: int, nthread: int = 0, persistent: bool = False) -> None:
        lib = _lib()
        config = _BatchConfig()
        lib.mjb_defaultConfig(ctypes.byref(config))
        config.nthread, config.persistent = nthread, int(persistent)
        error = ctypes.create_string_buffer(1000)
        self._ptr = None
        self._model = model  # the batch holds a copy, but keep the source alive for the views' shapes
        self._ptr = lib.mjb_makeBatch(model._address, nsim, ctypes.byref(config), error, len(error))
        if not self._ptr:
            raise RuntimeError(f"mjb_makeBatch failed: {error.value.decode(errors='replace')}")
        self.nsim = nsim
        nstate = lib.mjb_nstate(self._ptr)
        self._state_address = lib.mjb_state(self._ptr)
        self.state = _array(self._state_address, (nsim, nstate), np.float64)

    def component(self, bit: mujoco.mjtState) -> np.ndarray:
        """Live ``(nsim, size)`` view of one state component (e.g. ``mjSTATE_QPOS``) of every row."""
        size = ctypes.c_int()
        address = _lib().mjb_stateComponent(self._ptr, int(bit), ctypes.byref(size))
        offset = (address - self._state_address) // self.state.itemsize
        return self.state[:, offset : offset + size.value]

    def output(self, name: str) -> np.ndarray:
        """Live, read-only ``(nsim, size)`` copy of ``MjData.<name>``, refreshed after every call."""
        size, elemsize = ctypes.c_int(), ctypes.c_int()
        address = _lib().mjb_output(self._ptr, name.encode(), ctypes.byref(size), ctypes.byref(elemsize))
        if not address or elemsize.value != 8:
            raise ValueError(f"mjb_output cannot copy out MjData field {name!r}")
        view = _array(address, (self.nsim, size.value), np.float64)
        view.flags.writeable = False
        return view

    def step(self, ids: np.ndarray | None, nstep: int) -> None:
        """``nstep`` calls of ``mj_step`` on each simulation of ``ids``."""
        self._check(ids, _lib().mjb_step(self._ptr, *_ids(ids, self.nsim), nstep, int(mujoco.mjtStage.mjSTAGE_NONE)))

    def apply(self, ids: np.ndarray | None, function: ctypes.c_void_p) -> None:
        """Runs the C function ``function(m, d, …)`` on each simulation's ``MjData``, state untouched."""
        self._check(ids, _lib().mjb_apply(self._ptr, *_ids(ids, self.nsim), function, None, 0))

    def reset(self) -> None:
        """``mj_resetData`` on every simulation (the model's defaults), computing nothing."""
        self._check(None, _lib().mjb_reset(self._ptr, None, self.nsim, None, int(mujoco.mjtStage.mjSTAGE_NONE)))

    def forward(self) -> None:
        """``mj_forward`` on every simulation (all stages), state untouched."""
        self._check(None, _lib().mjb_forward(self._ptr, None, self.nsim, int(mujoco.mjtStage.mjSTAGE_ACC)))

    def refresh_outputs(self, ids: np.ndarray | None) -> None:
        """Copies the :meth:`output` fields out again, computing nothing (``mjb_apply`` does not copy them)."""
        self._check(ids, _lib().mjb_forward(self._ptr, *_ids(ids, self.nsim), int(mujoco.mjtStage.mjSTAGE_NONE)))

    def close(self) -> None:
        """Frees the batch; the views handed out before become invalid."""
        if self._ptr:
            _lib().mjb_deleteBatch(self._ptr)
            self._ptr = None
            self.state = None  # type: ignore[assignment]

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) and _LIB is not None:
            self.close()

    def _check(self, ids: np.ndarray | None, failed: int) -> None:
        if not failed:
            return
        status = _array(ctypes.addressof(_lib().mjb_status(self._ptr).contents), (self.nsim,), np.int32)
        sims = np.flatnonzero(status) if ids is None else ids[status[ids] != 0]
        first = int(sims[0])
        message = _lib().mjb_error(self._ptr, first).decode(errors="replace")
        raise RuntimeError(
            f"MuJoCo raised in {failed} simulation(s) {sims[:5].tolist()}; simulation {first}: {message}"
        )


def _array(address: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    ctype = np.ctypeslib.as_ctypes_type(dtype)
    return np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctype)), shape=shape)


def _ids(ids: np.ndarray | None, nsim: int) -> tuple[int | None, int]:
    if ids is None:
        return None, nsim
    return ids.ctypes.data, len(ids)


class MujocoTaskBatch(TaskBatch):
    """A MuJoCo task family for every slot at once; subclasses compute the observations and rewards.

    Resets follow gymnasium's ``MujocoEnv.reset`` for all slots at once: ``mj_resetData``, each slot's noise
    from a generator seeded as ``Env.reset(seed=...)`` seeds it, ``mj_forward`` (tested equal to gymnasium's).
    """

    needs_contact_forces = False
    qvel_noise = "normal"
    """How the model's ``reset_model`` draws the velocity noise: ``normal`` (scale × N(0, 1): HalfCheetah-v5,
    Ant-v5) or ``uniform`` (U(±scale): Swimmer-v5)."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.family = gym.make(env_id, **(env_kwargs or {})).unwrapped
        self.env_id, self.num_envs = env_id, num_envs
        self.observation_dim = int(np.prod(self.family.observation_space.shape))
        self.action_low = np.asarray(self.family.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(self.family.action_space.high, dtype=np.float64)
        self.model: mujoco.MjModel = self.family.model
        self.frame_skip = int(self.family.frame_skip)
        self.dt = float(self.family.dt)
        self.forward_term = type(self.family).forward_term
        self.batch = MjBatch(self.model, num_envs, nthread=usable_cores(), persistent=self.needs_contact_forces)
        self.qpos = self.batch.component(mujoco.mjtState.mjSTATE_QPOS)
        self.qvel = self.batch.component(mujoco.mjtState.mjSTATE_QVEL)
        self.ctrl = self.batch.component(mujoco.mjtState.mjSTATE_CTRL)
        self.task_values = np.zeros(num_envs)
        self._x_last = np.zeros(num_envs)  # x position after the last reset or step, per slot
        # run by mjb_apply as an mjfBatchFunc(m, d, sim, arg): C calling conventions leave the extra two
        # arguments to the caller, so mj_rnePostConstraint(m, d) can be passed as it is
        self._rne_post_constraint = ctypes.cast(_lib().mj_rnePostConstraint, ctypes.c_void_p)

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        check_len("tasks", tasks, self.num_envs)
        check_len("seeds", seeds, self.num_envs)
        for task in {id(task): task for task in tasks}.values():  # slots share their task's dict
            self.family.reset_task(task)  # validates the task
        values = self.family.task_array(tasks)
        if values.shape[1] != 1:
            raise ValueError(f"{self.env_id}: expected one task value per task, got shape {values.shape}")
        qpos_noise, qvel_noise = self._reset_noise(seeds)
        # gymnasium's MujocoEnv.reset: mj_resetData, then set_state(init + noise), whose mj_forward fills the
        # positions (Ant's xpos) that the first observation and velocity read
        self.batch.reset()
        self.qpos[:] = self.family.init_qpos + qpos_noise
        self.qvel[:] = self.family.init_qvel + qvel_noise
        self.batch.forward()
        self.task_values = values[:, 0].copy()
        self._x_last = self._x_position()
        return self._outcome(np.zeros(self.num_envs), np.zeros_like(self.ctrl))[0]

    def _reset_noise(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each slot's reset noise, drawn as the v5 models' ``reset_model`` draws it from a generator seeded like
        ``Env.reset(seed=...)``: U(±scale) on ``qpos``, then :attr:`qvel_noise` on ``qvel``."""
        scale, nq, nv = self.family._reset_noise_scale, self.model.nq, self.model.nv
        qpos_noise, qvel_noise = np.empty((self.num_envs, nq)), np.empty((self.num_envs, nv))
        for k, seed in enumerate(seeds):
            generator, _ = seeding.np_random(int(seed))
            qpos_noise[k] = generator.uniform(low=-scale, high=scale, size=nq)
            if self.qvel_noise == "uniform":
                qvel_noise[k] = generator.uniform(low=-scale, high=scale, size=nv)
            else:
                qvel_noise[k] = scale * generator.standard_normal(nv)
        return qpos_noise, qvel_noise

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        active = np.asarray(active, dtype=bool)
        ids = None if active.all() else np.flatnonzero(active).astype(np.int32)
        if ids is not None and len(ids) == 0:
            self.last_reward_terms = {name: np.zeros(self.num_envs) for name in self.last_reward_terms}
            return (
                np.zeros((self.num_envs, self.observation_dim)),
                np.zeros(self.num_envs),
                np.zeros(self.num_envs, bool),
            )
        actions = checked_actions(actions, self.action_low, self.action_high, type(self).__name__)
        self.ctrl[:] = actions
        self.batch.step(ids, self.frame_skip)
        if self.needs_contact_forces:
            # gymnasium's MujocoEnv calls mj_rnePostConstraint after mj_step (see the module docstring)
            self.batch.apply(ids, self._rne_post_constraint)
            self.batch.refresh_outputs(ids)
        x_after = self._x_position()
        x_velocity = (x_after - self._x_last) / self.dt
        self._x_last = np.where(active, x_after, self._x_last)
        forward = self.forward_term(x_velocity, self.task_values)
        obs, reward, terminated = self._outcome(forward, actions)
        obs[~active] = 0.0
        reward[~active] = 0.0
        for term in self.last_reward_terms.values():
            term[~active] = 0.0
        terminated &= active
        return obs, reward, terminated

    def close(self) -> None:
        self.batch.close()
        self.family.close()

    # --- for subclasses -------------------------------------------------------------------------
    def _x_position(self) -> np.ndarray:
        """The x position whose change per step gives the forward velocity, ``(n,)``, after a step or reset."""
        raise NotImplementedError

    def _outcome(self, forward: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observations, rewards and terminations of every slot after the step."""
        raise NotImplementedError


class PlanarTaskBatch(MujocoTaskBatch):
    """A planar model whose forward velocity is that of ``qpos[0]`` and which never terminates; the observation
    is ``qpos`` without its first :attr:`skipped_positions` entries (when the model excludes them), then ``qvel``."""

    skipped_positions = 1
    reward_terms = staticmethod(rewards.half_cheetah_reward_terms)

    def _x_position(self) -> np.ndarray:
        return self.qpos[:, 0].copy()

    def _outcome(self, forward: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        skip = self.skipped_positions if self.family._exclude_current_positions_from_observation else 0
        obs = np.concatenate([self.qpos[:, skip:], self.qvel], axis=1)
        self.last_reward_terms = type(self).reward_terms(forward, actions)
        return obs, rewards.total(self.last_reward_terms), np.zeros(self.num_envs, dtype=bool)


class HalfCheetahTaskBatch(PlanarTaskBatch):
    """HalfCheetahDir / HalfCheetahVel (HalfCheetah-v5): the root's x excluded from the observation."""


class SwimmerTaskBatch(PlanarTaskBatch):
    """SwimmerDir / SwimmerVel (Swimmer-v5): the front tip's x and y excluded, uniform velocity noise at reset."""

    skipped_positions = 2
    reward_terms = staticmethod(rewards.swimmer_reward_terms)
    qvel_noise = "uniform"


class AntTaskBatch(MujocoTaskBatch):
    """AntDir / AntVel (Ant-v5): forward velocity of the main body's ``xpos``, clipped ``cfrc_ext``, health."""

    needs_contact_forces = True

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(env_id, num_envs, env_kwargs)
        main_body = self.family._main_body
        self.main_body = self.model.body(main_body).id if isinstance(main_body, str) else int(main_body)
        self.xpos = self.batch.output("xpos")
        self.cfrc_ext = self.batch.output("cfrc_ext")

    def _x_position(self) -> np.ndarray:
        # xpos after mj_step is that of the last substep's final RK stage, as gymnasium reads it too
        return self.xpos[:, 3 * self.main_body].copy()

    def _outcome(self, forward: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        family = self.family
        qpos, qvel = self.qpos, self.qvel
        contact = np.clip(self.cfrc_ext, *family._contact_force_range)  # (n, 6 × nbody), world body first
        min_z, max_z = family._healthy_z_range
        finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        healthy = finite & (min_z <= qpos[:, 2]) & (qpos[:, 2] <= max_z)
        skip = 2 if family._exclude_current_positions_from_observation else 0
        parts = [qpos[:, skip:], qvel]
        if family._include_cfrc_ext_in_observation:
            parts.append(contact[:, 6:])
        obs = np.concatenate(parts, axis=1)
        self.last_reward_terms = rewards.ant_reward_terms(forward, actions, contact, healthy.astype(np.float64))
        reward = rewards.total(self.last_reward_terms)
        terminated = ~healthy if family._terminate_when_unhealthy else np.zeros(self.num_envs, dtype=bool)
        return obs, reward, terminated
