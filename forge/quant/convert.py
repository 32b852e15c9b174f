"""Swap a model's `nn.Linear` layers for `TernaryLinear` by module name (BitNet b1.58,
arXiv 2402.17764: every linear projection becomes ternary; embeddings, the output head and
norms stay in higher precision).
"""
from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from forge.quant.ternary_linear import TernaryLinear

# Substrings of module names that stay in full precision. `mem_rates` is the 3-row projection
# that sets the Titans memory's learning, momentum and decay rates: tiny (3 x C weights, where
# a scale alone costs 32 bits) and a gate on the memory's stability, not a feature map.
DEFAULT_KEEP: tuple[str, ...] = ("embed", "lm_head", "norm", "mem_rates")


def is_kept(name: str, keep: Iterable[str]) -> bool:
    """True if the module `name` contains any of the `keep` substrings."""
    return any(k in name for k in keep)


def convert_to_ternary(model: nn.Module, keep: Iterable[str] = DEFAULT_KEEP,
                       per_channel: bool = False, act_bits: int = 8,
                       head_scales: bool = False) -> list[str]:
    """Replace every `nn.Linear` whose name matches no `keep` substring by a `TernaryLinear`
    (W_q = gamma RoundClip(W / gamma, -1, 1), 8-bit activations; arXiv 2402.17764).

    The new layers share the old weight and bias Parameters (so an optimizer built afterwards
    trains the latent weights, and tied weights stay tied). Already-ternary layers are skipped,
    so converting twice changes nothing. The model is changed in place.

    Args:
        model: any module; e.g. `CognateForCausalLM`.
        keep: substrings of module names left in full precision.
        per_channel: one absmean scale per output channel instead of per tensor.
        act_bits: activation bits b (Q_b = 2^(b-1)).
        head_scales: one scale per attention head for the q/k projections of every module with
            `n_heads`, `q_proj` and `k_proj` (32 bits per head). QK-clip (forge.optim.qk_clip_)
            rescales a head's latent rows; with a scale per head the trits stay the same and the
            ternary logits scale exactly as the clip intends. With one scale per tensor they do
            not (the shared absmean moves and other heads' trits flip).

    Returns:
        The dotted names of the converted modules, in `named_modules()` order.
    """
    keep = tuple(keep)
    targets = [(name, m) for name, m in model.named_modules()
               if type(m) is nn.Linear and not is_kept(name, keep)]
    _check_not_tied(model, targets)
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        rows = head_rows(parent, child, linear) if head_scales else None
        setattr(parent, child, TernaryLinear.from_linear(linear, per_channel, act_bits, rows))
    return [name for name, _ in targets]


def head_rows(parent: nn.Module, child: str, linear: nn.Linear) -> int | None:
    """Rows per attention head when `child` is the q or k projection of an attention module
    (one exposing `n_heads`, like those QK-clip acts on), else None."""
    n_heads = getattr(parent, "n_heads", None)
    if child not in ("q_proj", "k_proj") or not isinstance(n_heads, int) or n_heads < 1:
        return None
    return linear.out_features // n_heads if linear.out_features % n_heads == 0 else None


def _check_not_tied(model: nn.Module, targets: list[tuple[str, nn.Linear]]) -> None:
    """A weight shared with a module that stays (a tied lm_head) cannot be ternary alone."""
    chosen = {id(m.weight) for _, m in targets}
    for name, module in model.named_modules(remove_duplicate=False):
        if any(module is m for _, m in targets):
            continue
        for pname, p in module.named_parameters(recurse=False, remove_duplicate=False):
            if id(p) in chosen:
                raise ValueError(f"convert_to_ternary: {name}.{pname} shares its weight with a "
                                 "layer to convert (tied weights); add one of them to `keep`")


def ternary_layers(model: nn.Module) -> dict[str, TernaryLinear]:
    """name -> layer for every `TernaryLinear` in `model`."""
    return {name: m for name, m in model.named_modules() if isinstance(m, TernaryLinear)}
