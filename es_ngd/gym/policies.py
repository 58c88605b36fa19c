"""Policies: a flat parameter vector and a batched forward pass ``(k candidates, k observations) → k outputs``.

:class:`LinearPolicy` and :class:`MLPPolicy` are numpy only (fast at the sizes of classic-control and
MuJoCo policies, no torch needed). A weight matrix ``W`` (``out × in``) is stored as ``vec(W)``
column-major, the layout of es_ngd's ``kron(F1,F2)`` structures (``F1`` acts on the inputs, ``F2`` on
the outputs), followed by its bias; :meth:`blocks` lists those blocks for per-layer structures.
:class:`TorchPolicy` wraps any ``torch.nn.Module`` (torch is imported only there); its parameters go
to and from one flat vector in ``module.parameters()`` order, and a weight ``(out, in)`` flattened
row-major is ``vec(Wᵀ)`` column-major, so its block has the shape ``(in, out)``.

Every policy returns raw outputs; :mod:`es_ngd.gym.spaces` turns them into actions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}


@dataclass(frozen=True)
class Block:
    """Consecutive parameters: a weight matrix (``vec`` column-major of ``shape = (rows, cols)``) or a vector."""

    kind: str  # "weight" or "bias" (or "other" for a torch parameter that is neither)
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Policy(Protocol):
    obs_dim: int
    act_dim: int
    num_parameters: int

    def forward(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray: ...

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray: ...

    def blocks(self) -> list[Block]: ...

    def input_scale(self) -> float: ...

    def spec(self) -> dict[str, Any]: ...


class MLPPolicy:
    """``out = W_L φ(… φ(W_1 o + b_1) …) + b_L`` for hidden sizes ``hidden`` (empty: linear) and activation φ.

    Initialisation: LeCun-normal hidden weights (``N(0, 1/fan_in)``, the scale at which ``tanh`` units are
    neither saturated nor linear), zero biases and a zero output layer, so the initial policy outputs 0
    and every action variation comes from the search distribution (as ARS's zero-initialised linear policy).
    """

    kind = "mlp"

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                 bias: bool = True) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be positive integers, got {hidden!r}")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation, self.bias = hidden, activation, bool(bias)
        self.sizes = (self.obs_dim, *hidden, self.act_dim)
        self.num_parameters = sum(b.size for b in self.blocks())

    def blocks(self) -> list[Block]:
        out = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            out.append(Block("weight", (fan_out, fan_in)))
            if self.bias:
                out.append(Block("bias", (fan_out,)))
        return out

    def forward(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Outputs ``(k, act_dim)`` of candidates ``params`` (``(k, p)``) on observations ``obs`` (``(k, obs_dim)``).

        The same arithmetic for any ``k`` (one einsum per layer whose reduction runs over the inputs only),
        so a candidate's actions do not depend on how many candidates share the call: the vectorised
        evaluator's results equal the serial one's.
        """
        k, h, offset = params.shape[0], obs, 0
        act = ACTIVATIONS[self.activation]
        layers = len(self.sizes) - 1
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            # vec(W) column-major: entry W[r, c] at c·out + r, so the reshape is Wᵀ (in × out)
            w_t = params[:, offset:offset + fan_in * fan_out].reshape(k, fan_in, fan_out)
            offset += fan_in * fan_out
            h = np.einsum("ki,kio->ko", h, w_t)
            if self.bias:
                h = h + params[:, offset:offset + fan_out]
                offset += fan_out
            if layer < layers - 1:
                h = act(h)
        return h

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        parts = []
        layers = len(self.sizes) - 1
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            scale = 0.0 if layer == layers - 1 else 1.0 / math.sqrt(fan_in)
            parts.append((scale * rng.standard_normal((fan_out, fan_in))).reshape(-1, order="F"))
            if self.bias:
                parts.append(np.zeros(fan_out))
        return np.concatenate(parts)

    def input_scale(self) -> float:
        """``1/√fan_in`` of the first layer: with normalised observations, a perturbation σ of the first
        layer's weights moves its outputs by about ``σ√fan_in``; σ₀ is set relative to this."""
        return 1.0 / math.sqrt(self.obs_dim)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "hidden": list(self.hidden), "activation": self.activation, "bias": self.bias}


class LinearPolicy(MLPPolicy):
    """``out = W o + b``: an MLP without hidden layers (initialised at zero)."""

    kind = "linear"

    def __init__(self, obs_dim: int, act_dim: int, bias: bool = True, activation: str = "tanh") -> None:
        super().__init__(obs_dim, act_dim, hidden=(), activation=activation, bias=bias)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "bias": self.bias}


class TorchPolicy:
    """Any ``torch.nn.Module`` mapping a batch of observations ``(1, obs_dim)`` to outputs ``(1, act_dim)``."""

    kind = "torch"

    def __init__(self, module: Any, obs_dim: int, act_dim: int) -> None:
        import torch  # only here: the numpy policies need no torch

        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"a torch policy must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        parameters = list(module.parameters())
        if not parameters:
            raise ValueError("the torch module has no parameters to search")
        self.dtype = parameters[0].dtype
        self.num_parameters = sum(p.numel() for p in parameters)
        with torch.no_grad():
            out = module(torch.zeros((1, self.obs_dim), dtype=self.dtype))
        if tuple(out.shape) != (1, self.act_dim):
            raise ValueError(f"the torch module maps observations (1, {self.obs_dim}) to {tuple(out.shape)}, but "
                             f"the action space needs (1, {self.act_dim})")

    def blocks(self) -> list[Block]:
        out = []
        for p in self.module.parameters():
            if p.ndim == 2:  # (out, in) row-major is vec(Wᵀ) column-major
                out.append(Block("weight", (int(p.shape[1]), int(p.shape[0]))))
            else:
                out.append(Block("bias" if p.ndim == 1 else "other", (int(p.numel()),)))
        return out

    def forward(self, params: np.ndarray, obs: np.ndarray) -> np.ndarray:
        import torch
        from torch.nn.utils import vector_to_parameters

        out = np.empty((params.shape[0], self.act_dim))
        with torch.no_grad():
            for j in range(params.shape[0]):  # one module, its parameters replaced per candidate
                vector_to_parameters(torch.as_tensor(params[j], dtype=self.dtype), self.module.parameters())
                out[j] = self.module(torch.as_tensor(obs[j:j + 1], dtype=self.dtype)).double().numpy()[0]
        return out

    def initial_parameters(self, rng: np.random.Generator) -> np.ndarray:
        from torch.nn.utils import parameters_to_vector

        return parameters_to_vector(self.module.parameters()).detach().double().cpu().numpy().copy()

    def input_scale(self) -> float:
        return 1.0 / math.sqrt(self.obs_dim)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "module": f"{type(self.module).__module__}.{type(self.module).__qualname__}"}


POLICY_KINDS = ("linear", "mlp")


def make_policy(policy: Any, obs_dim: int, act_dim: int, *, hidden: Sequence[int] = (64, 64),
                activation: str = "tanh") -> Policy:
    """A policy from a name (``"linear"``, ``"mlp"``), a spec dict (as :meth:`spec` writes), or a torch module."""
    if isinstance(policy, dict):
        spec = dict(policy)
        kind = spec.pop("kind", None)
        if kind == "linear":
            return LinearPolicy(obs_dim, act_dim, **spec)
        if kind == "mlp":
            return MLPPolicy(obs_dim, act_dim, **spec)
        raise ValueError(f"a saved policy spec must have kind 'linear' or 'mlp' (a torch module is not saved "
                         f"as code: pass the module itself), got {kind!r}")
    if isinstance(policy, str):
        if policy == "linear":
            return LinearPolicy(obs_dim, act_dim)
        if policy == "mlp":
            return MLPPolicy(obs_dim, act_dim, hidden=hidden, activation=activation)
        raise ValueError(f"policy must be one of {POLICY_KINDS} or a torch.nn.Module, got {policy!r}")
    if hasattr(policy, "parameters") and callable(policy):
        return TorchPolicy(policy, obs_dim, act_dim)
    if all(hasattr(policy, name) for name in ("forward", "num_parameters", "blocks")):
        return policy  # a policy object already
    raise TypeError(f"policy must be 'linear', 'mlp', a spec dict or a torch.nn.Module, got {type(policy).__name__}")
