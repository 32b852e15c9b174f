"""Base-3 packing of ternary weights: 5 trits per byte (3^5 = 243 <= 256), i.e. 1.6 bits per
weight, the storage format of the BitNet b1.58 (arXiv 2402.17764) artifacts.

Format ("base3-5"): flatten the trits t in {-1, 0, 1} in row-major order, map each to a digit
d = t + 1 in {0, 1, 2}, pad with d = 1 (trit 0) to a multiple of 5, and store each group
(d0, ..., d4) as one byte d0 + 3 d1 + 9 d2 + 27 d3 + 81 d4 (little-endian base 3, <= 242).
`numel` trits take ceil(numel / 5) bytes; the shape is stored beside them.
"""
from __future__ import annotations

import torch

TRITS_PER_BYTE = 5
MAX_BYTE = 3 ** TRITS_PER_BYTE - 1  # 242: a larger byte is not valid base3-5
_POWERS = torch.tensor([1, 3, 9, 27, 81], dtype=torch.int32)  # 3^i, i = 0..4


def packed_length(numel: int) -> int:
    """Bytes that `numel` trits take: ceil(numel / 5)."""
    return -(-numel // TRITS_PER_BYTE)


def pack_trits(trits: torch.Tensor) -> torch.Tensor:
    """Pack ternary weights (arXiv 2402.17764; any shape, values in {-1, 0, 1}) into a 1-D uint8
    tensor of ceil(n/5) bytes, 1.6 bits per trit.

    byte_j = sum_{i<5} (t_{5j+i} + 1) * 3^i; see the module docstring for the format.
    Raises `ValueError` if any value is outside {-1, 0, 1}.
    """
    flat = trits.detach().reshape(-1).to(torch.int32)  # (n,)
    if flat.numel() and (flat.min() < -1 or flat.max() > 1):
        raise ValueError("pack_trits: values must be in {-1, 0, 1}; got "
                         f"min {int(flat.min())}, max {int(flat.max())}")
    pad = packed_length(flat.numel()) * TRITS_PER_BYTE - flat.numel()
    digits = torch.cat([flat + 1, flat.new_ones(pad)]).view(-1, TRITS_PER_BYTE)  # (n/5, 5)
    return (digits * _POWERS.to(flat.device)).sum(dim=1).to(torch.uint8)  # (ceil(n/5),)


def unpack_trits(packed: torch.Tensor, numel: int, shape: tuple[int, ...] | None = None,
                 name: str = "packed") -> torch.Tensor:
    """Inverse of `pack_trits` (arXiv 2402.17764 ternary weights): the first `numel` trits as
    int8, reshaped to `shape` if given.

    t_{5j+i} = floor(byte_j / 3^i) mod 3 - 1. Raises `ValueError` naming `name` when the packed
    tensor is not 1-D uint8, has a length other than ceil(numel / 5), holds a byte > 242, or
    `shape` does not hold `numel` elements.
    """
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise ValueError(f"{name}: packed trits must be a 1-D uint8 tensor, got "
                         f"{packed.dtype} of shape {tuple(packed.shape)}")
    if packed.numel() != packed_length(numel):
        raise ValueError(f"{name}: {packed.numel()} packed bytes cannot hold {numel} trits "
                         f"(expected ceil({numel}/5) = {packed_length(numel)})")
    if shape is not None and torch.Size(shape).numel() != numel:
        raise ValueError(f"{name}: shape {tuple(shape)} does not hold {numel} trits")
    if packed.numel() and int(packed.max()) > MAX_BYTE:
        raise ValueError(f"{name}: byte {int(packed.max())} > {MAX_BYTE} is not base-3 packed")
    digits = packed.to(torch.int32)[:, None] // _POWERS.to(packed.device) % 3  # (bytes, 5)
    trits = (digits.reshape(-1)[:numel] - 1).to(torch.int8)  # (numel,)
    return trits.view(shape) if shape is not None else trits
