"""Helpers shared by the command-line entry points."""

from __future__ import annotations

import torch

from maml_rl.config import ConfigError


def set_threads(threads: int) -> None:
    """Sets torch's intra-op thread count, rejecting non-positive values."""
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
