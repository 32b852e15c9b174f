"""ties and dare: exact trim density, agreeing signs only, DARE's drop rate and rescale."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forge.merge import MergeParams, drop_and_rescale, get_merge, kept_count, trim


def _randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@given(n=st.integers(1, 300), density=st.floats(0.01, 1.0), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_trim_keeps_exactly_the_requested_density_of_largest_entries(n, density, seed):
    tau = _randn((n,), seed)
    kept = trim(tau, density)
    k = kept_count(n, density)
    assert k == max(1, round(density * n))
    assert int((kept != 0).sum()) == k
    assert torch.equal(kept[kept != 0], tau[kept != 0])  # survivors unchanged
    if k < n:  # every kept magnitude >= every dropped one
        assert tau[kept != 0].abs().min() >= tau[kept == 0].abs().max()


def test_ties_single_model_keeps_exact_density_per_tensor():
    base = {"w": _randn((20, 10), 0), "b": _randn((7,), 1)}
    model = {k: v + _randn(v.shape, 2) for k, v in base.items()}
    out = get_merge("ties")([model], base, MergeParams(density=0.3))
    for key in base:
        changed = int((out[key] != base[key]).sum())
        assert changed == kept_count(base[key].numel(), 0.3)  # 60 of 200, 2 of 7


def _ties_reference(taus, weights):
    """Per entry, the TIES rule written as a loop over plain floats."""
    flat = [t.flatten().tolist() for t in taus]
    out = []
    for j in range(len(flat[0])):
        vals = [f[j] for f in flat]
        mass = sum(w * v for w, v in zip(weights, vals))
        sign = (mass > 0) - (mass < 0)
        agree = [(w, v) for w, v in zip(weights, vals) if v != 0 and (v > 0) - (v < 0) == sign]
        out.append(sum(w * v for w, v in agree) / sum(w for w, _ in agree) if agree else 0.0)
    return torch.tensor(out).view_as(taus[0])


@given(n=st.integers(1, 40), density=st.floats(0.1, 1.0), seed=st.integers(0, 2**16),
       weights=st.lists(st.floats(0.1, 2.0), min_size=3, max_size=3))
@settings(max_examples=30, deadline=None)
def test_ties_merges_only_agreeing_signs(n, density, seed, weights):
    base = {"w": _randn((n,), seed)}
    models = [{"w": base["w"] + _randn((n,), seed + i + 1)} for i in range(3)]
    out = get_merge("ties")(models, base, MergeParams(density=density, weights=tuple(weights)))
    taus = [trim(m["w"] - base["w"], density) for m in models]
    delta = out["w"] - base["w"]
    elected = torch.sign(sum(w * t for w, t in zip(weights, taus)))
    assert bool(((torch.sign(delta) == elected) | (delta.abs() < 1e-6)).all())
    torch.testing.assert_close(delta, _ties_reference(taus, weights), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dare_kept_fraction_and_rescale_match_p(p):
    n = 200_000
    tau = _randn((n,), 0) + 3.0  # no exact zeros, so zero <=> dropped
    out = drop_and_rescale(tau, p, torch.Generator().manual_seed(1))
    kept = out != 0
    std = math.sqrt(p * (1 - p) / n)  # binomial std of the kept fraction
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * std
    torch.testing.assert_close(out[kept], tau[kept] / (1 - p))  # survivors rescaled exactly
    # unbiased: E[sum] = sum tau; Var = p / (1 - p) * sum tau^2
    sum_std = math.sqrt(p / (1 - p) * float((tau.double() ** 2).sum()))
    assert abs(float(out.double().sum() - tau.double().sum())) < 5 * sum_std


def test_dare_is_reproducible_with_a_seeded_generator_and_keeps_the_tie():
    base = {"w": _randn((50,), 0)}
    base["tied"] = base["w"]  # an alias, like lm_head / embed_tokens
    models = [{"w": (w := base["w"] + _randn((50,), i)), "tied": w} for i in (1, 2)]
    runs = [get_merge("dare_ties")(models, base, MergeParams(p=0.5),
                                   torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(runs[0]["w"], runs[1]["w"])
    assert runs[0]["tied"] is runs[0]["w"]


def test_dare_linear_with_no_drop_is_task_arithmetic():
    base = {"w": _randn((30,), 0)}
    models = [{"w": base["w"] + _randn((30,), i)} for i in (1, 2)]
    out = get_merge("dare_linear")(models, base, MergeParams(p=0.0, weights=(1.0, 3.0)))
    torch.testing.assert_close(out["w"], 0.25 * models[0]["w"] + 0.75 * models[1]["w"])
