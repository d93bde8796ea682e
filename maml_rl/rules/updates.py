"""Learning rules: backpropagation (SGD), weight perturbation (WP) and node perturbation (NP).

Each rule maps the current weights and the training set to new weights, one full-batch step per call.

Noise convention (read this before choosing ``sigma``)
------------------------------------------------------
Cai & Cheng write the perturbations as ``N(0, sigma)`` and scale the update by ``eta / sigma``. We take ``sigma``
to be the noise **variance**: ``Xi = sqrt(sigma) * standard normal``. Then, to first order in the noise,

    WP:  E_W - E ~ <grad_W E, Xi>,  and  E[<g, Xi> Xi] = sigma * g,
    NP:  E_N - E ~ sum_i <dE/da_i, xi_i>  (a_i: pre-activations of sample i),
         and  E[(E_N - E) sum_i xi_i x_i^T] = sigma * sum_i dE/da_i x_i^T = sigma * dE/dW,

so ``-(eta / sigma) (E_pert - E) * noise`` is an unbiased estimate of the SGD step ``-eta dE/dW`` up to terms
of order ``sigma`` (odd Gaussian moments vanish, so the second-order term does not bias it). Reading ``sigma``
as a standard deviation instead would silently rescale the learning rate by ``1/sigma``. This is the classic
perturbation estimator of Widrow & Lehr (1990, "MADALINE rule III"), Jabri & Flower (1992, weight
perturbation), Cauwenberghs (1993) and Werfel, Xie & Seung (2005, "Learning curves for stochastic gradient
descent in linear feedforward networks", Neural Computation 17:2699), whose analysis of NP and WP the update
formulas follow; Hiratani et al. (2022) study NP's stability in deeper networks. ``tests/rules`` checks the
unbiasedness numerically (cosine similarity of the mean update with ``-grad E``).

With ``perturbations = k > 1``, k independent noise draws are evaluated in one batched forward pass and their
updates averaged, which divides the estimator's variance by k at k times the forward cost.

NP uses the clean presynaptic activity ``x^(l)`` of the first pass, in the formula
``dW_l = -(eta/sigma) (E_N - E) sum_samples xi^(l+1) x^(l)T``; all layers are perturbed at once and each layer
correlates the one global error signal with its own noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import Dataset
from .network import Weights, forward, forward_layers, loss_fn


def standardize(weights: Weights, scales: tuple[float, ...]) -> Weights:
    """Cai & Cheng's MNIST stabiliser: each matrix shifted to mean 0 and rescaled to std ``scales[l]``."""
    return tuple((w - w.mean()) / w.std().clamp_min(1e-12) * s for w, s in zip(weights, scales))


class Rule:
    """A learning rule: ``step(weights, data, generator) -> (new_weights, training loss before the step)``."""

    name = "rule"

    def step(self, weights: Weights, data: Dataset, generator: torch.Generator) -> tuple[Weights, float]:
        raise NotImplementedError


@dataclass
class SGD(Rule):
    """Full-batch gradient descent by backpropagation: ``dW = -lr dE/dW`` (autograd)."""

    lr: float
    name = "sgd"

    def gradient(self, weights: Weights, data: Dataset) -> tuple[tuple[torch.Tensor, ...], float]:
        params = tuple(w.detach().requires_grad_(True) for w in weights)
        with torch.enable_grad():
            loss = loss_fn(forward(params, data.x_train, data.output_activation), data.y_train, data.loss)
            grads = torch.autograd.grad(loss, params)
        return grads, float(loss.detach())

    def step(self, weights, data, generator):
        grads, loss = self.gradient(weights, data)
        return tuple(w - self.lr * g for w, g in zip(weights, grads)), loss


@dataclass
class WeightPerturbation(Rule):
    """``dW_l = -(lr/sigma) <(E_W - E) Xi_l>_k`` with ``Xi ~ N(0, sigma)`` (variance) on every weight."""

    lr: float
    sigma: float
    perturbations: int = 1
    name = "wp"

    def draw_noise(self, weights: Weights, data: Dataset, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``Xi_l`` of shape ``(k, *W_l.shape)`` with variance ``sigma``."""
        std = math.sqrt(self.sigma)
        return tuple(
            torch.randn((self.perturbations, *w.shape), generator=generator, dtype=w.dtype) * std for w in weights
        )

    def update(self, weights: Weights, data: Dataset, generator: torch.Generator) -> tuple[Weights, float]:
        """The weight change (not yet applied) and the clean loss E."""
        return self.update_from_noise(weights, data, self.draw_noise(weights, data, generator))

    @torch.no_grad()
    def update_from_noise(
        self, weights: Weights, data: Dataset, noise: tuple[torch.Tensor, ...]
    ) -> tuple[Weights, float]:
        """The update for given perturbations (leading axis k, averaged): a pure function, for tests."""
        k = noise[0].shape[0]
        x, y = data.x_train, data.y_train
        clean = loss_fn(forward(weights, x, data.output_activation), y, data.loss)  # ()
        noisy = loss_fn(
            forward(tuple(w + n for w, n in zip(weights, noise)), x, data.output_activation), y, data.loss
        )  # (k,)
        signal = (noisy - clean) * (-self.lr / self.sigma / k)  # (k,)
        return tuple(torch.einsum("k,k...->...", signal, n) for n in noise), float(clean)

    def step(self, weights, data, generator):
        delta, loss = self.update(weights, data, generator)
        return tuple(w + d for w, d in zip(weights, delta)), loss


@dataclass
class NodePerturbation(Rule):
    """``dW_l = -(lr/sigma) <(E_N - E) xi^(l+1)T x^(l)>_k`` with ``xi ~ N(0, sigma)`` per sample and unit."""

    lr: float
    sigma: float
    perturbations: int = 1
    name = "np"

    def draw_noise(self, weights: Weights, data: Dataset, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``xi^(l+1)`` of shape ``(k, N, R_{l+1})`` with variance ``sigma``, independent per sample."""
        std, n = math.sqrt(self.sigma), data.x_train.shape[0]
        return tuple(
            torch.randn(self.perturbations, n, w.shape[0], generator=generator, dtype=w.dtype) * std for w in weights
        )

    def update(self, weights: Weights, data: Dataset, generator: torch.Generator) -> tuple[Weights, float]:
        """The weight change (not yet applied) and the clean loss E."""
        return self.update_from_noise(weights, data, self.draw_noise(weights, data, generator))

    @torch.no_grad()
    def update_from_noise(
        self, weights: Weights, data: Dataset, noise: tuple[torch.Tensor, ...]
    ) -> tuple[Weights, float]:
        """The update for given node noise (leading axis k, averaged): a pure function, for tests."""
        k = noise[0].shape[0]
        x, y = data.x_train, data.y_train
        acts = forward_layers(weights, x, data.output_activation)
        clean = loss_fn(acts[-1], y, data.loss)
        noisy = loss_fn(forward(weights, x, data.output_activation, node_noise=noise), y, data.loss)  # (k,)
        signal = (noisy - clean) * (-self.lr / self.sigma / k)  # (k,)
        # sum over perturbations k and samples n of signal_k * xi_{k,n,i} * x_{n,j}, batched in one contraction
        delta = tuple(torch.einsum("k,kni,nj->ij", signal, xi, a) for xi, a in zip(noise, acts[:-1]))
        return delta, float(clean)

    def step(self, weights, data, generator):
        delta, loss = self.update(weights, data, generator)
        return tuple(w + d for w, d in zip(weights, delta)), loss
