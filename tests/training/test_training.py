"""Training machinery: schedule, divergence guard, checkpoints, exact resume."""
import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from forge.training.checkpoint import latest_checkpoint, save_checkpoint
from forge.training.guard import DivergenceError, DivergenceGuard
from forge.training.loop import LoopSettings, Trainer
from forge.training.schedule import warmup_cosine


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.1)
    mids = [warmup_cosine(s, 100, 10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(mids, mids[1:]))  # monotone decay after warm-up


def test_guard_catches_nan_and_blow_up():
    g = DivergenceGuard("m", factor=2.0, grace_steps=2, smoothing=0.0)
    for step, loss in enumerate([3.0, 2.0, 1.5, 1.0]):
        g.update(step, loss)
    with pytest.raises(DivergenceError, match="model m diverged at step 9"):
        g.update(9, 2.5)
    with pytest.raises(DivergenceError, match="not finite"):
        DivergenceGuard("m").update(0, math.nan)


def tiny(seed=0):
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16))


def batch_for_step(step: int) -> dict:
    g = torch.Generator().manual_seed(1000 + step)
    start = torch.randint(0, 32, (4, 1), generator=g)
    ids = (start + torch.arange(12)) % 32
    return {"input_ids": ids, "labels": ids}


def make_trainer(tmp_path, steps, log):
    model = tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    settings = LoopSettings(steps=steps, warmup=2, log_every=1, checkpoint_every=3)
    return Trainer("tiny", model, opt, batch_for_step, settings, tmp_path / "ckpt", "fp",
                   torch.device("cpu"), log)


def test_resume_is_bit_exact(tmp_path):
    logs_a, logs_b = {}, {}
    full = make_trainer(tmp_path / "a", 9, lambda s, m: logs_a.__setitem__(s, m["loss"]))
    full.run()
    first = make_trainer(tmp_path / "b", 9, lambda s, m: logs_b.__setitem__(s, m["loss"]))
    first.settings = LoopSettings(steps=9, warmup=2, log_every=1, checkpoint_every=3)
    for _ in range(6):  # two checkpoints' worth, then "crash"
        first.train_step()
        if first.step % 3 == 0:
            save_checkpoint(first.ckpt_root, first.step, first.model, first.state_dict())
    resumed = make_trainer(tmp_path / "b", 9, lambda s, m: logs_b.__setitem__(s, m["loss"]))
    outcome = resumed.run()
    assert outcome.resumed_from == 6 and outcome.steps_done == 9
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [logs_a[s] for s in (7, 8, 9)] == [logs_b[s] for s in (7, 8, 9)]


def test_corrupt_or_foreign_checkpoints_are_skipped(tmp_path):
    model = tiny()
    save_checkpoint(tmp_path, 3, model, {"fingerprint": "a"}, keep=3)
    newest = save_checkpoint(tmp_path, 6, model, {"fingerprint": "a"}, keep=3)
    save_checkpoint(tmp_path, 9, model, {"fingerprint": "other"}, keep=3)
    assert latest_checkpoint(tmp_path, "a") == newest
    (newest / "trainer.pt").write_bytes(b"broken")
    assert latest_checkpoint(tmp_path, "a").name == "step-0000003"
    assert latest_checkpoint(tmp_path / "none", "a") is None


def test_divergence_stops_with_clear_error(tmp_path):
    trainer = make_trainer(tmp_path, 5, lambda s, m: None)
    trainer.batch_for_step = lambda step: {**batch_for_step(step),
                                           "input_ids": batch_for_step(step)["input_ids"]}
    trainer.guard.update(0, 0.1)  # a suspiciously good baseline
    trainer.guard.grace_steps = 0
    with pytest.raises(DivergenceError, match="model tiny diverged"):
        trainer.run()
