"""The default-size model memorises one repeated batch: the loss goes near zero."""
from __future__ import annotations

import torch

from forge.config.model import ModelConfig
from forge.models import CognateForCausalLM, cognate_config_from


def test_default_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(cognate_config_from(ModelConfig(), vocab_size=2048)).train()
    ids = torch.randint(0, 2048, (4, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    first = None
    for _ in range(70):
        out = model(ids, labels=ids)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.lm_loss.item()
    model.eval()
    with torch.no_grad():
        final = model(ids, labels=ids).loss.item()
    assert first > 7.0  # ~ln(2048) at init
    assert final < 0.1, f"eval loss after 70 steps: {final:.4f}"
