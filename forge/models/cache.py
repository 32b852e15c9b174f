"""The KV cache of incremental decoding: what a Cognate forward pass keeps for the next one.

A forward pass applies the same blocks A = supervision_steps x T x (n + 1) times (`recursion`),
each application to its own states. Every application is causal: its attention output at
position t depends only on that application's inputs at positions <= t, and the rest of a block
is position-wise. So the keys and values of application a at layer l are cached per (a, l), and
a pass over new tokens computes only their rows, each application reading its own cached keys.
The sliding window makes the cache bounded: a query at position p sees keys p - window < j <= p,
so keys older than the last window - 1 positions are dropped.

The long-term memory reads fast weights written from the input embeddings of earlier chunks
only, so each layer carries its `MemoryCarry` (fast weights and momentum of the current chunk
plus the keys, values and rates of its tokens so far) and writes a chunk once it is complete.

Both are exact: the cached pass computes the same values as the full one, up to float rounding
of different matrix shapes (~1e-6). Thought branches (Quiet-STaR) are not cached.
"""
from __future__ import annotations

import torch

from forge.models.memory import MemoryCarry


class CognateCache:
    """Per-(application, layer) keys and values and per-layer memory carries of a batch.

    Returned by `CognateForCausalLM.forward(..., use_cache=True)` as `cache` and accepted back
    (HF generate's convention); `length` tokens have been read.
    """

    is_compileable = False
    is_croppable = False

    def __init__(self, window: int) -> None:
        self.keep = max(window - 1, 0)  # keys a later query can still see
        self.length = 0
        self.kv: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.memory: list[MemoryCarry | None] = []
        self._application = -1

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens read so far (HF Cache API)."""
        return self.length

    def past_keys(self) -> int:
        """How many cached key positions every (application, layer) holds."""
        return min(self.length, self.keep)

    def begin_pass(self) -> None:
        """Start a forward pass: applications are numbered from 0 again."""
        self._application = -1

    def next_application(self) -> int:
        """The index of the next application of the recursion network in this pass."""
        self._application += 1
        return self._application

    def extend(self, slot: tuple[int, int], k: torch.Tensor,
               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached keys/values of `slot` followed by the new ones k, v (B, nh, t, hd); keeps the
        last `keep` positions for the next pass."""
        past = self.kv.get(slot)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        keep = min(self.keep, k.shape[2])
        self.kv[slot] = (k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:])
        return k, v

    def end_pass(self, new_tokens: int) -> None:
        """The pass read `new_tokens` more tokens."""
        self.length += new_tokens

    def select(self, rows: torch.Tensor) -> None:
        """Keep batch rows `rows` only (e.g. drop finished sequences), in place."""
        self.kv = {s: (k.index_select(0, rows), v.index_select(0, rows))
                   for s, (k, v) in self.kv.items()}
        self.memory = [m if m is None else m.select(rows) for m in self.memory]

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        """Beam search's reordering (HF Cache API): row i becomes row beam_idx[i]."""
        self.select(beam_idx)


class KVSlot:
    """One (application, layer) of a cached pass: what an attention module extends."""

    def __init__(self, cache: CognateCache, application: int, layer: int) -> None:
        self.cache, self.key = cache, (application, layer)

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """See `CognateCache.extend`."""
        return self.cache.extend(self.key, k, v)

