"""`CognateConfig`: the Hugging Face config of the Cognate model, flat and JSON-serialisable.

Built from the pipeline's `ModelConfig` by `cognate_config_from(model_cfg, vocab_size)`. Every
bad value raises `ValueError` naming the field, before any weight is allocated.
"""
from __future__ import annotations

from operator import attrgetter
from typing import Any

from transformers import PretrainedConfig

from forge.config.model import HF_FIELDS, ModelConfig


class CognateConfig(PretrainedConfig):
    """Hyper-parameters of `CognateForCausalLM` (TRM x Titans-MAG x ACT; DESIGN.md section 5).

    The output head is always tied to the token embedding (`tie_word_embeddings=True`).
    """

    model_type = "cognate"

    def __init__(self, vocab_size: int = 2048, d_model: int = 128, n_layers: int = 2,
                 n_heads: int = 4, d_ff: int = 384, max_seq_len: int = 256,
                 window: int = 64, rope_theta: float = 10000.0, norm_eps: float = 1e-6,
                 dropout: float = 0.0, init_std: float | None = None, gate_entropy_weight: float = 0.001,
                 memory_enabled: bool = True, memory_dim: int | None = None,
                 memory_hidden: int | None = None, memory_chunk: int = 16,
                 memory_lr_max: float = 1.0, memory_decay_init: float = 0.99,
                 memory_momentum_init: float = 0.9, trm_T: int = 2, trm_n: int = 2,
                 trm_supervision_steps: int = 2, act_threshold: float = 0.5,
                 act_loss_weight: float = 0.5, thought_len: int = 0,
                 thought_mixer_hidden: int | None = None, thought_mix_init: float = 0.2,
                 thought_start_id: int = 3, thought_end_id: int = 4,
                 thought_banned_ids: list[int] | None = None, **kwargs: Any) -> None:
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, n_layers
        self.n_heads, self.d_ff, self.max_seq_len = n_heads, d_ff, max_seq_len
        self.window, self.rope_theta, self.norm_eps = window, rope_theta, norm_eps
        self.dropout, self.init_std = dropout, init_std
        self.gate_entropy_weight = gate_entropy_weight
        self.memory_enabled = memory_enabled
        self.memory_dim = memory_dim if memory_dim is not None else d_model // 2
        self.memory_hidden = memory_hidden if memory_hidden is not None else 2 * self.memory_dim
        self.memory_chunk, self.memory_lr_max = memory_chunk, memory_lr_max
        self.memory_decay_init, self.memory_momentum_init = memory_decay_init, memory_momentum_init
        self.trm_T, self.trm_n, self.trm_supervision_steps = trm_T, trm_n, trm_supervision_steps
        self.act_threshold, self.act_loss_weight = act_threshold, act_loss_weight
        # Quiet-STaR (Phase 3; forge.models.thoughts): thought_len 0 = no thought head, the
        # plain causal LM. The ids are the tokenizer's reserved start/end-of-thought tokens;
        # banned ids (special tokens) are never sampled inside a thought nor emitted.
        self.thought_len, self.thought_mix_init = thought_len, thought_mix_init
        self.thought_mixer_hidden = thought_mixer_hidden if thought_mixer_hidden else d_model
        self.thought_start_id, self.thought_end_id = thought_start_id, thought_end_id
        self.thought_banned_ids = list(thought_banned_ids or [])
        # Aliases the HF utilities (generation, peft, size helpers) look for.
        self.hidden_size, self.num_hidden_layers = d_model, n_layers
        self.num_attention_heads = n_heads
        kwargs.pop("tie_word_embeddings", None)
        kwargs.setdefault("use_cache", False)
        super().__init__(tie_word_embeddings=True, **kwargs)
        self.validate_fields()

    def validate_fields(self) -> None:
        """Raise `ValueError` naming the first field whose value cannot build a model."""
        positive = ["vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len",
                    "window", "memory_dim", "memory_hidden", "memory_chunk", "trm_T", "trm_n",
                    "trm_supervision_steps"]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CognateConfig.{name}: got {value!r}; allowed: an integer >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"CognateConfig.n_heads: got {self.n_heads}; allowed: a divisor of "
                             f"d_model={self.d_model}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"CognateConfig.n_heads: got {self.n_heads}; head size "
                             f"{self.d_model // self.n_heads} must be even for RoPE")
        for name in ("memory_decay_init", "memory_momentum_init", "act_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"CognateConfig.{name}: got {getattr(self, name)!r}; "
                                 "allowed: a number in (0, 1)")
        self.validate_thought_fields()
        if self.init_std is not None and not self.init_std > 0:
            raise ValueError(f"CognateConfig.init_std: got {self.init_std!r}; allowed: > 0 or None")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CognateConfig.dropout: got {self.dropout!r}; allowed: [0, 1)")

    def validate_thought_fields(self) -> None:
        """Raise `ValueError` naming the first Quiet-STaR field that is out of range."""
        t = self.thought_len
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"CognateConfig.thought_len: got {t!r}; allowed: an integer >= 0")
        if not 0.0 < self.thought_mix_init < 1.0:
            raise ValueError(f"CognateConfig.thought_mix_init: got {self.thought_mix_init!r}; "
                             "allowed: a number in (0, 1)")
        for name in ("thought_start_id", "thought_end_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"CognateConfig.{name}: got {getattr(self, name)!r}; allowed: "
                                 f"a token id in [0, {self.vocab_size})")

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.d_model // self.n_heads


def cognate_config_from(model_cfg: ModelConfig, vocab_size: int, **overrides: Any) -> CognateConfig:
    """The HF config for `model_cfg` with the tokenizer's `vocab_size`; `overrides` win.

    Example: `CognateForCausalLM(cognate_config_from(cfg.model, tok.vocab_size))`.
    """
    fields: dict[str, Any] = {"vocab_size": vocab_size}
    for flat, dotted in HF_FIELDS.items():
        fields[flat] = attrgetter(dotted)(model_cfg)
    unknown = set(overrides) - set(fields)
    if unknown:
        raise ValueError(f"cognate_config_from: unknown override(s) {sorted(unknown)}; "
                         f"allowed: {', '.join(sorted(fields))}")
    fields.update(overrides)
    return CognateConfig(**fields)
