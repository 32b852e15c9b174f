"""Titans neural long-term memory (Behrouz et al., arXiv 2501.00663, section 3.1).

The memory is a residual two-layer MLP M_W(u) = u + silu(u W1) W2 whose weights W = (W1, W2) are
fast weights of one sequence, learned while reading. The sequence is cut into chunks of
`chunk` tokens; for chunk c (keys k_t, values v_t, rates from the tokens of c):

    loss_c(W)  = 1/L * sum_t theta_t * ||M_W(k_t) - v_t||^2      (associative memory loss)
    S_{c+1}    = eta_c * S_c - grad_W loss_c(W_c)                 (surprise with momentum)
    W_{c+1}    = (1 - alpha_c) * W_c + S_{c+1}                    (forgetting / decay)

theta_t (inner learning rate), eta_c (momentum) and alpha_c (decay) are data dependent:
sigmoids of a linear map of the tokens. Retrieval for every token of chunk c is y_t = M_{W_c}(q_t):
it reads the state written by chunks < c only, so nothing in or after chunk c leaks backwards
(DESIGN.md section 5, causality traps). W_0 is a learned initialisation shared by all sequences.
The inner gradient is written out with batched matmuls so the outer loss back-propagates through
the whole chain of updates (the projections and rates are meta-learned).

Write once, read many: `write` runs the sequential chain of updates once per forward pass and
returns the state every chunk reads; `read` then retrieves for all chunks in one batched matmul.
The recursion applies each block 4-12 times to the same sequence, and rewriting the memory at
every application cost 70% of a training step (docs/model.md, throughput). `write_more` is the
incremental form for the KV cache (`forge.models.cache`): it continues a `MemoryCarry` with new
tokens and gives them the same states `write` gives the whole sequence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init


def memory_apply(w1: torch.Tensor, w2: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """M_W(u) = u + silu(u W1) W2 for per-sequence weights w1 (..., d, H), w2 (..., H, d) and
    queries u (..., L, d): (B, L, d) for one chunk, or (B, N, L, d) for all chunks at once."""
    return u + F.silu(u @ w1) @ w2


def memory_grad(w1: torch.Tensor, w2: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of 1/L sum_t theta_t ||M_W(k_t) - v_t||^2 w.r.t. (W1, W2), batched per sequence.

    k, v (B, L, d); theta (B, L). Returns (dW1 (B, d, H), dW2 (B, H, d)). Written by hand (chain
    rule through the residual MLP, silu'(h) = s(h) (1 + h (1 - s(h)))) so it stays differentiable.
    """
    L = k.shape[1]
    h = k @ w1  # (B, L, H)
    a = F.silu(h)  # (B, L, H)
    err = k + a @ w2 - v  # (B, L, d)
    d_out = err * (2.0 * theta / L).unsqueeze(-1)  # (B, L, d): dloss / dM(k)
    g2 = a.transpose(1, 2) @ d_out  # (B, H, d)
    sig = torch.sigmoid(h)
    d_h = (d_out @ w2.transpose(1, 2)) * sig * (1 + h * (1 - sig))  # (B, L, H)
    g1 = k.transpose(1, 2) @ d_h  # (B, d, H)
    return g1, g2


NORM_BOUND = 4.0  # fast weights stay within this multiple of W_0's Frobenius norm (+1)


def bounded(w: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """Rescale each sequence's matrix w (B, m, n) to Frobenius norm <= bound (differentiable)."""
    norm = w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)  # (B, 1, 1)
    return w * (bound / norm).clamp(max=1.0)


@dataclass(frozen=True)
class MemoryState:
    """The fast weights each chunk reads, for one batch: chunk c reads (w1[:, c], w2[:, c])."""

    w1: torch.Tensor  # (B, N, d, H)
    w2: torch.Tensor  # (B, N, H, d)
    chunk: int  # L: tokens per chunk
    length: int  # T: tokens written (N = ceil(T / L))
    # Incremental decoding (`write_more`): the T tokens start at position `start`, and w1[:, 0]
    # is the state of chunk `first_chunk` (start - first_chunk * L in [0, L]); 0, 0 otherwise.
    start: int = 0
    first_chunk: int = 0


@dataclass(frozen=True)
class MemoryCarry:
    """Where an incremental write stands: the fast weights and momentum chunk `chunk_index`
    reads, and the keys, values and rates of its tokens seen so far (P <= L of them)."""

    w1: torch.Tensor  # (B, d, H)
    w2: torch.Tensor  # (B, H, d)
    s1: torch.Tensor  # (B, d, H) surprise momentum
    s2: torch.Tensor  # (B, H, d)
    k: torch.Tensor  # (B, P, d)
    v: torch.Tensor  # (B, P, d)
    rates: torch.Tensor  # (B, P, 3)
    chunk_index: int

    def select(self, rows: torch.Tensor) -> MemoryCarry:
        """The carry of batch rows `rows` only."""
        t = [getattr(self, n).index_select(0, rows) for n in ("w1", "w2", "s1", "s2", "k", "v",
                                                               "rates")]
        return MemoryCarry(*t, self.chunk_index)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class NeuralMemory(nn.Module):
    """Chunk-wise fast-weight memory; see the module docstring for the update rule."""

    def __init__(self, d_model: int, d_mem: int, hidden: int, chunk: int, lr_max: float,
                 decay_init: float, momentum_init: float) -> None:
        super().__init__()
        self.chunk, self.lr_max = chunk, lr_max
        self.decay_init, self.momentum_init = decay_init, momentum_init
        self.mem_query = nn.Linear(d_model, d_mem, bias=False)
        self.mem_key = nn.Linear(d_model, d_mem, bias=False)
        self.mem_value = nn.Linear(d_model, d_mem, bias=False)
        self.mem_out = nn.Linear(d_mem, d_model, bias=False)
        self.mem_rates = nn.Linear(d_model, 3)  # logits of theta, eta, alpha
        self.w1_init = nn.Parameter(torch.empty(d_mem, hidden))
        self.w2_init = nn.Parameter(torch.empty(hidden, d_mem))
        self.reset_memory_parameters()

    def reset_memory_parameters(self) -> None:
        """Init W_0 at fan-in scale and the rate biases at the configured starting rates."""
        init.normal_(self.w1_init, 0.0, self.w1_init.shape[0] ** -0.5)
        init.normal_(self.w2_init, 0.0, 0.1 * self.w2_init.shape[0] ** -0.5)
        init.zeros_(self.mem_rates.weight)
        bias = [_logit(0.1), _logit(self.momentum_init), _logit(1.0 - self.decay_init)]
        init.copy_(self.mem_rates.bias, torch.tensor(bias))

    def _chunked(self, t: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, T, d) -> (B, N, L, d), zero rows padded after the last token only."""
        B, T, d = t.shape
        pad = (-T) % chunk
        return F.pad(t, (0, 0, 0, pad)).view(B, (T + pad) // chunk, chunk, d)

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token keys, values (B, T, d) and rates theta, eta, alpha (B, T, 3) of x."""
        rates = torch.sigmoid(self.mem_rates(x))  # (B, T, 3)
        return (F.normalize(self.mem_key(x), dim=-1), self.mem_value(x),
                rates * rates.new_tensor([self.lr_max, 1.0, 1.0]))

    def _update(self, w: tuple[torch.Tensor, ...], k: torch.Tensor, v: torch.Tensor,
                rates: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One chunk's update of (w1, w2, s1, s2) from its keys, values (B, L, d), rates (B, L, 3)."""
        w1, w2, s1, s2 = w
        B = k.shape[0]
        theta, eta, alpha = rates.unbind(-1)  # (B, L) each
        g1, g2 = memory_grad(w1, w2, k, v, theta)
        eta_c = eta.mean(1).view(B, 1, 1)  # (B, 1, 1): one momentum per chunk
        keep = 1.0 - alpha.mean(1).view(B, 1, 1)  # (B, 1, 1): retention
        s1, s2 = eta_c * s1 - g1, eta_c * s2 - g2
        # Inner gradient descent is unstable once the fast weights grow (its curvature grows
        # with them), and sequences longer than those seen in training would then blow up to
        # NaN; a norm bound of a few times W_0's keeps every read finite.
        bound1 = NORM_BOUND * self.w1_init.norm().detach() + 1.0
        bound2 = NORM_BOUND * self.w2_init.norm().detach() + 1.0
        return bounded(keep * w1 + s1, bound1), bounded(keep * w2 + s2, bound2), s1, s2

    def _initial(self, B: int) -> tuple[torch.Tensor, ...]:
        w1 = self.w1_init.expand(B, -1, -1)  # (B, d, H)
        w2 = self.w2_init.expand(B, -1, -1)  # (B, H, d)
        return w1, w2, torch.zeros_like(w1), torch.zeros_like(w2)

    def write(self, x: torch.Tensor, chunk: int | None = None) -> MemoryState:
        """Read the sequence x (B, T, C) chunk by chunk and return the fast weights each chunk
        reads: state c is written by chunks < c only (the update rule of the module docstring).

        This is the only sequential part of the memory, so the model runs it once per forward
        pass and every recursion step reads the result (`read`)."""
        return self.write_more(x, None, 0, chunk)[0]

    def write_more(self, x: torch.Tensor, carry: MemoryCarry | None, start: int,
                   chunk: int | None = None) -> tuple[MemoryState, MemoryCarry]:
        """Incremental `write`: x (B, T, C) are the tokens at positions start.. of a sequence
        whose earlier tokens `carry` summarises (None: start = 0). Returns the states those
        tokens read (the same values `write` gives the whole sequence) and the new carry.
        A chunk's update runs when the first token after it arrives, as in `write`."""
        B = x.shape[0]
        chunk = chunk or self.chunk
        k, v, rates = self._inputs(x)  # (B, T, .)
        if carry is None:
            w, index = self._initial(B), 0
        else:
            w, index = (carry.w1, carry.w2, carry.s1, carry.s2), carry.chunk_index
            k, v = torch.cat([carry.k, k], 1), torch.cat([carry.v, v], 1)
            rates = torch.cat([carry.rates, rates], 1)
        first, w1s, w2s = index, [w[0]], [w[1]]
        while k.shape[1] > chunk:  # a token after a complete chunk: write that chunk
            w = self._update(w, k[:, :chunk], v[:, :chunk], rates[:, :chunk])
            k, v, rates, index = k[:, chunk:], v[:, chunk:], rates[:, chunk:], index + 1
            w1s.append(w[0])
            w2s.append(w[1])
        state = MemoryState(torch.stack(w1s, 1), torch.stack(w2s, 1), chunk, x.shape[1], start,
                            first)
        return state, MemoryCarry(*w, k, v, rates, index)

    def read(self, u: torch.Tensor, state: MemoryState, extra: torch.Tensor | None = None,
             extra_anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Retrieve y_t = M_{W_c}(q_t) for every token t of chunk c, all chunks in one batched
        matmul; u (B, T, C) with T = state.length. Returns the values projected back (B, T, C).

        `extra` (B, M, C) are read-only tokens (thought branches, `forge.models.branches`): token
        m reads the state of chunk extra_anchor[m] // chunk, the same state its anchor position
        reads. The result is then (B, T + M, C): base reads, then extra reads.
        """
        B, T, _ = u.shape
        if T != state.length:
            raise ValueError(f"NeuralMemory.read: {T} tokens, the memory was written from "
                             f"{state.length}")
        q = F.normalize(self.mem_query(u), dim=-1)  # (B, T, d)
        lead = state.start - state.first_chunk * state.chunk  # 0 unless decoding incrementally
        q = self._chunked(F.pad(q, (0, 0, lead, 0)) if lead else q, state.chunk)  # (B, N, L, d)
        y = memory_apply(state.w1, state.w2, q).flatten(1, 2)[:, lead:lead + T]  # (B, T, d)
        if extra is not None and extra.shape[1]:
            y = torch.cat([y, self._read_extra(extra, extra_anchor, state)], dim=1)
        return self.mem_out(y)

    def forward(self, x: torch.Tensor, chunk: int | None = None, extra: torch.Tensor | None = None,
                extra_anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Write the memory from x (B, T, C) and read it back with x's own queries (B, T, C);
        see `write` and `read`."""
        return self.read(x, self.write(x, chunk), extra, extra_anchor)

    def _read_extra(self, extra: torch.Tensor, anchor: torch.Tensor | None,
                    state: MemoryState) -> torch.Tensor:
        """Reads (B, M, d) of read-only tokens, each from its anchor's chunk state."""
        if anchor is None or anchor.shape[0] != extra.shape[1]:
            raise ValueError("NeuralMemory: extra tokens need one anchor position each")
        qx = F.normalize(self.mem_query(extra), dim=-1)  # (B, M, d)
        which = anchor // state.chunk  # (M,)
        out = torch.empty_like(qx)
        for c in which.unique().tolist():
            idx = (which == c).nonzero().flatten()
            out[:, idx] = memory_apply(state.w1[:, c], state.w2[:, c], qx[:, idx])
        return out
