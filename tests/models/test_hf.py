"""Hugging Face behaviour: save/load, Auto classes, generate, peft LoRA, gradient checkpointing."""
from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from forge.models import CognateConfig, CognateForCausalLM
from tests.models.conftest import tiny_config


def test_tied_embeddings_and_halting_init(tiny: CognateConfig) -> None:
    model = CognateForCausalLM(tiny)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.halt.q_bias.item() == -5.0
    assert torch.count_nonzero(model.halt.q_weight) == 0


def test_save_and_load_give_identical_logits(tiny: CognateConfig, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(tiny).eval()
    ids = torch.randint(0, tiny.vocab_size, (2, 19))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "cognate"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CognateForCausalLM)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight


def test_greedy_generate_matches_argmax_loop(tiny: CognateConfig) -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(tiny).eval()
    prompt = torch.randint(0, tiny.vocab_size, (2, 5))
    out = model.generate(prompt, max_new_tokens=6, do_sample=False, pad_token_id=0)
    ids = prompt
    with torch.no_grad():
        for _ in range(6):
            nxt = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    assert torch.equal(out, ids)


def test_sampling_generate_is_seeded_and_in_vocab(tiny: CognateConfig) -> None:
    model = CognateForCausalLM(tiny).eval()
    prompt = torch.randint(1, tiny.vocab_size, (1, 4))  # 0 is the pad id
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(model.generate(prompt, max_new_tokens=5, do_sample=True, top_k=20,
                                   pad_token_id=0))
    assert runs[0].shape == (1, 9) and torch.equal(runs[0], runs[1])
    assert int(runs[0].max()) < tiny.vocab_size


def test_peft_lora_attaches_by_module_name(tiny: CognateConfig) -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(tiny).eval()
    ids = torch.randint(0, tiny.vocab_size, (1, 12))
    with torch.no_grad():
        before = model(ids).logits
    targets = ["q_proj", "v_proj", "mem_query", "down_proj"]
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=targets))
    wrapped = [n for n, m in lora.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    assert len(wrapped) == len(targets) * tiny.n_layers
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        assert torch.allclose(lora(input_ids=ids).logits, before)  # LoRA B starts at zero
    lora.train()
    lora(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in lora.named_parameters() if p.requires_grad)


def test_gradient_checkpointing_gives_the_same_gradients(tiny: CognateConfig) -> None:
    ids = torch.randint(0, tiny.vocab_size, (2, 16))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = CognateForCausalLM(tiny).train()
        if checkpointing:
            model.activation_checkpointing_enable()  # HF 5 name of gradient_checkpointing_enable
            assert model.is_activation_checkpointing
        model(ids, labels=ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


def test_left_padding_is_rejected(tiny: CognateConfig) -> None:
    model = CognateForCausalLM(tiny)
    ids = torch.randint(0, tiny.vocab_size, (1, 6))
    right = torch.tensor([[1, 1, 1, 1, 0, 0]])
    model(ids, attention_mask=right)
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids, attention_mask=right.flip(1))


def test_window_and_chunk_changes_on_the_config_take_effect(tiny: CognateConfig,
                                                            tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CognateForCausalLM(tiny).eval()
    ids = torch.randint(0, tiny.vocab_size, (1, 20))
    with torch.no_grad():
        before = model(ids).logits
        model.config.window, model.config.memory_chunk = 3, 8  # a Phase 1 specialisation
        after = model(ids).logits
    assert not torch.allclose(before, after)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert (loaded.config.window, loaded.config.memory_chunk) == (3, 8)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, after)
