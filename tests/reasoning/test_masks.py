"""Causality of parallel thoughts (DESIGN.md section 5; Quiet-STaR's diagonal mask)."""
from __future__ import annotations

import pytest
import torch

from forge.models import CognateForCausalLM
from forge.models.attention import sliding_window_mask
from forge.models.branches import BranchLayout
from forge.reasoning import run_thoughts, sample_thoughts, think_generate
from tests.reasoning.conftest import END, EOS, PAD, START, thinking_model


def test_layout_mask_is_the_diagonal_pattern() -> None:
    layout = BranchLayout(seq_len=5, slots=2)
    allowed = layout.allowed(window=3)
    T = 5
    assert torch.equal(allowed[:T, :T], sliding_window_mask(T, 3, None))  # base rows unchanged
    assert not allowed[:T, T:].any()  # base tokens never see a thought
    # slot 2 of position 3 (row 2T + 3): base 1..3 (window 3), its own slots 1 and 2, nothing else
    row = allowed[2 * T + 3]
    assert row.nonzero().flatten().tolist() == [1, 2, 3, T + 3, 2 * T + 3]
    assert layout.positions()[2 * T + 3].item() == 5  # t + s


@pytest.mark.parametrize("t", [0, 3, 4, 9, 17])
def test_thought_at_t_is_unchanged_by_tokens_after_t(t: int) -> None:
    model = thinking_model()
    ids = torch.randint(8, 97, (2, 19))  # 19: the last memory chunk is partial
    edited = ids.clone()
    edited[:, t + 1:] = torch.randint(8, 97, edited[:, t + 1:].shape)
    with torch.no_grad():
        th, th_edit = (sample_thoughts(model, x, 3, temperature=0) for x in (ids, edited))
        assert torch.equal(th[:, :t + 1], th_edit[:, :t + 1]), "sampled thought leaked"
        a = run_thoughts(model, ids, th, n_ahead=1)
        b = run_thoughts(model, edited, th, n_ahead=1)
    assert torch.equal(a.h_thought[:, :t + 1], b.h_thought[:, :t + 1])
    assert torch.equal(a.logp[:, :t + 1], b.logp[:, :t + 1])
    assert not torch.allclose(a.h_thought[:, t + 1:], b.h_thought[:, t + 1:])


def test_thought_at_t_ignores_other_positions_thoughts() -> None:
    model = thinking_model(1)
    ids = torch.randint(8, 97, (1, 12))
    th = torch.randint(8, 97, (1, 12, 3))
    other = th.clone()
    other[:, torch.arange(12) != 5] = torch.randint(8, 97, (1, 11, 3))
    with torch.no_grad():
        a, b = run_thoughts(model, ids, th), run_thoughts(model, ids, other)
    assert torch.equal(a.h_thought[:, 5], b.h_thought[:, 5])
    assert torch.equal(a.h_base, b.h_base)  # base tokens never see any thought


def test_base_states_match_the_plain_model() -> None:
    model = thinking_model(2)
    ids = torch.randint(8, 97, (2, 13))
    with torch.no_grad():
        tp = run_thoughts(model, ids, torch.randint(8, 97, (2, 13, 3)), n_ahead=2)
        plain = model(ids).logits
    torch.testing.assert_close(model.lm_head(tp.h_base), plain, rtol=0, atol=1e-5)


def test_sampled_thoughts_never_use_special_tokens() -> None:
    model = thinking_model(3)
    with torch.no_grad():  # make the start token by far the likeliest output
        model.model.embed_tokens.weight[START] = model.model.embed_tokens.weight[10:20].sum(0) * 5
    th = sample_thoughts(model, torch.randint(8, 97, (2, 9)), 3, temperature=1.0,
                         generator=torch.Generator().manual_seed(0))
    assert th.min().item() >= 8


def test_thought_tokens_never_appear_in_generated_output() -> None:
    model = thinking_model(4)
    with torch.no_grad():  # push the thought tokens to the top of the output distribution
        w = model.model.embed_tokens.weight
        w[START] = w[END] = w[8:40].sum(0) * 10
        assert set(model(torch.tensor([[9, 10, 11]])).logits.argmax(-1)[0].tolist()) <= {START, END}
    # eos_id -1 never matches: every prompt generates all six tokens, whatever the weights
    gens = think_generate(model, [[9, 10, 11], [12, 13]], max_new_tokens=6, eos_id=-1,
                          pad_id=PAD)
    for g in gens:
        assert len(g.tokens) == 6 and len(g.thoughts) == 6
        assert START not in g.tokens and END not in g.tokens
        assert all(len(th) == 3 and min(th) >= 8 for th in g.thoughts)


def test_generation_without_a_thought_head_is_refused() -> None:
    from tests.models.conftest import tiny_config
    with pytest.raises(ValueError, match="no thought head"):
        think_generate(CognateForCausalLM(tiny_config()), [[9]], 2, EOS, PAD)
    with pytest.raises(ValueError, match="at least one token"):
        think_generate(thinking_model(), [[]], 2, EOS, PAD)


def test_thoughts_at_a_subset_of_positions_match_thoughts_everywhere() -> None:
    model = thinking_model(5)
    ids = torch.randint(8, 97, (2, 14))
    at = (2, 7, 13)
    with torch.no_grad():
        th = sample_thoughts(model, ids, 3, temperature=0)
        th_at = sample_thoughts(model, ids, 3, temperature=0, at=at)
        full = run_thoughts(model, ids, th, n_ahead=2)
        part = run_thoughts(model, ids, th[:, list(at)], n_ahead=2, at=at)
    assert torch.equal(th_at, th[:, list(at)])
    torch.testing.assert_close(part.h_thought, full.h_thought[:, list(at)], rtol=0, atol=1e-5)
    torch.testing.assert_close(part.logp, full.logp[:, list(at)], rtol=0, atol=1e-5)
    assert part.at.tolist() == list(at)


def test_layout_rejects_bad_positions() -> None:
    for at in ((), (3, 1), (0, 9)):
        with pytest.raises(ValueError, match="BranchLayout.at"):
            BranchLayout(9, 2, at)
