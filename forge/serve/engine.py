"""Text completion for the OpenAI-compatible server: sampling, stop strings, streaming deltas.

One request is decoded as one batch of `n` rows of the same prompt (no padding needed). Each
step samples every unfinished row from softmax(logits / temperature) restricted to the top-p
nucleus (Holtzman et al. 2019, arXiv 1904.09751); temperature 0 is greedy. A row ends at the
end-of-sequence token or a stop string (finish_reason "stop") or after max_tokens ("length").
Sampling uses one torch.Generator per request, so a request with a seed is reproducible.
Decoding uses the model's KV cache (`forge.models.cache`): the prompt is read once, then each
step reads one new token per row; finished rows leave the batch and the cache.

Streaming text is released only when it is final: bytes of a half-decoded UTF-8 character and
any tail that could still grow into a stop string are held back until the next token decides.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from forge.serve.fast import lean_ternary

class CompletionError(ValueError):
    """A request the model cannot serve (e.g. longer than its context); HTTP 400."""


@dataclass(frozen=True)
class SamplingParams:
    """The generation settings of one completion request (already type-checked)."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Delta:
    """New final text of one choice; `finish_reason` is set on the choice's last delta."""

    index: int
    text: str
    finish_reason: str | None = None
    tokens: int = 0  # tokens sampled for this choice so far


def nucleus_sample(logits: torch.Tensor, temperature: float, top_p: float,
                   generator: torch.Generator) -> torch.Tensor:
    """One token per row of logits (B, V): greedy at temperature 0, else top-p sampling."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p >= top_p  # mass before a token already >= p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


class _Choice:
    """Decoded text of one row and how much of it has been released."""

    def __init__(self, index: int, stop: tuple[str, ...]) -> None:
        self.index, self.stop, self.ids, self.sent, self.finish = index, stop, [], 0, None
        self.sampled = 0  # tokens sampled, the end-of-sequence token included (usage counts it)
        self.holdback = max((len(s) for s in stop), default=1) - 1

    def step(self, token: int, text: str, eos: bool, limit: bool) -> Delta | None:
        """Record `token` (full decoded text `text`); the releasable new text, if any."""
        self.sampled += 1
        if not eos:
            self.ids.append(token)
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if hits:
            text, self.finish = text[:min(hits)], "stop"
        elif eos:
            self.finish = "stop"
        elif limit:
            self.finish = "length"
        end = len(text) if self.finish else len(text.rstrip("\ufffd")) - self.holdback
        if end <= self.sent and not self.finish:
            return None
        delta = Delta(self.index, text[self.sent:max(end, self.sent)], self.finish, self.sampled)
        self.sent = max(end, self.sent)
        return delta


class CompletionEngine:
    """A loaded model and tokenizer that complete prompts (thread-safe: one forward at a time).

    Frozen ternary layers are swapped in place for lean inference layers (`forge.serve.fast`):
    same logits, less work per token."""

    def __init__(self, model: Any, tokenizer: Any, name: str, use_cache: bool = True) -> None:
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.use_cache = use_cache  # False re-reads the prefix every token (the benchmark's baseline)
        self.lean_layers = lean_ternary(self.model)
        self.context = int(model.config.max_seq_len)
        self.eos_id = tokenizer.eos_token_id
        # Specials a completion never emits: bos, pad and thought markers (eos ends a choice).
        banned = [tokenizer.bos_token_id, tokenizer.pad_token_id,
                  *getattr(model.config, "thought_banned_ids", [])]
        for token in ("<|startofthought|>", "<|endofthought|>"):
            banned.append(tokenizer.convert_tokens_to_ids(token))
        self.banned = sorted({b for b in banned if b is not None and b != self.eos_id and b >= 0})
        self._lock = threading.Lock()

    def encode(self, prompt: str) -> list[int]:
        """Prompt token ids; an empty prompt starts from the beginning-of-sequence token."""
        ids = self.tokenizer.encode(prompt, add_special_tokens=False)
        return ids or [self.tokenizer.bos_token_id]

    def check(self, prompt_ids: list[int], params: SamplingParams) -> None:
        """CompletionError unless the prompt and max_tokens fit the model's context."""
        total = len(prompt_ids) + params.max_tokens
        if total > self.context:
            raise CompletionError(f"this model's maximum context length is {self.context} "
                                  f"tokens; the prompt has {len(prompt_ids)} and max_tokens is "
                                  f"{params.max_tokens} ({total}); shorten one")

    @torch.no_grad()
    def stream(self, prompt_ids: list[int], params: SamplingParams,
               first_index: int = 0) -> Iterator[Delta]:
        """Deltas of the `n` choices of one prompt as tokens are decided (indices from
        first_index). Every choice's last delta has its finish_reason."""
        self.check(prompt_ids, params)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        gen = torch.Generator().manual_seed(seed)  # per request: never the global RNG
        ids = torch.tensor([prompt_ids] * params.n)  # (B_live, T): the unfinished rows
        live = [_Choice(first_index + i, params.stop) for i in range(params.n)]
        cache = None
        for step in range(params.max_tokens):
            with self._lock:
                if cache is None:
                    out = self.model(ids, use_cache=self.use_cache)
                else:  # the cache has read all but the last token of every live row
                    out = self.model(ids[:, -1:], cache=cache)
                cache, logits = out.get("cache"), out.logits[:, -1]  # (B_live, V)
            logits[:, self.banned] = float("-inf")
            nxt = nucleus_sample(logits, params.temperature, params.top_p, gen)  # (B_live,)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            for c, token in zip(live, nxt.tolist()):
                eos = token == self.eos_id
                text = self.tokenizer.decode(c.ids + ([] if eos else [token]))
                delta = c.step(token, text, eos, step == params.max_tokens - 1)
                if delta is not None:
                    yield delta
            keep = [i for i, c in enumerate(live) if c.finish is None]
            if not keep:
                return
            if len(keep) < len(live):
                rows = torch.tensor(keep)
                ids, live = ids[rows], [live[i] for i in keep]
                if cache is not None:
                    cache.select(rows)

    def complete(self, prompt_ids: list[int], params: SamplingParams,
                 first_index: int = 0) -> list[dict[str, Any]]:
        """The finished choices of one prompt: {index, text, finish_reason, tokens}."""
        out = {i: {"index": first_index + i, "text": "", "finish_reason": None, "tokens": 0}
               for i in range(params.n)}
        for d in self.stream(prompt_ids, params, first_index):
            c = out[d.index - first_index]
            c["text"] += d.text
            c["finish_reason"], c["tokens"] = d.finish_reason or c["finish_reason"], d.tokens
        return list(out.values())
