"""Base-3 packing, 5 trits per byte: exact round trips and refused bad input."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forge.quant import pack_trits, packed_length, unpack_trits


def _random_trits(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 2, shape, generator=g, dtype=torch.int8)


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple),
       seed=st.integers(0, 2**31 - 1))
def test_pack_then_unpack_is_exact_for_any_shape(shape, seed):
    trits = _random_trits(shape, seed)
    packed = pack_trits(trits)
    assert packed.dtype == torch.uint8 and packed.dim() == 1
    assert packed.numel() == math.ceil(trits.numel() / 5) == packed_length(trits.numel())
    assert packed.numel() == 0 or int(packed.max()) <= 242
    assert torch.equal(unpack_trits(packed, trits.numel(), shape), trits)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.sampled_from([-1, 0, 1]), max_size=64))
def test_round_trip_of_every_length_including_padding(values):
    trits = torch.tensor(values, dtype=torch.int8)
    assert unpack_trits(pack_trits(trits), len(values)).tolist() == values


def test_byte_layout_is_little_endian_base_3():
    # digits (t + 1): [2, 0, 1, 1, 2] -> 2 + 0*3 + 1*9 + 1*27 + 2*81 = 200
    assert pack_trits(torch.tensor([1, -1, 0, 0, 1])).tolist() == [200]
    assert pack_trits(torch.tensor([1, 1, 1, 1, 1])).tolist() == [242]
    assert pack_trits(torch.tensor([-1])).tolist() == [0 + 3 + 9 + 27 + 81]  # padded with trit 0


def test_a_million_trits_take_200_000_bytes():
    trits = _random_trits((1000, 1000), 0)
    packed = pack_trits(trits)
    assert packed.numel() * 8 / trits.numel() == 1.6  # bits per trit
    assert torch.equal(unpack_trits(packed, trits.numel(), (1000, 1000)), trits)


def test_values_outside_the_trits_are_refused():
    with pytest.raises(ValueError, match=r"\{-1, 0, 1\}"):
        pack_trits(torch.tensor([0, 2, -1]))


@pytest.mark.parametrize("packed, numel, match", [
    (torch.zeros(3, dtype=torch.uint8), 16, "3 packed bytes cannot hold 16 trits"),
    (torch.zeros(5, dtype=torch.uint8), 16, "5 packed bytes"),
    (torch.tensor([243], dtype=torch.uint8), 5, "byte 243 > 242"),
    (torch.zeros(2, dtype=torch.int16), 10, "1-D uint8"),
    (torch.zeros(1, 2, dtype=torch.uint8), 10, "1-D uint8"),
])
def test_bad_packed_tensors_name_the_tensor(packed, numel, match):
    with pytest.raises(ValueError, match="layer.weight_packed") as err:
        unpack_trits(packed, numel, name="layer.weight_packed")
    assert match in str(err.value)


def test_shape_must_hold_numel():
    with pytest.raises(ValueError, match="shape"):
        unpack_trits(pack_trits(torch.zeros(6)), 6, (4, 2))
