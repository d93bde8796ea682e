"""The numerical pieces of TRPO (Schulman et al. 2015): conjugate gradient and flat parameter vectors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from maml_rl.policies.base import Params


def flatten(tensors: dict[str, Tensor] | list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """Concatenates tensors (a dict's values in order) into one flat vector."""
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return torch.cat([t.reshape(-1) for t in values])


def unflatten(vector: Tensor, like: Params) -> Params:
    """Splits a flat vector into a dict shaped like ``like`` (the inverse of :func:`flatten`)."""
    out, start = {}, 0
    for name, ref in like.items():
        out[name] = vector[start : start + ref.numel()].view_as(ref)
        start += ref.numel()
    if start != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries, parameters need {start}")
    return out


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10, tolerance: float = 1e-10
) -> tuple[Tensor, Tensor]:
    """Approximately solves ``A x = b`` for symmetric positive-definite ``A`` given only ``x ↦ A x``.

    Hestenes & Stiefel 1952; stops early once the squared residual falls below ``tolerance``. Returns ``x``
    and ``A x``, the latter accumulated from the products CG computes anyway (TRPO needs xᵀAx to scale its
    step, and this saves one more product).
    """
    x = torch.zeros_like(b)
    ax = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r.dot(r)
    for _ in range(iterations):
        if rr < tolerance:
            break
        ap = matvec(p)
        alpha = rr / p.dot(ap)
        x = x + alpha * p
        ax = ax + alpha * ap
        r = r - alpha * ap
        rr_new = r.dot(r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, ax
