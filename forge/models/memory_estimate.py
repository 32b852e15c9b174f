"""Training memory of one Cognate model: parameters + gradients + optimizer states + activations.

    est = estimate_training_memory(config, batch=8, seq=512, optimizer="mugrokfast")
    est.total  # bytes

Parameters, gradients and optimizer states are exact: the model is built on the `meta` device (no
allocation) and its parameters routed as `forge.optim.route_parameters` does. States per parameter:
Muon 1 (momentum), AdamW 2 (m, v), plus 1 Grokfast EMA buffer each when Grokfast is on.

Activations are what autograd keeps for the backward pass, in units of the tensor shapes of this
code; the coefficients were fitted to `torch.autograd.graph.saved_tensors_hooks` counts
(`measure_saved_activation_bytes`) on 90 small configs with pairwise distinct sizes (largest error
1.2%). With A = n_layers x (n + 1) x supervision_steps block applications under gradient (the T-1
no-grad cycles keep nothing), N = batch x seq tokens, c = ceil(seq / chunk) memory chunks and
N' = batch x c x chunk (padded tokens):

    per block application  N (20 C + 4 d_ff + 3 d_mem + n_heads + 20) + 2 N' H      (memory read)
                           (without memory: N (11 C + 4 d_ff + n_heads + 10))
    per block, once        3 N C + (c - 1) (8 B L H + 8 B d_mem H + 2 B L d_mem)   (memory write)
                           (with checkpointing the write is recomputed in backward: its
                           chain counts as workspace, with the fast weights 2 B c d_mem H)
    per f application      2 N C            per supervision step  3 N C + N V
    once                   18 N + seq^2     (the attention mask, shared by every application)

With gradient checkpointing a block application keeps only its input (N C) and each f
application its two states; one block's activations are recomputed at a time.

Workspace adds the transient logits and their gradient of one step (2 N V). Everything is fp32
(4 bytes): an upper bound under bf16 autocast. The attention kernel is the fused one (no seq^2
probabilities kept), which is what `F.scaled_dot_product_attention` uses on CPU and CUDA here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from forge.models.configuration import CognateConfig

Optimizer = Literal["mugrokfast", "adamw", "sgd"]
FP32 = 4  # bytes per element


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per component of one training step of one model."""

    params: int
    grads: int
    optimizer_states: int
    activations: int
    workspace: int

    @property
    def total(self) -> int:
        """Sum of all components, in bytes."""
        return self.params + self.grads + self.optimizer_states + self.activations + self.workspace

    def as_mib(self) -> dict[str, float]:
        """Every component and the total in MiB."""
        return {k: round(v / 2**20, 1) for k, v in {**asdict(self), "total": self.total}.items()}


def _state_elements(config: CognateConfig, optimizer: Optimizer, grokfast: bool) -> tuple[int, int]:
    """(parameter elements, optimizer-state elements) from a meta-device model."""
    from forge.models.modeling import CognateForCausalLM
    from forge.optim.routing import route_parameters

    with torch.device("meta"):
        model = CognateForCausalLM(config)
    routing = route_parameters(model)
    muon = sum(p.numel() for _, p in routing.muon)
    adamw = sum(p.numel() for _, p in routing.adamw_decay + routing.adamw_no_decay)
    extra = (muon + adamw) if grokfast else 0
    states = {"mugrokfast": muon + 2 * adamw + extra, "adamw": 2 * (muon + adamw), "sgd": 0}
    if optimizer not in states:
        raise ValueError(f"optimizer: got {optimizer!r}; allowed: {', '.join(states)}")
    return muon + adamw, states[optimizer]


def block_elements(config: CognateConfig, batch: int, seq: int) -> int:
    """Elements one MAG block application saves for backward (module docstring formula)."""
    c, N = config, batch * seq
    if not c.memory_enabled:
        return N * (11 * c.d_model + 4 * c.d_ff + c.n_heads + 10)
    padded = batch * math.ceil(seq / c.memory_chunk) * c.memory_chunk
    return (N * (20 * c.d_model + 4 * c.d_ff + 3 * c.memory_dim + c.n_heads + 20)
            + 2 * padded * c.memory_hidden)


def write_elements(config: CognateConfig, batch: int, seq: int, checkpointing: bool = False) -> int:
    """Elements one block's memory write (once per forward pass) saves for backward; none when
    the blocks are checkpointed (the write is recomputed in backward too)."""
    c = config
    if not c.memory_enabled or checkpointing:
        return 0
    L, H, d = c.memory_chunk, c.memory_hidden, c.memory_dim
    updates = math.ceil(seq / L) - 1
    return (3 * batch * seq * c.d_model
            + updates * (8 * batch * L * H + 8 * batch * d * H + 2 * batch * L * d))


def state_elements(config: CognateConfig, batch: int, seq: int) -> int:
    """Fast weights every chunk reads, all blocks: 2 B c d_mem H per block (live through the
    step; saved by the reads without checkpointing, kept for the recompute with it)."""
    c = config
    if not c.memory_enabled:
        return 0
    return c.n_layers * 2 * batch * math.ceil(seq / c.memory_chunk) * c.memory_dim * c.memory_hidden


def activation_elements(config: CognateConfig, batch: int, seq: int,
                        checkpointing: bool = False) -> int:
    """Elements autograd saves in one training forward (formula in the module docstring).

    With gradient checkpointing a block keeps only its input (N C); its inner activations come
    back one block at a time during backward (counted as workspace), and so does each memory write.
    """
    c = config
    N, S = batch * seq, c.trm_supervision_steps
    f_apps = (c.trm_n + 1) * S
    blocks = c.n_layers * f_apps
    if checkpointing:
        per_block, per_f = N * c.d_model, 2 * N * c.d_model
    else:
        per_block, per_f = block_elements(c, batch, seq), 2 * N * c.d_model
    writes = c.n_layers * write_elements(c, batch, seq, checkpointing)
    return (blocks * per_block + writes + f_apps * per_f
            + S * (3 * N * c.d_model + N * c.vocab_size) + 18 * N + seq * seq
            + checkpointing * seq * c.head_dim)  # the shared RoPE tables, measured


def estimate_training_memory(config: CognateConfig, batch: int, seq: int,
                             optimizer: Optimizer = "mugrokfast", grokfast: bool = True,
                             checkpointing: bool = False) -> MemoryEstimate:
    """Bytes of one fp32 training step: params + grads + optimizer states + activations + workspace.

    `optimizer`: "mugrokfast" (Muon 1 + AdamW 2 states, + 1 Grokfast buffer each if `grokfast`),
    "adamw" (2) or "sgd" (0). `checkpointing`: gradient checkpointing of the MAG blocks.
    """
    if batch < 1 or seq < 1:
        raise ValueError(f"batch and seq must be >= 1, got batch={batch}, seq={seq}")
    params, states = _state_elements(config, optimizer, grokfast)
    workspace = 2 * batch * seq * config.vocab_size  # logits of one step and their gradient
    if checkpointing:
        workspace += block_elements(config, batch, seq)  # one block recomputed at a time
        workspace += state_elements(config, batch, seq) + write_elements(config, batch, seq)
    return MemoryEstimate(params=params * FP32, grads=params * FP32,
                          optimizer_states=states * FP32,
                          activations=activation_elements(config, batch, seq, checkpointing) * FP32,
                          workspace=workspace * FP32)


def largest_batch(config: CognateConfig, seq: int, budget_bytes: int, n_models: int = 1,
                  per_process_overhead: int = 400 * 2**20, optimizer: Optimizer = "mugrokfast",
                  checkpointing: bool = False) -> int:
    """Largest batch such that `n_models` trainings (each with a CUDA context of
    `per_process_overhead` bytes, ~300-500 MiB in practice) fit in `budget_bytes`; 0 if none."""
    def fits(b: int) -> bool:
        one = estimate_training_memory(config, b, seq, optimizer, checkpointing=checkpointing)
        return n_models * (one.total + per_process_overhead) <= budget_bytes

    best = 0
    while fits(best + 1):
        best += 1
    return best


def measure_saved_activation_bytes(model: torch.nn.Module, input_ids: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter storages autograd saves in one training forward.

    The check of `activation_elements`: hooks see every tensor saved for backward; views of one
    storage count once; weights and buffers are not activations.
    """
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids, labels=input_ids)
    return sum(seen.values())
