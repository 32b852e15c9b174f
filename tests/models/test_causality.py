"""Causality: no logit at position <= t may depend on a token at position > t (DESIGN.md 5)."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateForCausalLM
from forge.models.attention import SlidingWindowAttention
from forge.models.layers import rope_tables
from forge.models.memory import NeuralMemory
from tests.models.conftest import tiny_config


def _logits(model: CognateForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)  # identical dropout masks if any
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_future_tokens_never_change_past_logits(mode: str) -> None:
    torch.manual_seed(1)
    model = CognateForCausalLM(tiny_config())
    model.train(mode == "train")
    ids = torch.randint(0, 97, (2, 23))  # 23: the last memory chunk is partial
    base = _logits(model, ids)
    for t in (0, 3, 4, 9, 15, 21):
        edited = ids.clone()
        edited[:, t + 1:] = torch.randint(0, 97, edited[:, t + 1:].shape)
        out = _logits(model, edited)
        assert torch.equal(out[:, :t + 1], base[:, :t + 1]), f"leak into positions <= {t}"
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:]), "edit had no effect at all"


def test_logits_do_not_depend_on_sequence_length() -> None:
    torch.manual_seed(2)
    model = CognateForCausalLM(tiny_config()).eval()
    ids = torch.randint(0, 97, (1, 20))
    full = _logits(model, ids)
    prefix = _logits(model, ids[:, :11])
    torch.testing.assert_close(prefix, full[:, :11], rtol=0, atol=1e-5)


def test_memory_reads_only_earlier_chunks_and_carries_state() -> None:
    torch.manual_seed(3)
    mem = NeuralMemory(d_model=16, d_mem=8, hidden=16, chunk=4, lr_max=1.0, decay_init=0.99,
                       momentum_init=0.9)
    x = torch.randn(2, 16, 16)  # 4 chunks of 4 tokens
    base = mem(x)
    for t in range(16):
        edited = x.clone()
        edited[:, t] += 1.0
        changed = ((mem(edited) - base).abs().amax(-1) > 0).any(0)  # (T,)
        chunk_end = (t // 4 + 1) * 4
        # Token t reaches itself (its query) and every token of later chunks, nothing else:
        # in particular not the other tokens of its own chunk, which read the state before it.
        expected = [i == t or i >= chunk_end for i in range(16)]
        assert changed.tolist() == expected, f"token {t}"


def test_sliding_window_sees_only_the_window_behind() -> None:
    torch.manual_seed(4)
    attn = SlidingWindowAttention(d_model=16, n_heads=2, window=3)
    cos, sin = rope_tables(10, 8, 10000.0, torch.device("cpu"), torch.float32)
    x = torch.randn(1, 10, 16)
    base = attn(x, cos, sin)
    edited = x.clone()
    edited[:, 4] += 1.0
    out = attn(edited, cos, sin)
    changed = (out - base).abs().amax(-1)[0] > 0  # (T,)
    assert changed.tolist() == [i in (4, 5, 6) for i in range(10)]


def test_long_sequences_stay_finite_after_fast_weights_grow():
    """Sequences far longer than training ones must not blow the memory up to NaN."""
    from forge.models import CognateConfig, CognateForCausalLM

    torch.manual_seed(0)
    model = CognateForCausalLM(CognateConfig(vocab_size=64, d_model=32, n_layers=1, n_heads=2,
                                             d_ff=64, max_seq_len=1024, memory_chunk=4,
                                             memory_lr_max=50.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # an aggressive, trained-looking state
        logits = model(torch.randint(0, 64, (2, 1024))).logits
    assert torch.isfinite(logits).all()
