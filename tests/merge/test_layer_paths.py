"""frankenmerge and dfs build real Cognate models: layer counts, loading, generate(), identity."""
import pytest
import torch

from forge.merge import MergeParams, dfs, frankenmerge, get_merge, layer_count, merged_config
from forge.models import CognateForCausalLM
from tests.merge.conftest import logits


def _states(family):
    return [m.state_dict() for m in family["children"]]


def _load(sd, config):
    model = CognateForCausalLM(config).eval()
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model


@pytest.mark.parametrize("slices, layers", [([(0, 0, 2), (1, 1, 2)], 3),  # grow
                                            ([(2, 1, 2)], 1),              # shrink
                                            ([(0, 0, 1), (1, 1, 2), (2, 0, 2)], 4)])
def test_frankenmerge_has_the_requested_layers_loads_and_generates(family, slices, layers):
    sds = _states(family)
    sd, config = frankenmerge(sds, family["config"], slices)
    assert layer_count(sd) == config.n_layers == config.num_hidden_layers == layers
    model = _load(sd, config)
    picks = [(m, i) for m, s, e in slices for i in range(s, e)]
    for j, (m, i) in enumerate(picks):  # block j really is parent m's block i
        key = f"model.net.layers.{j}.attn.q_proj.weight"
        assert torch.equal(sd[key], sds[m][f"model.net.layers.{i}.attn.q_proj.weight"])
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tie survives
    out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 8) and bool((out < config.vocab_size).all())


def test_frankenmerge_of_a_whole_parent_is_that_parent(family):
    parent = family["children"][1]
    sd, config = frankenmerge(_states(family), family["config"], [(1, 0, 2)], base=parent.state_dict())
    assert torch.equal(logits(_load(sd, config)), logits(parent))


def test_dfs_identity_path_equals_the_parent_exactly(family):
    parent = family["children"][0]
    sd, config = dfs([parent.state_dict()], family["config"], [(0, 0), (0, 1)], [1.0, 1.0])
    assert all(torch.equal(sd[k], v) for k, v in parent.state_dict().items())
    assert torch.equal(logits(_load(sd, config)), logits(parent))


def test_dfs_folded_scales_equal_scaling_each_block_input(family):
    """Reference: the unscaled stack with a hook multiplying block j's input by s_j."""
    sds, path, scales = _states(family), [(0, 0), (2, 1), (1, 0), (0, 1)], [1.5, 0.6, 1.0, 2.5]
    folded = _load(*dfs(sds, family["config"], path, scales))
    reference = _load(*dfs(sds, family["config"], path))
    plain = logits(reference)
    for block, s in zip(reference.model.net.layers, scales):
        block.register_forward_pre_hook(lambda mod, args, s=s: (args[0] * s, *args[1:]))
    scaled = logits(reference)
    assert (scaled - plain).abs().max() > 1e-3  # the scales matter ...
    torch.testing.assert_close(logits(folded), scaled, atol=1e-5, rtol=1e-4)  # ... and fold exactly
    out = folded.generate(torch.tensor([[4, 5]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 5)


def test_merged_config_leaves_other_fields_alone(family):
    sd = get_merge("frankenmerge")(_states(family), None, MergeParams(slices=((0, 0, 2), (0, 0, 1))))
    config = merged_config(family["config"], sd)
    assert config.n_layers == 3 and family["config"].n_layers == 2
    assert config.to_dict() | {"n_layers": 2, "num_hidden_layers": 2} == family["config"].to_dict()


@pytest.mark.parametrize("params, name", [
    (MergeParams(slices=((0, 0, 3),)), "slices"),      # layer 2 does not exist
    (MergeParams(slices=((5, 0, 1),)), "slices"),      # model 5 does not exist
    (MergeParams(slices=((0, 1, 1),)), "slices"),      # empty range
    (MergeParams(slices=()), "slices")])
def test_frankenmerge_bad_slices_name_slices(family, params, name):
    with pytest.raises(ValueError, match=f"MergeParams.{name}"):
        get_merge("frankenmerge")(_states(family), None, params)


def test_dfs_bad_path_and_scales_name_them(family):
    sds = _states(family)
    with pytest.raises(ValueError, match="MergeParams.path"):
        get_merge("dfs")(sds, None, MergeParams(path=((0, 9),)))
    with pytest.raises(ValueError, match="MergeParams.scales"):
        get_merge("dfs")(sds, None, MergeParams(path=((0, 0),), scales=(1.0, 2.0)))
    with pytest.raises(ValueError, match="MergeParams.scales"):
        MergeParams(path=((0, 0),), scales=(-1.0,))


def test_dfs_model_saves_and_reloads_with_from_pretrained(family, tmp_path):
    from transformers import AutoModelForCausalLM

    sd, config = dfs(_states(family), family["config"], [(0, 1), (1, 0), (2, 1)], [2.0, 0.5, 1.2])
    model = _load(sd, config)
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.n_layers == 3
    assert torch.equal(logits(again), logits(model))
