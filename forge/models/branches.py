"""Parallel branches: extra tokens hung off every position of a sequence, all in one forward.

Quiet-STaR (Zelikman et al., arXiv 2403.09629, section 4.2) samples a short thought after every
position at once by extending the sequence with the thought tokens and giving attention a
"diagonal" mask. The layout used here puts the T base tokens first and then `slots` blocks of T
branch tokens, block s holding slot s of every position's branch:

    [ x_0 .. x_{T-1} | b_0^1 .. b_{T-1}^1 | ... | b_0^S .. b_{T-1}^S ]      N = T * (1 + S)

Branches may hang off a subset `at` of P positions only (the positions whose next tokens are
scored, e.g. the answer of a task): then each block holds P tokens and N = T + P * S.

Token b_t^s (the branch of position t, slot s) has RoPE position t + s and sees
  - base tokens x_j with 0 <= t - j < window (the prefix up to t, as x_t itself sees it), and
  - its own branch's earlier slots b_t^1 .. b_t^s;
never a base token after t and never another position's branch. Base tokens see base tokens only,
exactly as without branches. The neural memory is written from base tokens only; a branch token
of position t reads the memory state of t's chunk (DESIGN.md section 5, causality traps).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BranchLayout:
    """T base tokens followed by `slots` blocks of P branch tokens (see the module docstring)."""

    seq_len: int  # T
    slots: int  # S
    at: tuple[int, ...] | None = None  # the P positions with a branch, increasing (None: all)

    def __post_init__(self) -> None:
        if self.seq_len < 1 or self.slots < 0:
            raise ValueError(f"BranchLayout: got seq_len={self.seq_len}, slots={self.slots}; "
                             "allowed: seq_len >= 1, slots >= 0")
        if self.at is not None and (not self.at or list(self.at) != sorted(set(self.at)) or
                                    self.at[0] < 0 or self.at[-1] >= self.seq_len):
            raise ValueError(f"BranchLayout.at: got {self.at}; allowed: increasing positions "
                             f"in [0, {self.seq_len}), at least one")

    @property
    def width(self) -> int:
        """P: branches per slot block."""
        return self.seq_len if self.at is None else len(self.at)

    @property
    def total(self) -> int:
        """Length N of the extended sequence."""
        return self.seq_len + self.width * self.slots

    def branch_at(self, device: torch.device | None = None) -> torch.Tensor:
        """(P,) the positions that have a branch."""
        if self.at is None:
            return torch.arange(self.seq_len, device=device)
        return torch.tensor(self.at, dtype=torch.long, device=device)

    def anchors(self, device: torch.device | None = None) -> torch.Tensor:
        """(N,) the base position each token hangs off (its own position for base tokens)."""
        base = torch.arange(self.seq_len, device=device)
        return torch.cat([base, self.branch_at(device).repeat(self.slots)])

    def slot_ids(self, device: torch.device | None = None) -> torch.Tensor:
        """(N,) 0 for base tokens, s for slot s of a branch."""
        base = torch.zeros(self.seq_len, dtype=torch.long, device=device)
        slots = torch.arange(1, 1 + self.slots, device=device).repeat_interleave(self.width)
        return torch.cat([base, slots])

    def positions(self, device: torch.device | None = None) -> torch.Tensor:
        """(N,) RoPE positions: t for x_t, t + s for b_t^s."""
        return self.anchors(device) + self.slot_ids(device)

    def allowed(self, window: int, device: torch.device | None = None) -> torch.Tensor:
        """Boolean (N, N) attention mask, True where query i may see key j (diagonal pattern)."""
        a, s = self.anchors(device), self.slot_ids(device)
        delta = a[:, None] - a[None, :]  # (N, N): anchor_i - anchor_j
        in_window = (delta >= 0) & (delta < window)
        own_branch = (delta == 0) & (s[None, :] <= s[:, None])
        return in_window & ((s[None, :] == 0) | own_branch)

    def slot(self, x: torch.Tensor, s: int) -> torch.Tensor:
        """Slot s of an extended tensor (B, N, ...): (B, T, ...) for s = 0 (base), else
        (B, P, ...)."""
        if s == 0:
            return x[:, :self.seq_len]
        start = self.seq_len + (s - 1) * self.width
        return x[:, start:start + self.width]


@dataclass(frozen=True)
class BranchTensors:
    """What the blocks need of a layout, built once per forward pass."""

    base_len: int  # T: the first T tokens are base tokens (they alone write the memory)
    positions: torch.Tensor  # (N,) RoPE positions
    allowed: torch.Tensor  # (N, N) attention mask
    extra_anchor: torch.Tensor  # (N - T,) anchor position of each branch token


def branch_tensors(layout: BranchLayout, window: int, device: torch.device) -> BranchTensors:
    """The position, mask and memory-anchor tensors of `layout` for attention window `window`."""
    return BranchTensors(layout.seq_len, layout.positions(device), layout.allowed(window, device),
                         layout.anchors(device)[layout.seq_len:])
