"""The base network of the learning-rules lab, written functionally so that rules can batch perturbations.

Weights are a tuple ``(W_0, ..., W_{L-1})`` with ``W_l`` of shape ``(..., R_{l+1}, R_l)`` and no biases, as in
Cai & Cheng, eq. (1): ``X^(l+1) = act(X^(l) W_l^T)``. Any leading axes on the weights (for example ``K``
perturbed copies) or on the node noise broadcast through the forward pass, so ``K`` perturbed networks cost one
batched matrix product per layer instead of a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

Weights = tuple[torch.Tensor, ...]


def init_weights(
    sizes: Sequence[int], generator: torch.Generator, std: float | None = None, dtype: torch.dtype = torch.float32
) -> Weights:
    """Gaussian weights for layer sizes ``(R_0, ..., R_L)``; ``std=None`` uses ``1/sqrt(fan_in)`` per layer."""
    return tuple(
        torch.randn(r_out, r_in, generator=generator, dtype=dtype) * (std if std is not None else 1 / math.sqrt(r_in))
        for r_in, r_out in zip(sizes[:-1], sizes[1:])
    )


def forward_layers(
    weights: Weights, x: torch.Tensor, output_activation: str, node_noise: Sequence[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """All activations ``[X^(0), ..., X^(L)]``; ``node_noise[l]`` is added to the pre-activation of layer l+1.

    ReLU on hidden layers; on the output ReLU (``'relu'``, the teacher-student setting) or nothing (``'none'``,
    logits for the softmax).
    """
    acts = [x]
    h = x
    for layer, w in enumerate(weights):
        a = h @ w.transpose(-1, -2)
        if node_noise is not None:
            a = a + node_noise[layer]
        last = layer == len(weights) - 1
        h = a if (last and output_activation == "none") else torch.relu(a)
        acts.append(h)
    return acts


def forward(
    weights: Weights, x: torch.Tensor, output_activation: str, node_noise: Sequence[torch.Tensor] | None = None
) -> torch.Tensor:
    """The network output ``X^(L)``, shape ``(..., N, R_L)``."""
    return forward_layers(weights, x, output_activation, node_noise)[-1]


def loss_fn(output: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-network loss over the last two axes (samples, units); leading axes are kept.

    ``'mse'``: ``E = 1/(N R_L) * 1/2 ||X^(L) - Y||^2`` (Cai & Cheng eq. 2).
    ``'cross_entropy'``: ``E = -1/N sum_i log softmax(x_i^(L))[y_i]`` (eq. 3 and the line after it).
    """
    if loss == "mse":
        return 0.5 * (output - y).pow(2).mean(dim=(-2, -1))
    if loss == "cross_entropy":
        logp = F.log_softmax(output, dim=-1)
        idx = y.expand(output.shape[:-1]).unsqueeze(-1)
        return -logp.gather(-1, idx).squeeze(-1).mean(-1)
    raise ValueError(f"unknown loss {loss!r}; expected 'mse' or 'cross_entropy'")


def accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose largest logit is the label."""
    return (output.argmax(-1) == y).to(output.dtype).mean(-1)


def flatten(weights: Weights) -> torch.Tensor:
    """All weights as one vector (layer by layer, row-major)."""
    return torch.cat([w.reshape(-1) for w in weights])


def unflatten(vector: torch.Tensor, like: Weights) -> Weights:
    """The inverse of :func:`flatten` for weights shaped like ``like``."""
    out, start = [], 0
    for w in like:
        out.append(vector[start : start + w.numel()].reshape(w.shape))
        start += w.numel()
    return tuple(out)
