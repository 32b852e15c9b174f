"""Model section: the Cognate architecture's hyper-parameters (DESIGN.md section 5).

Cognate = TRM recursion (arXiv 2510.04871) over a small stack of Titans MAG blocks
(arXiv 2501.00663) with per-position ACT halting. `forge.models.cognate_config_from` turns this
section plus the tokenizer's vocabulary size into a Hugging Face `CognateConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from forge.config.schema import ConfigError, option


@dataclass(frozen=True)
class AttentionConfig:
    """The causal sliding-window attention branch of every MAG block."""

    n_heads: int = option(4, "Attention heads; must divide model.d_model.", ge=1)
    window: int = option(64, "Sliding window in tokens: a token sees itself and the window-1 "
                             "tokens before it, never a later one.", ge=1)
    rope_theta: float = option(10000.0, "RoPE base frequency.", gt=0)


@dataclass(frozen=True)
class MemoryConfig:
    """The Titans neural long-term memory branch (a small MLP updated while reading)."""

    enabled: bool = option(True, "Use the memory branch; false leaves attention + MLP only.")
    dim: Optional[int] = option(None, "Key/value size of the memory; null means d_model // 2.",
                                ge=1)
    hidden: Optional[int] = option(None, "Hidden width of the memory MLP (its capacity); "
                                         "null means 2 * dim.", ge=1)
    chunk_size: int = option(16, "Tokens per memory update: chunk c reads the memory written by "
                                 "chunks < c only.", ge=1)
    lr_max: float = option(1.0, "Upper bound of the data-dependent inner learning rate theta_t.",
                           gt=0)
    decay_init: float = option(0.99, "Initial retention 1 - alpha_t (forgetting gate).", gt=0, lt=1)
    momentum_init: float = option(0.9, "Initial surprise momentum eta_t.", gt=0, lt=1)


@dataclass(frozen=True)
class TRMConfig:
    """Tiny Recursive Model schedule: z <- f(z, y + x) n times, then y <- f(y, z); T cycles."""

    T: int = option(2, "Cycles per supervision step; the first T-1 run without gradient.", ge=1)
    n: int = option(2, "Latent updates z <- f(z, y + x) per cycle.", ge=1)
    supervision_steps: int = option(2, "Deep-supervision steps (y, z detached between steps); "
                                       "also the ACT step limit at inference.", ge=1)


@dataclass(frozen=True)
class ACTConfig:
    """Adaptive computation: a Q-head predicts, per position, that its answer is already right."""

    threshold: float = option(0.5, "Halt a position once sigmoid(q) exceeds this.", gt=0, lt=1)
    loss_weight: float = option(0.5, "Weight of the Q-head BCE in the training loss.", ge=0)


@dataclass(frozen=True)
class ModelConfig:
    """Size and shape of the Cognate model (the tokenizer supplies the vocabulary size)."""

    d_model: int = option(128, "Hidden size.", ge=8)
    n_layers: int = option(2, "MAG blocks in the shared recursion network f.", ge=1)
    d_ff: int = option(384, "Hidden width of the SwiGLU MLP.", ge=1)
    max_seq_len: int = option(256, "Longest sequence the model is built for.", ge=2)
    norm_eps: float = option(1e-6, "RMSNorm epsilon.", gt=0)
    dropout: float = option(0.0, "Dropout on residual branches.", ge=0, lt=1)
    init_std: Optional[float] = option(
        None, "Std of the normal init of linear weights; null: 1/sqrt(fan_in) (LeCun, as TRM). "
              "The embedding is always at 1/sqrt(d_model).", gt=0)
    gate_entropy_weight: float = option(
        0.001, "Weight of the mean Bernoulli entropy of the MAG gates added to the loss "
               "(positive: gates commit to a branch; negative: gates keep mixing).")
    attention: AttentionConfig = option(default_factory=AttentionConfig, doc="Attention branch.")
    memory: MemoryConfig = option(default_factory=MemoryConfig, doc="Long-term memory branch.")
    trm: TRMConfig = option(default_factory=TRMConfig, doc="Recursion schedule.")
    act: ACTConfig = option(default_factory=ACTConfig, doc="Halting.")

    def check(self, path: str) -> None:
        """Cross-field rules; the error names the key the user typed."""
        where = f"{path}." if path else ""
        heads = self.attention.n_heads
        if self.d_model % heads:
            raise ConfigError(f"{where}attention.n_heads: got {heads}; allowed: a divisor of "
                              f"{where}d_model={self.d_model}")
        if (self.d_model // heads) % 2:
            raise ConfigError(f"{where}attention.n_heads: got {heads}; allowed: a value giving an "
                              f"even head size (RoPE), d_model={self.d_model}")


# The flat `CognateConfig` (config.json) field of every `model` section key, as a dotted path in
# the section: one table for building a model from the YAML and for checking a saved config.json.
HF_FIELDS: dict[str, str] = {
    "d_model": "d_model", "n_layers": "n_layers", "d_ff": "d_ff", "max_seq_len": "max_seq_len",
    "norm_eps": "norm_eps", "dropout": "dropout", "init_std": "init_std",
    "gate_entropy_weight": "gate_entropy_weight", "n_heads": "attention.n_heads",
    "window": "attention.window", "rope_theta": "attention.rope_theta",
    "memory_enabled": "memory.enabled", "memory_dim": "memory.dim",
    "memory_hidden": "memory.hidden", "memory_chunk": "memory.chunk_size",
    "memory_lr_max": "memory.lr_max", "memory_decay_init": "memory.decay_init",
    "memory_momentum_init": "memory.momentum_init", "trm_T": "trm.T", "trm_n": "trm.n",
    "trm_supervision_steps": "trm.supervision_steps", "act_threshold": "act.threshold",
    "act_loss_weight": "act.loss_weight"}
