"""The Gaussian RNN-cell policy with frozen recurrent circuitry.

Every hidden layer is a recurrent cell whose state is carried from step to step within an episode:

* ``rnn``:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
* ``gru``:  PyTorch's GRUCell equations (gates r, z, n; Cho et al. 2014)
* ``lstm``: PyTorch's LSTMCell equations (gates i, f, g, o; Hochreiter & Schmidhuber 1997)

With ``freeze_recurrent`` (the default) the recurrent weights W_hh, b_hh are drawn once from the seeded
generator and stored as *buffers*: they are not in :meth:`meta_params`, so neither the inner loop nor the
TRPO step can change them, and they are not part of the search direction. This is the
"fixed prefrontal circuitry, plastic input/output synapses" reading of Wang et al. 2018.

The frozen circuit can be tuned as reservoir computing tunes its reservoir (Jaeger 2001; Lukoševičius 2012,
"A practical guide to applying echo state networks"): ``recurrent_density`` keeps a seeded random fraction of
W_hh's entries, ``spectral_radius`` rescales W_hh so that its largest absolute eigenvalue has that value (how
close the dynamics run to the edge of stability, hence how long they remember), and ``leak`` makes each
layer a leaky integrator, h_t = (1 − leak)·h_{t−1} + leak·cell(x_t, h_{t−1}) (the LSTM's [h, c] state as a
whole). The defaults (no rescaling, density 1, leak 1) are PyTorch's cells unchanged.

Plastic synapses (``plasticity``, the ``rnn`` cell only) add a fast, per-episode component to the frozen
recurrent weight: the weight used at step t is W_hh + α ⊙ Hebb_t, with a Hebbian trace Hebb (one per episode
and layer, laid out like W_hh: row = post-synaptic unit, column = pre-synaptic) that starts at zero with each
episode and is carried like the hidden state:

* ``hebbian`` (differentiable plasticity; Miconi, Clune & Stanley 2018):
  Hebb_{t+1} = (1 − η)·Hebb_t + η·h_t h_{t−1}ᵀ
* ``neuromodulated`` (Backpropamine's simple neuromodulation; Miconi et al. 2019):
  Hebb_{t+1} = clip(Hebb_t + M_t·h_t h_{t−1}ᵀ, −1, 1), M_t = tanh(w_M · h_t + b_M), a scalar the layer
  computes from its own state (which holds the previous reward when the policy sees it).

The plasticity coefficients α (one per synapse), the rate η or the modulator's w_M, b_M are meta-parameters;
W_hh stays a buffer when frozen. α starts at zero, so a plastic policy starts as the frozen RNN drawn from the
same seed (its plasticity parameters are drawn after every other weight).

Sampling runs :meth:`forward` one step at a time with the hidden state the sampler carries; the losses run
:meth:`sequence`, which computes the input projections of all time steps at once and then the recurrence.
Both apply the same cell function, so their log-probabilities agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from maml_rl.policies.base import Hidden, Params, Policy, linear, tanh
from maml_rl.policies.plasticity import add_outer, clip, plastic_drive

CELL_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
PLASTICITY = ("none", "hebbian", "neuromodulated")
HEBBIAN_RATE_INIT = 0.01
"""η at initialisation (Miconi, Clune & Stanley 2018 start theirs at 0.01)."""


def rnn_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """Elman cell, given the input projection ``W_ih x + b_ih``; ``h`` is the previous hidden state."""
    return tanh(x_proj + linear(h, w_hh, b_hh))


def gru_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """GRU cell (PyTorch's gate order r, z, n), given the input projection."""
    xr, xz, xn = x_proj.chunk(3, -1)
    hr, hz, hn = linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = tanh(xn + r * hn)
    return (1 - z) * n + z * h


def lstm_cell(x_proj: Tensor, hc: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """LSTM cell (PyTorch's gate order i, f, g, o); the state is ``[h, c]`` concatenated on the last axis."""
    h, c = hc.chunk(2, -1)
    i, f, g, o = (x_proj + linear(h, w_hh, b_hh)).chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * tanh(g)
    return torch.cat([torch.sigmoid(o) * tanh(c), c], -1)


CELLS: dict[str, Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]] = {
    "rnn": rnn_cell,
    "gru": gru_cell,
    "lstm": lstm_cell,
}


class _StackSteps(torch.autograd.Function):
    """``torch.stack(steps, 1)`` whose backward is one ``unbind`` (PyTorch's own backward of stack selects each
    step, and the backward of those selects allocates a full-size zero tensor per step: quadratic in T)."""

    @staticmethod
    def forward(ctx, *steps: Tensor) -> Tensor:
        return torch.stack(steps, 1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, ...]:
        return grad.unbind(1)  # differentiable: its own backward is a single stack


def stack_steps(steps: list[Tensor]) -> Tensor:
    """Stacks per-time-step tensors along axis 1, with a backward linear in the number of steps."""
    return _StackSteps.apply(*steps)


def spectral_radius(matrix: Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix."""
    return float(torch.linalg.eigvals(matrix.double()).abs().max())


def reservoir_weights(weight_hh: Tensor, radius: float | None = None, density: float = 1.0) -> Tensor:
    """A drawn W_hh, sparsified to ``density`` (a random mask from torch's seeded global generator) and rescaled
    to spectral radius ``radius``; with the defaults, ``weight_hh`` itself (and no random draw)."""
    if density < 1.0:
        weight_hh = weight_hh * (torch.rand(weight_hh.shape) < density)
    if radius is not None:
        if weight_hh.shape[0] != weight_hh.shape[1]:
            raise ValueError(f"spectral radius needs a square W_hh (the rnn cell), got shape {tuple(weight_hh.shape)}")
        current = spectral_radius(weight_hh)
        if current == 0.0:
            raise ValueError(
                "cannot rescale W_hh to a spectral radius: its eigenvalues are all zero (raise the density)"
            )
        weight_hh = weight_hh * (radius / current)
    return weight_hh


class RecurrentLayer(nn.Module):
    """One recurrent cell's weights, named as PyTorch's cells name them (``weight_ih``, ``bias_hh``, …)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        cell: str,
        freeze_recurrent: bool,
        spectral_radius: float | None = None,
        recurrent_density: float = 1.0,
    ) -> None:
        super().__init__()
        self.plasticity = "none"
        gates = CELL_GATES[cell] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's RNNCell initialisation
        init = lambda *shape: torch.empty(*shape).uniform_(-bound, bound)  # noqa: E731
        self.weight_ih = nn.Parameter(init(gates, input_size))
        self.bias_ih = nn.Parameter(init(gates))
        weight_hh, bias_hh = init(gates, hidden_size), init(gates)
        weight_hh = reservoir_weights(weight_hh, spectral_radius, recurrent_density)
        for name, value in (("weight_hh", weight_hh), ("bias_hh", bias_hh)):
            if freeze_recurrent:
                self.register_buffer(name, value)
            else:
                self.register_parameter(name, nn.Parameter(value))
        self.hidden_size, self.cell = hidden_size, cell
        self.state_size = 2 * hidden_size if cell == "lstm" else hidden_size

    def make_plastic(self, plasticity: str) -> None:
        """Adds the plasticity parameters: α = 0, and η = 0.01 or the modulator's weights (drawn from torch's
        global generator) and bias 0."""
        if plasticity not in PLASTICITY:
            raise ValueError(f"unknown plasticity {plasticity!r}; choose one of {', '.join(PLASTICITY)}")
        if plasticity == "none":
            return
        if self.cell != "rnn":
            raise ValueError(f"plasticity applies to the rnn cell (one W_hh per layer), not {self.cell}")
        size = self.hidden_size
        self.plasticity = plasticity
        self.plastic_alpha = nn.Parameter(torch.zeros(size, size))
        if plasticity == "hebbian":
            self.plastic_rate = nn.Parameter(torch.full((1,), HEBBIAN_RATE_INIT))
        else:
            bound = 1.0 / math.sqrt(size)
            self.modulator_weight = nn.Parameter(torch.empty(1, size).uniform_(-bound, bound))
            self.modulator_bias = nn.Parameter(torch.zeros(1))


class GaussianRNNPolicy(Policy):
    """Stacked recurrent cells and a linear Gaussian head; parameters ``cells.{i}.*``, ``mean.*``, ``log_std``."""

    prefers_one_thread = True
    """The 100-step recurrence runs as many small tensor operations; with passive OpenMP waiting, waking a
    second intra-op thread for each costs more than it saves (measured on HalfCheetahDir, 2 cores: TRPO step
    6.8 s on one thread, 10.2 s on two). Several cores serve it as parts of the tasks side by side instead."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        cell: str = "rnn",
        freeze_recurrent: bool = True,
        init_std: float = 1.0,
        inputs: tuple[str, ...] = ("observation",),
        spectral_radius: float | None = None,
        leak: float = 1.0,
        recurrent_density: float = 1.0,
        plasticity: str = "none",
    ) -> None:
        super().__init__(obs_dim, act_dim, init_std, inputs)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
        if not 0 < leak <= 1:
            raise ValueError(f"leak must be in (0, 1], got {leak}")
        sizes = [self.input_dim, *hidden_sizes]
        self.cells = nn.ModuleList(
            RecurrentLayer(i, o, cell, freeze_recurrent, spectral_radius, recurrent_density)
            for i, o in zip(sizes[:-1], sizes[1:])
        )
        self.leak = leak
        self.mean = nn.Linear(sizes[-1], act_dim)
        nn.init.xavier_uniform_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        self.cell_fn = CELLS[cell]
        self.freeze_recurrent = freeze_recurrent
        self.plasticity = plasticity
        for layer in self.cells:  # last, so that every other weight is drawn as for the non-plastic policy
            layer.make_plastic(plasticity)

    def _recurrent(self, params: Params, i: int) -> tuple[Tensor, Tensor]:
        layer = self.cells[i]
        if self.freeze_recurrent:
            return layer.weight_hh, layer.bias_hh
        return params[f"cells.{i}.weight_hh"], params[f"cells.{i}.bias_hh"]

    def initial_hidden(self, num_tasks: int, batch: int) -> Hidden:
        """Zeros: each layer's state, followed, for a plastic layer, by its Hebbian trace ``(tasks, batch, H, H)``."""
        like = {"device": self.log_std.device, "dtype": self.log_std.dtype}
        hidden = []
        for layer in self.cells:
            hidden.append(torch.zeros(num_tasks, batch, layer.state_size, **like))
            if layer.plasticity != "none":
                hidden.append(torch.zeros(num_tasks, batch, layer.hidden_size, layer.hidden_size, **like))
        return tuple(hidden)

    def _update(self, x_proj: Tensor, state: Tensor, params: Params, i: int) -> Tensor:
        """The next state of layer ``i``: the cell, leakily integrated when ``leak`` < 1."""
        new = self.cell_fn(x_proj, state, *self._recurrent(params, i))
        if self.leak == 1.0:
            return new
        return state + self.leak * (new - state)

    def _plastic_update(self, x_proj: Tensor, h: Tensor, hebb: Tensor, params: Params, i: int) -> tuple[Tensor, Tensor]:
        """The next state and Hebbian trace of plastic layer ``i``: h ``(tasks, n, H)``, Hebb ``(tasks, n, H, H)``
        (through :mod:`maml_rl.policies.plasticity`'s operations, which keep few trace-sized tensors)."""
        drive = plastic_drive(params[f"cells.{i}.plastic_alpha"], hebb, h)  # (α ⊙ Hebb_t) h_{t−1}
        new = self._update(x_proj + drive, h, params, i)
        if self.cells[i].plasticity == "hebbian":  # (1 − η) Hebb_t + η h_t h_{t−1}ᵀ
            rate = params[f"cells.{i}.plastic_rate"]  # (tasks, 1)
            return new, add_outer(hebb * (1 - rate[:, :, None, None]), rate[:, :, None] * new, h)
        weight, bias = params[f"cells.{i}.modulator_weight"], params[f"cells.{i}.modulator_bias"]
        modulation = tanh(linear(new, weight, bias))  # M_t: (tasks, n, 1)
        return new, clip(add_outer(hebb, modulation * new, h))

    def _output(self, state: Tensor, layer: RecurrentLayer) -> Tensor:
        return state[..., : layer.hidden_size] if layer.state_size != layer.hidden_size else state

    def _mean_step(self, obs: Tensor, params: Params, hidden: Hidden) -> tuple[Tensor, Hidden]:
        x, new_hidden, states = obs, [], iter(hidden)
        for i, layer in enumerate(self.cells):
            x_proj = linear(x, params[f"cells.{i}.weight_ih"], params[f"cells.{i}.bias_ih"])
            if layer.plasticity != "none":
                state, hebb = self._plastic_update(x_proj, next(states), next(states), params, i)
                new_hidden += [state, hebb]
            else:
                state = self._update(x_proj, next(states), params, i)
                new_hidden.append(state)
            x = self._output(state, layer)
        return linear(x, params["mean.weight"], params["mean.bias"]), tuple(new_hidden)

    def _mean_sequence(self, obs: Tensor, params: Params) -> Tensor:
        tasks, steps, episodes, _ = obs.shape
        x = obs.reshape(tasks, steps * episodes, -1)
        for i, layer in enumerate(self.cells):
            # input projections of every time step in one batched matmul; only the recurrence loops over t
            x_proj = linear(x, params[f"cells.{i}.weight_ih"], params[f"cells.{i}.bias_ih"])
            x_proj = x_proj.reshape(tasks, steps, episodes, -1)
            state = obs.new_zeros(tasks, episodes, layer.state_size)
            plastic = layer.plasticity != "none"
            hebb = obs.new_zeros(tasks, episodes, layer.hidden_size, layer.hidden_size) if plastic else None
            outputs = []
            # unbind, not x_proj[:, t]: the backward of one unbind is one stack, that of T selects is T
            # full-size zero tensors (quadratic in T)
            for x_t in x_proj.unbind(1):
                if plastic:
                    state, hebb = self._plastic_update(x_t, state, hebb, params, i)
                else:
                    state = self._update(x_t, state, params, i)
                outputs.append(self._output(state, layer))
            x = stack_steps(outputs).reshape(tasks, steps * episodes, -1)
        mean = linear(x, params["mean.weight"], params["mean.bias"])
        return mean.reshape(tasks, steps, episodes, -1)
