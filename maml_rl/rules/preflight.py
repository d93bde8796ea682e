"""The memory a rules-lab experiment will need, checked before any tensor is made.

A misplaced zero in ``task.hidden_dim`` or ``n_train`` otherwise ends in an allocator traceback, or in the
kernel killing the process after it has filled the machine's memory.
"""

from __future__ import annotations

from maml_rl.training.resources import format_bytes

from .config import ConfigError, RulesConfig

ACTIVATION_COPIES = 4
"""Per sample and unit: the pre- and post-activations of a forward pass, their gradients (SGD) or noise (NP)."""
WEIGHT_COPIES = 8
"""Per weight: the student, the teacher, a gradient or update, a perturbation, the best and the held-out copy."""
PPO_COPIES = 6
"""Per PPO network parameter: policy and value networks, their gradients, Adam's two moments."""


def estimate_bytes(cfg: RulesConfig) -> int:
    """About how many bytes the experiment needs at its peak."""
    t = cfg.task
    weights = t.hidden_dim * (t.input_dim + t.output_dim)
    numbers = (t.n_train + t.n_test) * (t.input_dim + t.output_dim + ACTIVATION_COPIES * (t.hidden_dim + t.output_dim))
    numbers += WEIGHT_COPIES * weights
    for name in ("wp", "np"):
        rule = getattr(cfg, name)
        if rule is not None and name in cfg.rules:  # the k perturbations are evaluated in one batched forward
            per = weights if name == "wp" else t.n_train * (t.hidden_dim + t.output_dim)
            numbers += 3 * rule.perturbations * per
    if cfg.meta is not None and "meta" in cfg.rules:
        sizes = [weights + 1, *cfg.meta.net_arch, weights]  # observation: the weights and the loss; action: weights
        network = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        numbers += PPO_COPIES * 2 * network + cfg.meta.n_steps * (3 * weights + 8)  # two networks; rollout buffer
    return (8 if cfg.dtype == "float64" else 4) * numbers


def largest_key(cfg: RulesConfig) -> str:
    """The size key furthest above its usual value (the paper's teacher-student sizes): the one to lower."""
    t = cfg.task
    ratios = {
        "task.n_train": t.n_train / 512,
        "task.n_test": t.n_test / 512,
        "task.input_dim": t.input_dim / 10,
        "task.hidden_dim": t.hidden_dim / 100,
        "task.output_dim": t.output_dim / 10,
    }
    for name in ("wp", "np"):
        if getattr(cfg, name) is not None and name in cfg.rules:
            ratios[f"{name}.perturbations"] = getattr(cfg, name).perturbations / 1
    if cfg.meta is not None and "meta" in cfg.rules:
        ratios["meta.net_arch"] = max(cfg.meta.net_arch, default=0) / 64
        ratios["meta.n_steps"] = cfg.meta.n_steps / 2048
    key = max(ratios, key=ratios.__getitem__)
    section, _, name = key.rpartition(".")
    value = getattr(getattr(cfg, section) if section else cfg, name)
    return f"{key} (now {list(value) if isinstance(value, tuple) else value})"


def check_memory(cfg: RulesConfig, available: int | None) -> None:
    """Raises :class:`ConfigError` if the experiment needs more memory than ``available`` bytes."""
    total = estimate_bytes(cfg)
    if available is not None and total > available:
        t = cfg.task
        raise ConfigError(
            f"the experiment needs about {format_bytes(total)} of memory (network {t.input_dim}-"
            f"{t.hidden_dim}-{t.output_dim}, {t.n_train} + {t.n_test} samples), but "
            f"{format_bytes(available)} is available; lower {largest_key(cfg)}"
        )
