"""Which parameter goes to which optimizer.

Muon (Jordan et al. 2024, https://kellerjordan.github.io/posts/muon/) orthogonalises the update
of a weight matrix, which suits the hidden linear maps of a network and nothing else. So:

- Muon: the 2-D `weight` of every `nn.Linear` inside the network;
- AdamW: token embeddings and the tied output head, gates (`mag_gate`), memory rates
  (`mem_rates`), the Quiet-STaR mixing head (`mix_in`, `mix_out`: its output is one logit, a
  1-row matrix Muon cannot orthogonalise usefully), the memory's fast-weight initialisation, the halting head, norms, biases and
  every tensor with fewer than 2 dimensions.

AdamW applies weight decay to its matrices only. Frozen parameters are left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

# nn.Linear modules whose weight is not a hidden map: they go to AdamW.
ADAMW_LINEARS = ("lm_head", "mag_gate", "mem_rates", "mix_in", "mix_out")


@dataclass
class ParamRouting:
    """Named parameters per group; each trainable parameter is in exactly one list."""

    muon: list[tuple[str, nn.Parameter]] = field(default_factory=list)
    adamw_decay: list[tuple[str, nn.Parameter]] = field(default_factory=list)
    adamw_no_decay: list[tuple[str, nn.Parameter]] = field(default_factory=list)

    def groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """The three groups by name."""
        return {"muon": self.muon, "adamw_decay": self.adamw_decay,
                "adamw_no_decay": self.adamw_no_decay}


def _muon_ids(model: nn.Module) -> set[int]:
    adamw, muon = set(), set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Embedding) or leaf in ADAMW_LINEARS:
            adamw.update(id(p) for p in module.parameters(recurse=False))
        elif isinstance(module, nn.Linear) and module.weight.ndim == 2:
            muon.add(id(module.weight))
    return muon - adamw  # a tied head shares the embedding tensor: AdamW wins


def route_parameters(model: nn.Module) -> ParamRouting:
    """Split the trainable parameters of `model` into Muon / AdamW-decay / AdamW-no-decay."""
    muon_ids, routing = _muon_ids(model), ParamRouting()
    for name, p in model.named_parameters():  # shared (tied) tensors are listed once
        if not p.requires_grad:
            continue
        if id(p) in muon_ids:
            routing.muon.append((name, p))
        elif p.ndim >= 2:
            routing.adamw_decay.append((name, p))
        else:
            routing.adamw_no_decay.append((name, p))
    return routing
