"""A tiny Cognate model with a Quiet-STaR head (thought length 3), shared by the reasoning tests."""
from __future__ import annotations

import torch

from forge.models import CognateForCausalLM
from forge.reasoning import add_thought_head, thought_config
from tests.models.conftest import tiny_config

SPECIALS = list(range(8))  # ids the tokenizer reserves; thoughts never use them
START, END, EOS, PAD = 3, 4, 1, 2


def thinking_model(seed: int = 0, thought_len: int = 3, **overrides) -> CognateForCausalLM:
    """Random tiny Cognate (memory chunk 4, window 6, recursion and ACT on) plus a thought head."""
    torch.manual_seed(seed)
    base = CognateForCausalLM(tiny_config(**overrides))
    cfg = thought_config(base.config, thought_len, None, 0.2, START, END, SPECIALS)
    return add_thought_head(base, cfg, init_token_id=10, init_scale=1.0).eval()
