"""The control model of the Cognate benchmarks: a plain pre-norm transformer (HF Llama classes)
of the same width, heads, MLP width and vocabulary, with as many layers as asked."""
from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM

from forge.models import CognateConfig


def plain_transformer(config: CognateConfig, n_layers: int | None = None) -> LlamaForCausalLM:
    """A Llama of Cognate's width, heads, d_ff, vocabulary and context; `n_layers` defaults to
    Cognate's number of blocks (one pass of its recursion network)."""
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.d_model,
        num_hidden_layers=n_layers or config.n_layers, num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads, intermediate_size=config.d_ff,
        max_position_embeddings=config.max_seq_len, tie_word_embeddings=True,
        rms_norm_eps=config.norm_eps))


def matched_layers(config: CognateConfig) -> int:
    """Layers that bring the plain transformer closest to Cognate's parameter count."""
    import torch

    from forge.models import CognateForCausalLM

    with torch.device("meta"):
        target = sum(p.numel() for p in CognateForCausalLM(config).parameters())
        sizes = {n: sum(p.numel() for p in plain_transformer(config, n).parameters())
                 for n in range(1, 4 * config.n_layers + 1)}
    return min(sizes, key=lambda n: abs(sizes[n] - target))
