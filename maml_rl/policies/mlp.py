"""The Gaussian MLP policy of MAML (Finn et al. 2017): tanh hidden layers, state-independent log-std."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from maml_rl.policies.base import NONLINEARITIES, Hidden, Params, Policy, linear


class GaussianMLPPolicy(Policy):
    """``mean = W_out · f(… f(W_1 obs + b_1) …) + b_out``; parameters ``layers.{i}.weight/bias``, ``mean.*``, ``log_std``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        nonlinearity: str = "tanh",
        init_std: float = 1.0,
        inputs: tuple[str, ...] = ("observation",),
    ) -> None:
        super().__init__(obs_dim, act_dim, init_std, inputs)
        sizes = [self.input_dim, *hidden_sizes]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.mean = nn.Linear(sizes[-1], act_dim)
        self.nonlinearity = NONLINEARITIES[nonlinearity]
        for layer in [*self.layers, self.mean]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _features(self, x: Tensor, params: Params) -> Tensor:
        for i in range(len(self.layers)):
            x = self.nonlinearity(linear(x, params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]))
        return linear(x, params["mean.weight"], params["mean.bias"])

    def _mean_step(self, obs: Tensor, params: Params, hidden: Hidden) -> tuple[Tensor, Hidden]:
        return self._features(obs, params), hidden

    def _mean_sequence(self, obs: Tensor, params: Params) -> Tensor:
        tasks, steps, episodes, _ = obs.shape
        mean = self._features(obs.reshape(tasks, steps * episodes, -1), params)
        return mean.reshape(tasks, steps, episodes, -1)
