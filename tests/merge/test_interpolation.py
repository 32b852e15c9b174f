"""linear and slerp: weights pick a parent, t = 0 / 1 give the ends, colinear slerp is lerp."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forge.merge import COLINEAR_COS, MergeParams, get_merge, lerp, slerp

SHAPES = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)


def _sd(seed: int, shape=(4, 3)) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(shape, generator=g), "b": torch.randn(3, generator=g)}


def test_linear_weights_one_zero_returns_the_first_exactly():
    a, b = _sd(0), _sd(1)
    out = get_merge("linear")([a, b], None, MergeParams(weights=(1.0, 0.0)))
    assert all(torch.equal(out[k], a[k]) for k in a)


def test_linear_weighted_mean_and_unnormalised_sum():
    a, b = _sd(0), _sd(1)
    mean = get_merge("linear")([a, b], None, MergeParams(weights=(3.0, 1.0)))
    torch.testing.assert_close(mean["w"], 0.75 * a["w"] + 0.25 * b["w"])
    total = get_merge("linear")([a, b], None, MergeParams(weights=(3.0, 1.0), normalize=False))
    torch.testing.assert_close(total["w"], 3.0 * a["w"] + b["w"])


def test_linear_weights_summing_to_zero_name_weights():
    with pytest.raises(ValueError, match="MergeParams.weights"):
        get_merge("linear")([_sd(0), _sd(1)], None, MergeParams(weights=(1.0, -1.0)))


@given(shape=SHAPES, seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_slerp_ends_are_exact(shape, seed):
    a, b = _sd(seed, shape), _sd(seed + 1, shape)
    for t, end in ((0.0, a), (1.0, b)):
        out = get_merge("slerp")([a, b], None, MergeParams(t=t))
        assert all(torch.equal(out[k], end[k]) for k in a)


def test_slerp_of_orthogonal_vectors_stays_on_the_arc():
    v0, v1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    out = slerp(v0, v1, 1 / 3)  # 30 degrees from v0
    torch.testing.assert_close(out, torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)]))
    assert abs(out.norm().item() - 1.0) < 1e-6  # lerp would give norm 0.745


@given(scale=st.floats(-3, 3).filter(lambda s: abs(s) > 1e-2), t=st.floats(0.01, 0.99),
       seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_slerp_of_colinear_tensors_equals_lerp(scale, t, seed):
    v0 = torch.randn(5, 4, generator=torch.Generator().manual_seed(seed))
    v1 = scale * v0
    assert torch.equal(slerp(v0, v1, t), lerp(v0, v1, t))


def test_slerp_falls_back_just_above_the_threshold_only():
    v0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for cos, falls_back in ((COLINEAR_COS + 1e-5, True), (COLINEAR_COS - 1e-4, False)):
        v1 = torch.tensor([cos, math.sqrt(1 - cos**2)], dtype=torch.float64)
        assert torch.equal(slerp(v0, v1, 0.5), lerp(v0, v1, 0.5)) == falls_back


def test_slerp_needs_exactly_two_models():
    with pytest.raises(ValueError, match="models"):
        get_merge("slerp")([_sd(0), _sd(1), _sd(2)], None, MergeParams())
