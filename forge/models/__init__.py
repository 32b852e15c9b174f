"""Cognate: the Phase 1 foundation model (TRM x Titans-MAG x ACT) as a Hugging Face model.

    from forge.models import CognateForCausalLM, cognate_config_from
    model = CognateForCausalLM(cognate_config_from(cfg.model, vocab_size=tokenizer.vocab_size))

Importing this package registers `model_type="cognate"` with AutoConfig and
AutoModelForCausalLM, so `AutoModelForCausalLM.from_pretrained(dir)` works on saved artifacts.
"""
from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM

from forge.models.configuration import CognateConfig, cognate_config_from
from forge.models.memory_estimate import estimate_training_memory
from forge.models.modeling import CognateForCausalLM, CognateModel, CognateOutput

AutoConfig.register(CognateConfig.model_type, CognateConfig, exist_ok=True)
AutoModelForCausalLM.register(CognateConfig, CognateForCausalLM, exist_ok=True)

__all__ = ["CognateConfig", "CognateForCausalLM", "CognateModel", "CognateOutput",
           "cognate_config_from", "estimate_training_memory"]
