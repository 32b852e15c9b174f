"""ACT: per-position halting step, selection, the BCE target, and the loss terms."""
from __future__ import annotations

import torch

from forge.models import CognateConfig, CognateForCausalLM
from forge.models.act import act_bce, halting_steps, select_steps, shift_labels


def test_halting_step_is_first_confident_step_or_the_limit() -> None:
    q = torch.tensor([[[-9.0, 3.0, -9.0]], [[2.0, -9.0, -9.0]], [[5.0, 5.0, -9.0]]])  # (S=3, B=1, T=3)
    assert halting_steps(q, 0.5).tolist() == [[1, 0, 2]]


def test_select_steps_takes_each_positions_own_step() -> None:
    states = torch.arange(3 * 1 * 3 * 2, dtype=torch.float32).view(3, 1, 3, 2)  # (S, B, T, C)
    steps = torch.tensor([[2, 0, 1]])
    picked = select_steps(states, steps)
    assert torch.equal(picked[0, 0], states[2, 0, 0])
    assert torch.equal(picked[0, 1], states[0, 0, 1])
    assert torch.equal(picked[0, 2], states[1, 0, 2])


def test_act_bce_target_is_prediction_correctness() -> None:
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]]])  # argmax 0, 1, 0
    targets = torch.tensor([[0, 0, -100]])  # right, wrong, ignored
    q = torch.tensor([[2.0, -1.0, 40.0]])
    want = torch.nn.functional.binary_cross_entropy_with_logits(q[0, :2], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(act_bce(q, logits, targets), want)


def test_shift_labels_matches_hf_convention() -> None:
    assert shift_labels(torch.tensor([[1, 2, 3]])).tolist() == [[2, 3, -100]]


def test_training_loss_is_deep_supervision_plus_act_plus_entropy(tiny: CognateConfig) -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(tiny).train()
    ids = torch.randint(0, tiny.vocab_size, (2, 12))
    out = model(ids, labels=ids)
    assert out.loss.requires_grad and out.act_loss is not None
    assert 1.0 <= out.act_mean_steps.item() <= tiny.trm_supervision_steps
    assert 0.0 < out.gate_entropy.item() <= 0.6932  # Bernoulli entropy <= ln 2
    model.eval()
    with torch.no_grad():
        ev = model(ids, labels=ids)
    assert ev.halt_steps.shape == ids.shape and ev.act_loss is None
