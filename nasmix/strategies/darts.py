"""DARTS: Differentiable Architecture Search (Liu, Simonyan and Yang, ICLR 2019).

Example:
    >>> import numpy as np
    >>> from nasmix import registry
    >>> from nasmix.strategies.base import Budget
    >>> from nasmix.testing import tiny_search_data
    >>> darts = registry.create("strategy", "darts", order=2)
    >>> arch = darts.search(registry.create("space", "nb201"), None, tiny_search_data(),
    ...                     Budget(epochs=1, batch_size=16), lambda e: None, np.random.default_rng(0))
    >>> arch.space
    'nb201'
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasmix import registry
from nasmix.errors import ConfigError
from nasmix.strategies.oneshot import BilevelConfig, Drive, OneShot, SearchState

LossFn = Callable[[tuple, bool], tuple[torch.Tensor, torch.Tensor]]
Hyper = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]  # (architecture gradients, valid loss, logits)


def check_bilevel(config: BilevelConfig) -> None:
    """ConfigError unless the shared bilevel options are possible."""
    bad = [
        name
        for name, ok in (
            ("lr", config.lr > 0 and 0 <= config.lr_min <= config.lr),
            ("momentum", 0 <= config.momentum < 1),
            ("weight_decay", config.weight_decay >= 0),
            ("grad_clip", config.grad_clip >= 0),
            ("arch_lr", config.arch_lr > 0),
            ("arch_beta1", 0 <= config.arch_beta1 < 1),
            ("arch_weight_decay", config.arch_weight_decay >= 0),
        )
        if not ok
    ]
    if bad:
        raise ConfigError(
            f"impossible search values: {', '.join(f'{k}={getattr(config, k)!r}' for k in bad)}"
        )


def softmax_weights(state: SearchState, for_arch: bool) -> dict[str, torch.Tensor]:
    """softmax(alpha) per edge; detached unless it feeds an architecture step."""
    with torch.set_grad_enabled(for_arch):
        return {g: a.softmax(-1) for g, a in state.alphas.items()}


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """Full fp32 in convolutions and matrix products inside the block (no TF32, which
    cuDNN convolutions use by default on Ampere and later); the settings are restored after."""
    new_api = [
        k
        for k in (getattr(torch.backends.cudnn, "conv", None), getattr(torch.backends.cuda, "matmul", None))
        if k is not None and hasattr(k, "fp32_precision")
    ]
    if new_api:  # torch >= 2.9; reading the legacy flags as well would raise once these are set
        saved = [k.fp32_precision for k in new_api]
        for k in new_api:
            k.fp32_precision = "ieee"
        try:
            yield
        finally:
            for k, value in zip(new_api, saved):
                k.fp32_precision = value
        return
    legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy


def darts_hypergradient(
    loss_fn: LossFn,
    arch_params: Sequence[torch.Tensor],
    weight_params: Sequence[torch.Tensor],
    train: tuple,
    valid: tuple,
    xi: float,
    scale: float = 0.01,
    amp: bool = False,
    momentum_buffers: Sequence[torch.Tensor | None] | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> Hyper:
    """DARTS's second-order architecture gradient (its equations 6-8).

    The virtual step is the weight optimizer's next SGD step, as DARTS's
    architect takes it: w' = w - xi * (mu * buf + grad_w L_train(w, a) + wd * w),
    with buf the momentum buffer (zero where there is none yet). The gradient of
    L_val(w', a) is then grad_a L_val(w', a) - xi * H v, where v = grad_w' L_val(w', a)
    and the Hessian-vector product H v = grad^2_{a,w} L_train(w, a) v is the central
    difference (grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 eps),
    w+- = w +- eps v, eps = scale / ||v||: the momentum and weight-decay terms do
    not depend on a. The weights end where they started.

    Args:
        loss_fn: (batch, amp) -> (loss, logits); recomputes the architecture weights
            from `arch_params` on each call so gradients reach them.
        arch_params, weight_params: the two sets of leaves.
        train, valid: (x, y) batches.
        xi: the virtual step's learning rate (DARTS: the weights' current lr).
        scale: DARTS's 0.01 in eps = 0.01 / ||v||.
        amp: autocast for the virtual step and the validation gradient; the
            finite difference always runs in IEEE fp32 (no autocast, no TF32),
            where bf16 or TF32 rounding would swamp the tiny weight perturbation.
        momentum_buffers: the weight optimizer's momentum buffer of each weight
            (None entries, or None for all: no buffer yet).
        momentum, weight_decay: the weight optimizer's mu and wd.

    Returns:
        (one gradient per architecture parameter, the validation loss at w', its logits).

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True); a = torch.tensor([0.5], requires_grad=True)
        >>> fn = lambda batch, amp: (((w * a - batch[0]) ** 2).sum(), w * a)
        >>> xs, ys = (torch.tensor([0.0]),), (torch.tensor([1.0]),)
        >>> g, loss, _ = darts_hypergradient(fn, [a], [w], xs, ys, 0.1)
        >>> round(float(g[0]), 4)
        -0.8925
    """
    arch_params, weight_params = list(arch_params), list(weight_params)
    # The weight updates below are multi-tensor (foreach) kernels: a supernet has a thousand
    # parameter tensors, and one kernel each per update would dominate a GPU step.
    loss_t, _ = loss_fn(train, amp)
    g_w = torch.autograd.grad(loss_t, weight_params, allow_unused=True)
    buffers = list(momentum_buffers) if momentum_buffers is not None else [None] * len(weight_params)
    with torch.no_grad():
        backup = [torch.empty_like(p) for p in weight_params]
        torch._foreach_copy_(backup, weight_params)
        if weight_decay:  # a weight without a gradient still takes wd * w and mu * buf, as in DARTS's
            torch._foreach_mul_(weight_params, 1.0 - xi * weight_decay)
        stepped = [(p, g.to(p.dtype)) for p, g in zip(weight_params, g_w) if g is not None]
        if stepped:
            torch._foreach_sub_([p for p, _ in stepped], torch._foreach_mul([g for _, g in stepped], xi))
        moved = [(p, b.to(p.dtype)) for p, b in zip(weight_params, buffers) if b is not None]
        if momentum and moved:
            scaled = torch._foreach_mul([b for _, b in moved], xi * momentum)
            torch._foreach_sub_([p for p, _ in moved], scaled)
    loss_v, logits_v = loss_fn(valid, amp)
    grads = torch.autograd.grad(loss_v, arch_params + weight_params, allow_unused=True)
    d_arch = [torch.zeros_like(a) if g is None else g for a, g in zip(arch_params, grads[: len(arch_params)])]
    v = [
        torch.zeros_like(p) if g is None else g.to(p.dtype)
        for p, g in zip(weight_params, grads[len(arch_params) :])
    ]
    eps = scale / torch.linalg.vector_norm(torch.stack(torch._foreach_norm(v))).clamp_min(1e-12)
    sides = []
    with ieee_fp32():
        for sign in (1.0, -1.0):
            with torch.no_grad():
                torch._foreach_copy_(weight_params, backup)
                torch._foreach_add_(weight_params, torch._foreach_mul(v, sign * eps))  # w + sign * eps * v
            loss, _ = loss_fn(train, False)
            sides.append(torch.autograd.grad(loss, arch_params, allow_unused=True))
    with torch.no_grad():
        torch._foreach_copy_(weight_params, backup)
    hyper = []
    for a, d, gp, gn in zip(arch_params, d_arch, *sides):
        hvp = (torch.zeros_like(a) if gp is None else gp) - (torch.zeros_like(a) if gn is None else gn)
        hyper.append(d - xi * hvp / (2 * eps))
    return hyper, loss_v.detach(), logits_v.detach()


@registry.register("strategy", "darts")
class Darts(OneShot):
    """DARTS (Liu et al. 2019): softmax-relaxed ops, alternating architecture (Adam) and weight (SGD) steps.

    Each edge mixes its ops with weights softmax(alpha). Per step: an
    architecture step on a validation batch (first order: the gradient at the
    current weights; second order: the paper's unrolled gradient, see
    `darts_hypergradient`), then an SGD step of the weights on a training
    batch. The arch decodes by each space's DARTS rule (strongest op per
    edge; per node the strongest edges in the DARTS space).

    Defaults are the paper's CIFAR-10 search: weights SGD lr 0.025 cosine to
    0.001, momentum 0.9, weight decay 3e-4, gradient clip 5; architecture Adam
    lr 3e-4, betas (0.5, 0.999), weight decay 1e-3; 50 epochs and batch 64
    come from the Budget. `order` 1 is the default, as NASLib's; the paper's
    best cell used order 2.

    The second-order virtual step is the one DARTS's code (architect.py)
    takes: the weight optimizer's next SGD step without clipping,
    w - xi * (mu * buf + grad_w L_train + wd * w), xi the current learning
    rate, mu and buf the momentum and its buffer, wd the weight decay (the
    paper writes w - xi * grad_w L_train).

    Departures: a weight with no momentum buffer yet takes a zero buffer
    (DARTS's code zeroes every buffer until all of them exist: the same
    after the first step, when every weight has one); under bf16 autocast
    the virtual step and the validation gradient run in bf16, the
    finite-difference Hessian-vector product in IEEE fp32 (TF32 off too:
    DARTS ran in fp32); batch norm running statistics are updated by every
    forward, the unrolled ones included, as in DARTS's code. (See
    nasmix.strategies.oneshot for the departures of the shared loop.)
    """

    config: Config  # its own options (OneShot.__init__ builds them)

    @dataclass(frozen=True)
    class Config(BilevelConfig):
        """DARTS options (the shared bilevel ones, see BilevelConfig, plus `order`).

        Attributes:
            order: 1 (first-order approximation) or 2 (the unrolled gradient).
        """

        order: int = 1

        def __post_init__(self) -> None:
            check_bilevel(self)
            if self.order not in (1, 2):
                raise ConfigError(f"darts order must be 1 or 2, got {self.order!r}")

    def drive(self, state: SearchState, for_arch: bool) -> Drive:
        return Drive(softmax_weights(state, for_arch))

    def arch_step(self, state: SearchState, train: tuple, valid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.order == 1:
            return super().arch_step(state, train, valid)

        def loss_fn(batch: tuple, amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
            d = self.forward_args(state, for_arch=True)
            with state.accel.autocast(state.device, amp):
                logits = self._forward(state, batch[0], d)
            return nn.functional.cross_entropy(logits.float(), batch[1]), logits

        params, weights, c = state.arch_params(), state.weight_params(), self.config
        buffers = [state.w_opt.state.get(w, {}).get("momentum_buffer") for w in weights]
        hyper, loss, logits = darts_hypergradient(
            loss_fn,
            params,
            weights,
            train,
            valid,
            state.lr,
            amp=c.amp,
            momentum_buffers=buffers,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
        )
        for p, g in zip(params, hyper):
            p.grad = g
        state.a_opt.step()
        return loss, logits
