"""`CognateForCausalLM`: TRM recursion over Titans MAG blocks with ACT halting, as an HF model.

Forward pass (DESIGN.md section 5; TRM arXiv 2510.04871, Titans arXiv 2501.00663):

    x = embed(input_ids)                                  # (B, T, C)
    y, z = y_init, z_init                                 # fixed (C,), broadcast to (B, T, C)
    for s in range(supervision_steps):                    # deep supervision
        y, z = deep_recursion(f, x, y, z, T, n)           # first T-1 cycles without grad
        logits_s = lm_head(norm(y_s)); q_s = q_head(y_s)  # lm_head tied to embed
        y, z = y.detach(), z.detach()

Training loss = mean_s [CE(logits_s) + act_w * BCE(q_s, [argmax logits_s == label])]
                + gate_entropy_weight * H(gates).
Eval: each position keeps y from its own halting step (`forge.models.act`) and the loss is the CE
of those logits. Labels follow HF causal LMs: position t predicts labels[t+1]; -100 is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from forge.models.act import (IGNORE_INDEX, HaltingHead, act_bce, halting_steps, select_steps,
                              shift_labels)
from forge.models.branches import BranchLayout, branch_tensors
from forge.models.cache import CognateCache
from forge.models.configuration import CognateConfig
from forge.models.layers import RMSNorm
from forge.models.memory import NeuralMemory
from forge.models.recursion import RecursionNet, deep_recursion
from forge.models.thoughts import ThoughtHead


@dataclass
class CognateOutput(ModelOutput):
    """Output of `CognateForCausalLM.forward`; `loss` is the full training objective in train mode."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    act_loss: torch.Tensor | None = None
    gate_entropy: torch.Tensor | None = None
    act_mean_steps: torch.Tensor | None = None
    halt_steps: torch.Tensor | None = None
    cache: CognateCache | None = None  # with use_cache: pass it back with the next tokens


class CognatePreTrainedModel(PreTrainedModel):
    """Shared HF plumbing: config class, init, gradient checkpointing support."""

    config_class = CognateConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MAGBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        """TRM's init: linear weights Normal(0, 1/fan_in) (LeCun; `init_std` fixes the std
        instead), the token embedding (tied to the output head) at std 1/sqrt(C), so the
        sqrt(C)-scaled input is unit-RMS like y and z. With a 0.02 std everywhere the input was an
        RMS-0.23 ripple on the unit-RMS states, attention stayed uniform and the model ignored its
        context (docs/model.md, ablation table). Ones for norms; Titans/TRM specials."""
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.d_model ** -0.5)
        elif isinstance(module, nn.Linear):
            if module is getattr(self, "lm_head", None):
                return  # tied to the embedding, which sets its scale
            std = self.config.init_std or module.in_features ** -0.5
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, NeuralMemory):
            module.reset_memory_parameters()
        elif isinstance(module, HaltingHead):
            module.reset_halting_parameters()
        elif isinstance(module, ThoughtHead):
            module.reset_thought_parameters()
        elif isinstance(module, CognateModel):
            init.normal_(module.y_init, mean=0.0, std=1.0)
            init.normal_(module.z_init, mean=0.0, std=1.0)


class CognateModel(CognatePreTrainedModel):
    """Embedding + recursion; returns the normalised answer state of every supervision step."""

    def __init__(self, config: CognateConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.net = RecursionNet(config)
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        # Fixed random starting states, saved with the weights (TRM keeps them as buffers: with
        # T >= 2 they sit before the no-grad cycles and could never receive a gradient).
        self.register_buffer("y_init", torch.randn(config.d_model))
        self.register_buffer("z_init", torch.randn(config.d_model))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (HF API)."""
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the token embedding (HF API)."""
        self.embed_tokens = value

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings (B, T, C), sqrt(C)-scaled as in TRM: unit-RMS input next to the
        unit-RMS y and z."""
        return self.embed_tokens(input_ids) * self.config.d_model ** 0.5

    def forward(self, input_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None,
                layout: BranchLayout | None = None,
                cache: CognateCache | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per supervision step the state y_s (B, T, C) (graph of step s only) and mean gate entropy.

        With `layout`, the T = layout.total inputs are base tokens followed by thought branches
        and attention, RoPE and memory follow `forge.models.branches`; without it, nothing changes.
        With `cache` the inputs are the T tokens after the cache's, which it then includes.
        """
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids)
        x = inputs_embeds  # (B, T, C)
        c = self.config
        branches = None
        if layout is not None:
            if layout.total != x.shape[1]:
                raise ValueError(f"layout: expects {layout.total} tokens, got {x.shape[1]}")
            branches = branch_tensors(layout, c.window, x.device)
        if cache is not None and branches is not None:
            raise ValueError("cache: thought branches are decoded without a KV cache")
        f = partial(self.net, inputs=self.net.prepare(x, branches, cache))  # memories written once
        y = self.y_init.to(x.dtype).expand_as(x)  # (B, T, C)
        z = self.z_init.to(x.dtype).expand_as(x)  # (B, T, C)
        states, entropy = [], x.new_zeros(())
        for _ in range(c.trm_supervision_steps):
            y, z, e = deep_recursion(f, x, y, z, c.trm_T, c.trm_n)
            states.append(self.norm(y))
            entropy = entropy + e
            y, z = y.detach(), z.detach()  # deep supervision: no gradient across steps
        if cache is not None:
            cache.end_pass(x.shape[1])
        return states, entropy / c.trm_supervision_steps


class CognateForCausalLM(CognatePreTrainedModel, GenerationMixin):
    """Causal LM head (tied to the embedding) + ACT Q-head over `CognateModel`."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """HF loading of a full-precision artifact. A packed ternary one (quantization.json)
        raises: HF would random-initialise its ternary layers and only warn."""
        folder = Path(str(pretrained_model_name_or_path))
        if (folder / "quantization.json").is_file():
            raise ValueError(f"{folder}: a packed ternary artifact; from_pretrained would load "
                             "random weights in place of its ternary layers; use "
                             "forge.load_model(path)")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def __init__(self, config: CognateConfig) -> None:
        super().__init__(config)
        self.model = CognateModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.halt = HaltingHead(config.d_model)
        # Quiet-STaR parameters (Phase 3); absent from plain Cognate models.
        self.thoughts = (ThoughtHead(config.d_model, config.thought_mixer_hidden,
                                     config.thought_mix_init) if config.thought_len else None)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (HF API)."""
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the token embedding (HF API)."""
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        """The output head, tied to the embedding (HF API)."""
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        """Replace the output head (HF API)."""
        self.lm_head = value

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, cache: CognateCache | None = None,
                use_cache: bool | None = None, **kwargs: object) -> CognateOutput:
        """Logits (B, T, V) and, with `labels` (B, T), the loss; see the module docstring.

        `attention_mask` may only mark right padding (ones then zeros): causal attention already
        keeps padding out of every real position. Left padding raises `ValueError`.
        KV cache (`forge.models.cache`, eval mode): `use_cache=True` returns `cache`; given back
        as `cache` (or `past_key_values`) with the next tokens only, their logits equal those of
        the full sequence's forward.
        """
        cache = _cache_for(self, cache or kwargs.get("past_key_values"), use_cache,
                           attention_mask)
        if cache is None:
            _check_right_padding(attention_mask)
        states, entropy = self.model(input_ids, inputs_embeds, cache=cache)  # S x (B, T, C)
        q_steps = torch.stack([self.halt(y) for y in states])  # (S, B, T)
        steps = halting_steps(q_steps.detach(), self.config.act_threshold)  # (B, T)
        mean_steps = (steps.float() + 1).mean()
        if self.training:
            return self._train_output(states, q_steps, entropy, labels, mean_steps, steps)
        logits = self.lm_head(select_steps(torch.stack(states), steps))  # (B, T, V)
        lm_loss = None if labels is None else causal_lm_loss(logits, labels)
        return CognateOutput(loss=lm_loss, logits=logits, lm_loss=lm_loss, gate_entropy=entropy,
                             act_mean_steps=mean_steps, halt_steps=steps, cache=cache)

    def _train_output(self, states: list[torch.Tensor], q_steps: torch.Tensor,
                      entropy: torch.Tensor, labels: torch.Tensor | None,
                      mean_steps: torch.Tensor, steps: torch.Tensor) -> CognateOutput:
        """Deep supervision: CE + ACT BCE at every step, plus the gate entropy term."""
        if labels is None:
            return CognateOutput(logits=self.lm_head(states[-1]), gate_entropy=entropy,
                                 act_mean_steps=mean_steps, halt_steps=steps)
        targets = shift_labels(labels)  # (B, T)
        ce_total, bce_total = 0.0, 0.0
        for y, q in zip(states, q_steps):
            logits = self.lm_head(y)  # (B, T, V)
            ce = causal_lm_loss(logits, labels)
            ce_total = ce_total + ce
            bce_total = bce_total + act_bce(q, logits, targets)
        S = len(states)
        loss = (ce_total + self.config.act_loss_weight * bce_total) / S
        loss = loss + self.config.gate_entropy_weight * entropy
        return CognateOutput(loss=loss, logits=logits, lm_loss=ce.detach(),
                             act_loss=(bce_total / S).detach(), gate_entropy=entropy,
                             act_mean_steps=mean_steps, halt_steps=steps)

    def output_states(self, inputs_embeds: torch.Tensor,
                      layout: BranchLayout | None = None) -> torch.Tensor:
        """Post-norm state (B, T, C) of each position at its own ACT halting step; lm_head of it
        is the logits of `forward` in eval mode. Differentiable (each position's gradient flows
        into the supervision step it halts at). Used by Quiet-STaR with thought branches."""
        states, _ = self.model(inputs_embeds=inputs_embeds, layout=layout)  # S x (B, T, C)
        q_steps = torch.stack([self.halt(y) for y in states]).detach()  # (S, B, T)
        steps = halting_steps(q_steps, self.config.act_threshold)  # (B, T)
        return select_steps(torch.stack(states), steps)  # (B, T, C)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        """HF generate must not make a DynamicCache: the model brings its own `CognateCache`."""
        return False

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor,
                                      attention_mask: torch.Tensor | None = None,
                                      cache: CognateCache | None = None,
                                      use_cache: bool | None = None, **kwargs: object) -> dict:
        """With use_cache, the tokens after the cache's (the first step makes the cache);
        without it, every step re-reads the whole prefix."""
        cache = cache or kwargs.get("past_key_values")
        if not use_cache:
            return {"input_ids": input_ids, "attention_mask": attention_mask}
        if cache is None:
            cache = CognateCache(self.config.window)
        return {"input_ids": input_ids[:, cache.length:], "attention_mask": attention_mask,
                "cache": cache, "use_cache": True}


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token CE: logits[:, t] vs labels[:, t+1], skipping -100. logits (B, T, V)."""
    targets = shift_labels(labels)  # (B, T)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                           ignore_index=IGNORE_INDEX)


def _cache_for(model: CognateForCausalLM, cache: CognateCache | None, use_cache: bool | None,
               mask: torch.Tensor | None) -> CognateCache | None:
    """The cache this forward extends: the one given, a new one with use_cache, else None."""
    if cache is None and not use_cache:
        return None
    if model.training:
        raise ValueError("cache: the KV cache is for inference; call model.eval() first")
    if not isinstance(cache, (CognateCache, type(None))):
        raise ValueError(f"cache: expected a CognateCache, got {type(cache).__name__}")
    if mask is not None and not bool(mask.all()):
        raise ValueError("attention_mask: padding is not supported with the KV cache")
    return cache if cache is not None else CognateCache(model.config.window)


def _check_right_padding(mask: torch.Tensor | None) -> None:
    if mask is None:
        return
    if (mask[:, 1:] > mask[:, :-1]).any():
        raise ValueError("attention_mask: left or inner padding is not supported by Cognate; "
                         "pad on the right (causal attention keeps padding out of real tokens)")
